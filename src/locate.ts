/**
 * Where libtorch is, found without loading anything: the first of
 *   1. `BYOL_TORCH_LIBTORCH` (a `torch/lib` folder, or a `torch` folder holding `lib/`),
 *   2. the per-user cache made by `npx byol-torch-install-libtorch`
 *      (`$BYOL_TORCH_HOME/venv`, default `~/.cache/byol-torch/venv`),
 *   3. the `torch` package of the `python3` on PATH.
 * Kept apart from `native.ts` so that `byol-torch doctor` can say what it
 * finds even when the addon cannot load.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { typeError } from './errors'

interface PackageJson {
  version: string
  byolTorch: { torchVersion: string }
}
const pkg: PackageJson = require('../package.json')

/** This package's version. */
export const VERSION: string = pkg.version
/** The PyTorch release whose libtorch the addon is built against. */
export const TORCH_VERSION: string = pkg.byolTorch.torchVersion
/** The one command that installs libtorch for byol-torch. */
export const INSTALL_COMMAND = 'npx byol-torch-install-libtorch'

/** Where libtorch was found, and how. */
export interface LibtorchLocation {
  libDir: string
  source: 'BYOL_TORCH_LIBTORCH' | 'cache' | 'python3'
  /** PyTorch's version string beside the libraries (e.g. `'2.11.0+cu130'`), if it says one. */
  version: string | null
}

/** Thrown at load time when no usable libtorch is found. */
function places(tried: unknown): string {
  if (!Array.isArray(tried)) throw typeError('tried', 'the places looked at, an array of strings', tried)
  return tried.map((t) => `  - ${String(t)}`).join('\n')
}

export class LibtorchNotFoundError extends Error {
  readonly code = 'ERR_BYOL_LIBTORCH_NOT_FOUND'
  constructor(readonly tried: string[]) {
    super(
      `byol-torch needs libtorch from PyTorch ${TORCH_VERSION} and found none.\n` +
        `Looked at:\n${places(tried)}\n` +
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

/** The version of the libtorch in `libDir` if it is the one wanted; else null, with the reason in `tried`. */
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

/** The per-user cache (`$BYOL_TORCH_HOME`, default `~/.cache/byol-torch`). */
export function cacheHome(): string {
  return process.env.BYOL_TORCH_HOME || path.join(os.homedir(), '.cache', 'byol-torch')
}

function cacheLibDirs(): string[] {
  const lib = path.join(cacheHome(), 'venv', 'lib')
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

/** Finds libtorch, or throws `LibtorchNotFoundError` saying where it looked. */
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

/** The npm platform packages that carry the addon, by `${process.platform}-${process.arch}`. */
export const PLATFORM_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': 'byol-torch-linux-x64-gnu',
  'linux-arm64': 'byol-torch-linux-arm64-gnu',
}

/** The platform package for this machine, or an error naming the supported platforms. */
export function platformPackage(): string {
  const key = `${process.platform}-${process.arch}`
  const name = PLATFORM_PACKAGES[key]
  if (!name) {
    const err = new Error(
      `byol-torch has no prebuilt binary for ${key}; it supports ${Object.keys(PLATFORM_PACKAGES).join(', ')} (with glibc, as PyTorch's wheels)`,
    ) as Error & { code: string }
    err.code = 'ERR_BYOL_UNSUPPORTED_PLATFORM'
    throw err
  }
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  if (process.platform === 'linux' && report?.header && !report.header.glibcVersionRuntime) {
    const err = new Error(`byol-torch needs glibc (as PyTorch's wheels do); this system's C library is another (musl?)`) as Error & { code: string }
    err.code = 'ERR_BYOL_UNSUPPORTED_PLATFORM'
    throw err
  }
  return name
}
