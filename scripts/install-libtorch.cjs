#!/usr/bin/env node
// @ts-check
/**
 * byol-torch-install-libtorch: installs libtorch (PyTorch from PyPI, the
 * version the addon was built against) into a per-user cache, once. Plain
 * Node.js with no dependencies, so that it runs from the installed npm package
 * and, in the repository, before `npm ci`.
 */
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const pkg = require('../package.json')
const TORCH_VERSION = pkg.byolTorch.torchVersion
// Measured on PyPI for torch 2.11.0 on Linux x86-64 (the CUDA 13.0 build, the
// only one PyPI has; it runs on CPUs too) and its dependencies.
const DOWNLOAD = 'about 3.0 GB'
const INSTALLED = 'about 4.5 GB'

const USAGE = `Usage: byol-torch-install-libtorch [options]

Installs PyTorch ${TORCH_VERSION} from PyPI into a Python virtual environment in
byol-torch's per-user cache, where byol-torch finds libtorch. Downloads
${DOWNLOAD} once (${INSTALLED} on disk); a second run finds it in place.
Needs Python 3.10-3.14 (python3) with the venv module.

Options:
  --home <dir>        the cache (default: $BYOL_TORCH_HOME, else ~/.cache/byol-torch)
  --python <python>   the Python that makes the virtual environment
                      (default: the first of python3.12, python3.11, python3.13,
                      python3.10, python3 that is 3.10-3.14)
  --reference <file>  also install this requirements file (the repository's
                      reference/requirements.txt for the parity tests)
  --force             install into the cache even when another libtorch
                      ${TORCH_VERSION} is already usable
  --print-lib-dir     print the cached libtorch folder and exit (1 if missing)
  -h, --help          this text

byol-torch looks for libtorch in $BYOL_TORCH_LIBTORCH first, then in this
cache, then in the torch package of the python3 on PATH.`

/** @param {string} message */
function fail(message) {
  process.stderr.write(`byol-torch-install-libtorch: ${message}\n`)
  process.exit(1)
}

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ quiet?: boolean }} [opts]
 */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8' })
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: r.error }
}

/** @param {string} python */
function pythonVersionOk(python) {
  return run(python, ['-c', 'import sys, venv; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,14) else 1)'], { quiet: true }).ok
}

/** @param {string} python */
function torchLibDir(python) {
  const r = run(
    python,
    ['-c', `import importlib.util as u, os, sys; s = u.find_spec('torch'); sys.exit(1) if s is None else print(os.path.join(os.path.dirname(s.origin), 'lib'))`],
    { quiet: true },
  )
  return r.ok && r.out ? r.out : null
}

/** @param {string} libDir */
function versionNear(libDir) {
  try {
    const m = /__version__\s*=\s*['"]([^'"]+)['"]/.exec(fs.readFileSync(path.join(libDir, '..', 'version.py'), 'utf8'))
    return m ? m[1] : null
  } catch {
    return null
  }
}

/** @param {string | null} libDir */
function isWanted(libDir) {
  return libDir !== null && fs.existsSync(path.join(libDir, 'libtorch.so')) && (versionNear(libDir) ?? '').split('+')[0] === TORCH_VERSION
}

/**
 * One installer at a time: CI and a developer may share the cache. A lock
 * folder holds the owner's pid; one whose owner is gone is taken over.
 * @param {string} home
 */
function lock(home) {
  const dir = path.join(home, '.install-lock')
  for (let waited = 0; ; waited++) {
    try {
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid))
      const release = () => fs.rmSync(dir, { recursive: true, force: true })
      process.on('exit', release)
      return
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code !== 'EEXIST') throw e
      let owner = NaN
      try {
        owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'))
      } catch {
        // The owner has made the folder but not yet written its pid.
      }
      let alive = true
      if (Number.isInteger(owner)) {
        try {
          process.kill(owner, 0)
        } catch {
          alive = false
        }
      }
      if (!alive) fs.rmSync(dir, { recursive: true, force: true })
      else {
        if (waited === 0) process.stdout.write(`waiting for another installer (pid ${owner}) to finish...\n`)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000)
      }
    }
  }
}

