import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { INSTALL_COMMAND, libtorch, TORCH_VERSION } from '../src/index'
import { root, tmpdir } from './helpers'

/** Requires the built package in a fresh process with `env`, returning what it printed. */
function requireWith(env: NodeJS.ProcessEnv) {
  const script = "try { require(process.argv[1]); console.log('loaded') } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }"
  const r = spawnSync(process.execPath, ['-e', script, path.join(root, 'dist', 'index.js')], { env, encoding: 'utf8' })
  return r.stdout.trim()
}

/** PATH without the cached venv, so that python3 has no torch. */
function pathWithoutTorch(): string {
  return (process.env.PATH ?? '').split(':').filter((p) => !p.includes('byol-torch')).join(':')
}

test('libtorch is found and is PyTorch 2.11.0', (t) => {
  t.is(TORCH_VERSION, '2.11.0')
  t.true(libtorch.version?.startsWith('2.11.0'))
  t.log(`libtorch from ${libtorch.source}: ${libtorch.libDir}`)
})

test('with no libtorch anywhere, require throws an Error naming the install command', (t) => {
  const out = requireWith({ PATH: pathWithoutTorch(), HOME: tmpdir('home'), BYOL_TORCH_HOME: tmpdir('empty-cache') })
  const err = JSON.parse(out)
  t.is(err.code, 'ERR_BYOL_LIBTORCH_NOT_FOUND')
  t.true(err.message.includes(INSTALL_COMMAND))
  t.regex(err.message, /found none/)
})

test('BYOL_TORCH_LIBTORCH pointing at a folder without libtorch is an error, not a silent fallback', (t) => {
  const bad = tmpdir('not-libtorch')
  const err = JSON.parse(requireWith({ ...process.env, BYOL_TORCH_LIBTORCH: bad }))
  t.is(err.code, 'ERR_BYOL_LIBTORCH_NOT_FOUND')
  t.true(err.message.includes(`no libtorch.so in ${bad}`))
})

test('BYOL_TORCH_LIBTORCH pointing at a torch/lib folder is used', (t) => {
  t.is(requireWith({ PATH: pathWithoutTorch(), BYOL_TORCH_HOME: tmpdir('empty-cache'), BYOL_TORCH_LIBTORCH: libtorch.libDir }), 'loaded')
})

test('a libtorch that cannot be loaded is ERR_BYOL_LIBTORCH_LOAD naming the file', (t) => {
  const broken = tmpdir('broken-libtorch')
  for (const name of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']) fs.writeFileSync(path.join(broken, name), 'not an ELF file')
  const err = JSON.parse(requireWith({ ...process.env, BYOL_TORCH_LIBTORCH: broken }))
  t.is(err.code, 'ERR_BYOL_LIBTORCH_LOAD')
  t.true(err.message.startsWith(`byol-torch: cannot load ${path.join(broken, 'libc10.so')}: `), err.message)
})

test('without the platform package that holds the addon, require says to reinstall with optional dependencies', (t) => {
  // The package as npm would lay it out with --omit=optional: dist/ and package.json, no addon.
  const pkg = path.join(tmpdir('no-addon'), 'byol-torch')
  fs.cpSync(path.join(root, 'dist'), path.join(pkg, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'))
  const script = "try { require(process.argv[1]); console.log('loaded') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"
  const r = spawnSync(process.execPath, ['-e', script, path.join(pkg, 'dist', 'index.js')], { env: { ...process.env, BYOL_TORCH_LIBTORCH: libtorch.libDir }, encoding: 'utf8' })
  const err = JSON.parse(r.stdout.trim())
  t.is(err.code, 'ERR_BYOL_ADDON_NOT_FOUND')
  t.regex(err.message, /byol-torch-linux-x64-gnu.*--omit=optional/)
})
