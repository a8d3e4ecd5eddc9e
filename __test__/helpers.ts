import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { saveSafetensors, Tensor } from '../src/index'

export const root = path.join(__dirname, '..')
export const python = path.join(process.env.BYOL_TORCH_HOME || path.join(os.homedir(), '.cache', 'byol-torch'), 'venv', 'bin', 'python')

/** Runs the PyTorch reference; throws (failing the test) when it cannot run. */
export function reference(args: string[]): any {
  if (!fs.existsSync(python)) {
    throw new Error(`the PyTorch reference cannot run: ${python} is missing (run: bash scripts/setup.sh)`)
  }
  const out = execFileSync(python, [path.join(root, 'reference', 'byol_reference.py'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const last = out.trim().split('\n').pop()
  return last ? JSON.parse(last) : null
}

// Every folder tmpdir made, removed when the test file's process exits:
// checkpoints and models of a run take hundreds of MB each.
const made: string[] = []
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

/** A new folder in the system's temporary directory, removed when the tests of the file end. */
export function tmpdir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `byol-torch-${prefix}-`))
  made.push(dir)
  return dir
}

/** Largest absolute difference and the reference's scale (largest |value|). */
export function maxDiff(actual: Tensor, expected: Tensor): { diff: number; scale: number } {
  const a = actual.toFloat32Array()
  const e = expected.toFloat32Array()
  if (a.length !== e.length) throw new Error(`length ${a.length} != ${e.length}`)
  let diff = 0
  let scale = 0
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - e[i]))
    scale = Math.max(scale, Math.abs(e[i]))
  }
  return { diff, scale }
}

export function catchError(fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (e) {
    return e as Error & { code?: string }
  }
  throw new Error('expected an error, none was thrown')
}

/** The data-parallel tests' images: `n` pseudo-random uint8 images of 3x32x32, as `x` in a .safetensors file. */
export function writeDdpImages(file: string, n = 16): void {
  let s = 4242
  const data = new Uint8Array(n * 3 * 32 * 32).map(() => {
    s = (s * 1103515245 + 12345) % 2147483648
    return (s >> 8) % 256
  })
  saveSafetensors({ x: Tensor.fromTypedArray(data, [n, 3, 32, 32]) }, file)
}
