/**
 * The packages as they are published: one version everywhere, and the main
 * package pointing at its platform packages.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root, tmpdir } from './helpers'

const check = (dir: string) => spawnSync(process.execPath, [path.join(root, 'scripts', 'sync-versions.mjs'), '--check', '--root', dir], { encoding: 'utf8' })

test('every package, the optional dependencies and the Rust workspace have one version', (t) => {
  const r = check(root)
  t.is(r.status, 0, r.stderr)
})

test('a platform package at another version fails the version check, naming it', (t) => {
  const copy = tmpdir('versions')
  for (const f of ['package.json', 'Cargo.toml']) fs.copyFileSync(path.join(root, f), path.join(copy, f))
  fs.cpSync(path.join(root, 'npm'), path.join(copy, 'npm'), { recursive: true, filter: (f) => !f.endsWith('.node') })
  const platform = path.join(copy, 'npm', 'linux-x64-gnu', 'package.json')
  fs.writeFileSync(platform, JSON.stringify({ ...JSON.parse(fs.readFileSync(platform, 'utf8')), version: '9.9.9' }))
  const r = check(copy)
  t.is(r.status, 1)
  t.regex(r.stderr, /npm\/linux-x64-gnu\/package\.json is 9\.9\.9/)
})

test('each platform package ships its addon, and the x64 one its NCCL backend beside it', (t) => {
  for (const dir of fs.readdirSync(path.join(root, 'npm'))) {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'npm', dir, 'package.json'), 'utf8'))
    // PyPI's torch is a CUDA build on x86-64 only: the NCCL library is built where libtorch_cuda is.
    const nccl = pkg.main.replace(/\.node$/, '.nccl.so')
    t.deepEqual(pkg.files, dir === 'linux-x64-gnu' ? [pkg.main, nccl] : [pkg.main], pkg.name)
  }
})

test('the exports map serves types, import and require', (t) => {
  const main = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  t.deepEqual(Object.keys(main.exports['.']), ['types', 'import', 'require'])
})
