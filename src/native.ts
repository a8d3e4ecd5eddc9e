/**
 * Finds libtorch and loads the native addon.
 *
 * The addon links libtorch dynamically and carries no absolute rpath, so one
 * binary serves any host with PyTorch 2.11.0. Before loading it, the libtorch
 * libraries are preloaded with RTLD_GLOBAL from the first of:
 *   1. `BYOL_TORCH_LIBTORCH` (a `torch/lib` folder, or a `torch` folder holding `lib/`),
 *   2. the per-user cache made by `npx byol-torch-install-libtorch`
 *      (`$BYOL_TORCH_HOME/venv`, default `~/.cache/byol-torch/venv`),
 *   3. the `torch` package of the `python3` on PATH.
 * glibc reads LD_LIBRARY_PATH only at process start, hence the preload.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type * as Native from './native.generated'

export const TORCH_VERSION = '2.11.0'
export const INSTALL_COMMAND = 'npx byol-torch-install-libtorch'

/** Where libtorch was found, and how. */
export interface LibtorchLocation {
  libDir: string
  source: 'BYOL_TORCH_LIBTORCH' | 'cache' | 'python3'
  version: string | null
}

/** Thrown at load time when no usable libtorch is found. */
export class LibtorchNotFoundError extends Error {
  readonly code = 'ERR_BYOL_LIBTORCH_NOT_FOUND'
  constructor(readonly tried: string[]) {
    super(
      `byol-torch needs libtorch from PyTorch ${TORCH_VERSION} and found none.\n` +
        `Looked at:\n${tried.map((t) => `  - ${t}`).join('\n')}\n` +
        `Install it (into ~/.cache/byol-torch, about 3 GB, once) with:\n\n    ${INSTALL_COMMAND}\n\n` +
        `or set BYOL_TORCH_LIBTORCH to a folder that holds libtorch.so from PyTorch ${TORCH_VERSION}.`,
    )
    this.name = 'LibtorchNotFoundError'
  }
}

function torchVersionNear(libDir: string): string | null {
  try {
    const text = fs.readFileSync(path.join(libDir, '..', 'version.py'), 'utf8')
    const m = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(text)
    return m ? m[1] : null
  } catch {
    return null
  }
}

function usable(libDir: string, tried: string[], label: string): string | null {
  const version = torchVersionNear(libDir)
  if (!fs.existsSync(path.join(libDir, 'libtorch.so'))) {
    tried.push(`${label}: no libtorch.so in ${libDir}`)
    return null
  }
  if (version !== null && version.split('+')[0] !== TORCH_VERSION) {
    tried.push(`${label}: ${libDir} is PyTorch ${version}, not ${TORCH_VERSION}`)
    return null
  }
  return version ?? 'unknown'
}

function cacheLibDirs(): string[] {
  const home = process.env.BYOL_TORCH_HOME || path.join(os.homedir(), '.cache', 'byol-torch')
  const lib = path.join(home, 'venv', 'lib')
  let entries: string[] = []
  try {
    entries = fs.readdirSync(lib).filter((d) => d.startsWith('python3'))
  } catch {
    return [path.join(lib, 'python3.*', 'site-packages', 'torch', 'lib')]
  }
  return entries.map((d) => path.join(lib, d, 'site-packages', 'torch', 'lib'))
}

function pythonTorchLibDir(): string | null {
  try {
    // find_spec does not import torch: quick even with a 3 GB install.
    const out = execFileSync(
      'python3',
      ['-c', "import importlib.util as u, os; s = u.find_spec('torch'); print(os.path.dirname(s.origin) if s else '')"],
      { encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim()
    return out ? path.join(out, 'lib') : null
  } catch {
    return null
  }
}

export function findLibtorch(): LibtorchLocation {
  const tried: string[] = []
  const fromEnv = process.env.BYOL_TORCH_LIBTORCH
  if (fromEnv) {
    for (const dir of [fromEnv, path.join(fromEnv, 'lib')]) {
      const v = usable(dir, [], 'BYOL_TORCH_LIBTORCH')
      if (v) return { libDir: dir, source: 'BYOL_TORCH_LIBTORCH', version: v }
    }
    usable(fromEnv, tried, 'BYOL_TORCH_LIBTORCH')
    // An explicit setting that does not work is an error, not a cue to look elsewhere.
    throw new LibtorchNotFoundError(tried)
  }
  tried.push('BYOL_TORCH_LIBTORCH: not set')
  for (const dir of cacheLibDirs()) {
    const v = usable(dir, tried, 'cache')
    if (v) return { libDir: dir, source: 'cache', version: v }
  }
  const py = pythonTorchLibDir()
  if (py) {
    const v = usable(py, tried, 'python3 on PATH')
    if (v) return { libDir: py, source: 'python3', version: v }
  } else {
    tried.push('python3 on PATH: no torch package')
  }
  throw new LibtorchNotFoundError(tried)
}

function preload(libDir: string): void {
  // Node dlcloses a library that does not register as an addon; glibc's
  // RTLD_NODELETE (0x1000, not in os.constants) keeps it mapped so that the
  // addon's NEEDED entries resolve to it by soname.
  const RTLD_NODELETE = 0x1000
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE
  const libs = ['libc10.so', 'libtorch_cpu.so', 'libc10_cuda.so', 'libtorch_cuda.so', 'libtorch.so']
  for (const name of libs) {
    const file = path.join(libDir, name)
    if (!fs.existsSync(file)) continue
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file, flags)
    } catch (e) {
      // A plain shared library is not a Node addon: dlopen succeeds, then Node
      // throws "did not self-register". Anything else is a real failure.
      const message = e instanceof Error ? e.message : String(e)
      if (!/self-register/.test(message)) {
        const err = new Error(`byol-torch: cannot load ${file}: ${message}`) as Error & { code: string }
        err.code = 'ERR_BYOL_LIBTORCH_LOAD'
        throw err
      }
    }
  }
}

function loadAddon(): typeof Native {
  const local = path.join(__dirname, '..', 'byol-torch.linux-x64-gnu.node')
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`byol-torch: no prebuilt binary for ${process.platform}-${process.arch} (linux-x64 is supported)`)
  }
  if (fs.existsSync(local)) return require(local)
  return require('byol-torch-linux-x64-gnu')
}

export const libtorch: LibtorchLocation = findLibtorch()
preload(libtorch.libDir)
export const native: typeof Native = loadAddon()
// The JS thread takes its libtorch thread count now, before any data worker
// sets the process-wide count to 1 (see set_thread_count in the core).
native.getNumThreads()
