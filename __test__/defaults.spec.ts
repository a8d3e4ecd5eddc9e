/**
 * Every default lives once, in the core; the documentation of each option
 * says what it is. These tests hold the documented defaults to the core's.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { native } from '../src/native'
import { root } from './helpers'

const defaults: Record<string, Record<string, unknown>> = JSON.parse(native.documentedDefaults())

/** The "Default `x`" of each field of `interface name` in a declaration or source file. */
function documented(file: string, name: string): Record<string, unknown> {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  const start = text.indexOf(`interface ${name} `)
  if (start < 0) throw new Error(`${file}: no interface ${name}`)
  const body = text.slice(start, text.indexOf('\n}', start))
  const out: Record<string, unknown> = {}
  for (const m of body.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(\w+)\?:/g)) {
    const value = /Default `([^`]+)`/.exec(m[1])?.[1]
    if (value !== undefined) out[m[2]] = JSON.parse(value.replace(/'/g, '"').replace(/([{,]\s*)(\w+):/g, '$1"$2":'))
  }
  return out
}

function check(t: import('ava').ExecutionContext, file: string, name: string, key = name) {
  const docs = documented(file, name)
  t.true(Object.keys(docs).length > 0, `${name} documents defaults`)
  for (const [field, value] of Object.entries(docs)) t.deepEqual(value, defaults[key][field], `${name}.${field}`)
}

for (const name of ['TrainerOptions', 'ByolTransformOptions', 'LoaderOptions', 'KnnOptions', 'LinearProbeOptions']) {
  test(`the documented defaults of ${name} are the core's`, (t) => check(t, 'src/native.generated.d.ts', name))
}

test("the documented defaults of BYOLOptions and ResNetOptions are the core's", (t) => {
  check(t, 'src/byol.ts', 'BYOLOptions')
  check(t, 'src/modules.ts', 'ResNetOptions')
})

test("the heads' documented signatures have the core's dimensions", (t) => {
  const text = fs.readFileSync(path.join(root, 'src', 'modules.ts'), 'utf8')
  for (const head of ['BYOLProjectionHead', 'BYOLPredictionHead']) {
    const m = new RegExp(`minerva's \`${head}\\(input_dim=(\\d+), hidden_dim=(\\d+), output_dim=(\\d+)\\)\``).exec(text)
    t.truthy(m, head)
    t.deepEqual(m?.slice(1).map(Number), [defaults[head].inputDim, defaults[head].hiddenDim, defaults[head].outputDim], head)
  }
})
