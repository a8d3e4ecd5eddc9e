/**
 * The whole API against wrong arguments: every export, static method, method
 * and setter, called with numbers, NaN, strings, null, undefined, objects,
 * arrays, Symbols, BigInts and disposed tensors, answers with an error that
 * has a `code` (a TypeError or RangeError naming the argument), never with
 * napi's raw conversion message, a hang or the death of the process.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { root, tmpdir } from './helpers'

test('every export and public method answers a table of wrong values with a coded error, without hanging or dying', (t) => {
  // In a folder of its own: a wrong value can be a valid file name ('x'), which a save then writes.
  const cwd = tmpdir('api-table')
  const r = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'api-table.cjs'), path.join(root, 'dist')], { encoding: 'utf8', timeout: 300_000, cwd })
  t.is(r.signal, null, `the process died or hung: ${r.signal}\n${r.stderr.slice(-2000)}`)
  t.is(r.status, 0, r.stderr.slice(-2000))
  const { calls, uncoded } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { calls: number; uncoded: string[] }
  t.log(`${calls} calls, ${uncoded.length} errors without a code`)
  t.true(calls > 500)
  t.deepEqual(uncoded, [])
})

test('tensor.to names its argument and what it takes', async (t) => {
  const { randn } = await import('../src/index')
  const x = randn([2])
  for (const wrong of [7, undefined]) {
    const e = t.throws(() => x.to(wrong as never), { instanceOf: TypeError }) as TypeError & { code?: string }
    t.is(e.code, 'ERR_INVALID_ARG_TYPE')
    t.regex(e.message, /^device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got /)
  }
})
