/**
 * Loads the native addon after preloading the libtorch that `locate.ts` finds.
 *
 * The addon links libtorch dynamically and carries no absolute rpath, so one
 * binary serves any host with PyTorch's libtorch of the right version. glibc
 * reads LD_LIBRARY_PATH only at process start, hence the preload.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { isMainThread } from 'node:worker_threads'
import { findLibtorch, LibtorchLocation, platformPackage } from './locate'
import type * as Native from './native.generated'

/** dlopen `file` for its symbols: undefined when it loaded, else dlopen's message. */
function open(file: string, flags: number): string | undefined {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, file, flags)
  } catch (e) {
    // A plain shared library is not a Node addon: dlopen succeeds, then Node
    // throws "did not self-register". Anything else means it did not load.
    const message = e instanceof Error ? e.message : String(e)
    if (!/self-register/.test(message)) return message
  }
  return undefined
}

/**
 * Whether this host has a CUDA driver (libcuda.so.1, which NVIDIA's driver
 * installs and no wheel ships). Without one CUDA cannot run, so the CUDA half
 * of libtorch is left unloaded: libtorch_cuda and what it needs (cuBLAS,
 * cuDNN, NCCL, ...) add about 230 MB to a process once mapped and relocated.
 */
function hasCudaDriver(): boolean {
  return open('libcuda.so.1', os.constants.dlopen.RTLD_LAZY | os.constants.dlopen.RTLD_LOCAL) === undefined
}

// Node dlcloses a library that does not register as an addon; glibc's
// RTLD_NODELETE (0x1000, not in os.constants) keeps it mapped so that the
// addon's NEEDED entries resolve to it by soname.
const RTLD_NODELETE = 0x1000
const SHARED = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE

function preload(libDir: string, cuda: boolean): void {
  // The addon needs libc10 and libtorch_cpu only. libtorch_cuda registers CUDA
  // with them from its static initialisers, so it is loaded before the addon
  // (before anything asks whether CUDA is available), and only with a driver.
  const libs = ['libc10.so', 'libtorch_cpu.so']
  if (cuda) libs.push('libc10_cuda.so', 'libtorch_cuda.so')
  for (const name of libs) loadOrThrow(path.join(libDir, name))
}

function loadOrThrow(file: string): void {
  if (!fs.existsSync(file)) return
  const message = open(file, SHARED)
  if (message !== undefined) {
    const err = new Error(`byol-torch: cannot load ${file}: ${message}`) as Error & { code: string }
    err.code = 'ERR_BYOL_LIBTORCH_LOAD'
    throw err
  }
}

/**
 * byol-torch's NCCL backend, built beside the addon where libtorch has CUDA
 * (`<addon>.nccl.so`, linked against libtorch_cuda). Loaded for its symbols,
 * which the addon looks up by name when a process group asks for NCCL; where
 * it is missing, NCCL is reported missing then.
 */
export function ncclLibraryFile(addon: string): string {
  return addon.replace(/\.node$/, '.nccl.so')
}

/** The addon file: the one built in a checkout of the repository, else the installed platform package's. */
function addonFile(): string {
  const name = platformPackage()
  const local = path.join(__dirname, '..', `byol-torch.${name.slice('byol-torch-'.length)}.node`)
  if (fs.existsSync(local)) return local
  try {
    return require.resolve(name)
  } catch {
    const err = new Error(
      `byol-torch: the package ${name}, which holds the prebuilt addon for this platform, is not installed. ` +
        `npm installs it with byol-torch as an optional dependency: reinstall without --omit=optional (or --no-optional).`,
    ) as Error & { code: string }
    err.code = 'ERR_BYOL_ADDON_NOT_FOUND'
    throw err
  }
}

/** Where libtorch was found, and how. */
export const libtorch: LibtorchLocation = findLibtorch()
const cuda = hasCudaDriver()
preload(libtorch.libDir, cuda)
/** @internal the addon file loaded */
export const addonPath: string = addonFile()
// NCCL is optional: where its library does not load, 'auto' trains over
// Gloo and asking for 'nccl' says it is not loaded; the rest of CUDA works.
const ncclLoadError = cuda && fs.existsSync(ncclLibraryFile(addonPath)) ? open(ncclLibraryFile(addonPath), SHARED) : undefined
if (ncclLoadError !== undefined) process.emitWarning(`byol-torch: the NCCL backend did not load (${ncclLoadError}); data-parallel training on CUDA uses Gloo`, { code: 'BYOL_NCCL_NOT_LOADED' })
/** @internal the native addon */
export const native: typeof Native = require(addonPath)
// The JS thread takes its libtorch thread count now, before any data worker
// sets the process-wide count to 1 (see set_thread_count in the core).
native.getNumThreads()

// Exiting while the addon's threads are inside libtorch would run libtorch's
// static destructors under them (SIGSEGV instead of the exit code): first a
// running fit stops at its step boundary with its checkpoint, as on abort,
// and evaluations stop between batches; what is still running after that
// ends with the process at once.
// Only the main thread's exit ends the process (and the work of every thread
// in it): a worker thread's exit must not stop training elsewhere.
if (isMainThread) {
  process.on('exit', (code) => {
    if (!native.settleForExit()) native.exitNow(code)
  })
}
