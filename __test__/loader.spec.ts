import test from 'ava'
import { spawnSync } from 'node:child_process'
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