function main() {
  /** @type {ReturnType<typeof parseArgs>['values']} */
  let flags
  try {
    flags = parseArgs({
      options: {
        home: { type: 'string' },
        python: { type: 'string' },
        reference: { type: 'string' },
        force: { type: 'boolean', default: false },
        'print-lib-dir': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (e) {
    fail(`${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`)
    return
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const home = path.resolve(String(flags.home ?? (process.env.BYOL_TORCH_HOME || path.join(os.homedir(), '.cache', 'byol-torch'))))
  const venv = path.join(home, 'venv')
  const venvPython = path.join(venv, 'bin', 'python')
  if (flags['print-lib-dir']) {
    const dir = fs.existsSync(venvPython) ? torchLibDir(venvPython) : null
    if (!isWanted(dir)) process.exit(1)
    process.stdout.write(`${dir}\n`)
    return
  }

  if (!flags.force && !flags.reference && !fs.existsSync(venvPython)) {
    const fromEnv = process.env.BYOL_TORCH_LIBTORCH
    const candidates = fromEnv ? [fromEnv, path.join(fromEnv, 'lib')] : []
    const system = run('python3', ['--version'], { quiet: true }).ok ? torchLibDir('python3') : null
    const found = [...candidates, ...(system ? [system] : [])].find(isWanted)
    if (found) {
      process.stdout.write(`libtorch ${TORCH_VERSION} is already usable at ${found}; nothing to install (--force installs a copy into ${home}).\n`)
      return
    }
  }

  const stamp = path.join(venv, `.byol-torch-${TORCH_VERSION}`)
  const req = flags.reference === undefined ? null : path.resolve(String(flags.reference))
  if (req !== null && !fs.existsSync(req)) fail(`--reference: expected a requirements file, got '${req}' (no such file)`)
  const refStamp = req === null ? null : path.join(venv, `.reference-${require('node:crypto').createHash('sha256').update(fs.readFileSync(req)).digest('hex').slice(0, 16)}`)
  const installed = () => fs.existsSync(stamp) && isWanted(torchLibDir(venvPython)) && (refStamp === null || fs.existsSync(refStamp))
  if (fs.existsSync(venvPython) && installed()) {
    process.stdout.write(`libtorch ${TORCH_VERSION} is in ${torchLibDir(venvPython)}\n`)
    return
  }

  let python = flags.python === undefined ? undefined : String(flags.python)
  if (python === undefined) {
    python = ['python3.12', 'python3.11', 'python3.13', 'python3.10', 'python3'].find(pythonVersionOk)
    if (!python) fail('needs Python 3.10-3.14 with the venv module (python3) to install PyTorch from PyPI; or pass --python')
  } else if (!pythonVersionOk(python)) {
    fail(`--python: expected a Python 3.10-3.14 with the venv module, got '${python}'`)
  }
  const py = /** @type {string} */ (python)

  fs.mkdirSync(home, { recursive: true })
  lock(home)
  if (!fs.existsSync(venvPython)) {
    process.stdout.write(`creating the virtual environment ${venv}\n`)
    if (!run(py, ['-m', 'venv', venv]).ok) fail(`'${py} -m venv ${venv}' failed`)
  }
  if (!fs.existsSync(stamp) || !isWanted(torchLibDir(venvPython))) {
    process.stdout.write(`installing torch==${TORCH_VERSION} from PyPI: ${DOWNLOAD} to download, ${INSTALLED} on disk, once\n`)
    if (!run(venvPython, ['-m', 'pip', 'install', '--quiet', `torch==${TORCH_VERSION}`]).ok) fail('pip could not install torch (see its message above)')
    fs.writeFileSync(stamp, '')
  }
  if (req !== null && refStamp !== null && !fs.existsSync(refStamp)) {
    process.stdout.write(`installing the Python reference (${req})\n`)
    if (!run(venvPython, ['-m', 'pip', 'install', '--quiet', `torch==${TORCH_VERSION}`, '-r', req]).ok) fail('pip could not install the reference (see its message above)')
    fs.writeFileSync(refStamp, '')
  }
  process.stdout.write(`libtorch ${TORCH_VERSION} is in ${torchLibDir(venvPython)}\n`)
}

main()
