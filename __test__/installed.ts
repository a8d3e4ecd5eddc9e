/**
 * byol-torch as a user gets it, for the tests that need it: `npm run
 * pack:all` makes the tarballs, which are installed offline into a new
 * project outside the repository, with no Rust toolchain and nothing of the
 * repository on PATH.
 */
import { execFileSync, spawnSync, SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root, tmpdir } from './helpers'

export const artifacts = path.join(root, 'artifacts')
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'))
export const version: string = lock.version
/** The consumer compiles with the TypeScript and Node types the repository is tested with. */
export const typescript = ['typescript', '@types/node'].map((n) => `${n}@${lock.packages[`node_modules/${n}`].version}`)
/** Node and the system's tools; not cargo, rustc, the repository or its node_modules. */
export const PATH = [path.dirname(process.execPath), '/usr/bin', '/bin'].join(':')

export function sh(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: opts.cwd, env: { HOME: process.env.HOME, PATH, ...opts.env }, encoding: 'utf8', timeout: opts.timeout ?? 300_000 })
}

export function ok(r: SpawnSyncReturns<string>): string {
  if (r.status !== 0) throw new Error(`exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

export interface Installed {
  /** The new project the packages are installed in. */
  project: string
  tarballs: string[]
  /** Seconds the offline `npm install` took. */
  installSeconds: number
}

/** Packs every package, then installs them (and TypeScript) offline into a new project. */
export function packAndInstall(): Installed {
  execFileSync('npm', ['run', '--silent', 'pack:all'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  // The main package and this machine's platform package, as npm would pick
  // them from the registry (it refuses another platform's).
  const tarballs = [`byol-torch-${version}.tgz`, `byol-torch-linux-x64-gnu-${version}.tgz`].map((f) => path.join(artifacts, f))
  // The one step that may use the network: npm's cache learns the packages'
  // dependencies (and the consumer's TypeScript), as any first install would.
  const warm = tmpdir('npm-warm')
  fs.writeFileSync(path.join(warm, 'package.json'), '{"name":"warm","private":true}')
  ok(sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs, ...typescript], { cwd: warm }))

  const project = tmpdir('consumer')
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  const started = Date.now()
  ok(sh('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs, ...typescript], { cwd: project }))
  return { project, tarballs, installSeconds: (Date.now() - started) / 1000 }
}
