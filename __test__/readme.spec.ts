/**
 * Every sh, ts and js block of the README, run in order as a reader would:
 * the blocks before "Contributing" in a new project where `npm i byol-torch`
 * installs the packed tarballs (offline), the blocks from "Contributing" on in
 * the repository. TypeScript blocks are compiled with tsc --strict first.
 * Training is cut to a few steps by BYOL_TORCH_FAST_DEV_RUN, which every
 * `fit` honours. A block that must not run says why in a comment above it;
 * only the test command itself does.
 */
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { reference, root, tmpdir } from './helpers'
import { ok, packAndInstall, PATH, sh } from './installed'

interface Block {
  lang: string
  code: string
  line: number
  section: string
  notRun: string | null
}

function readmeBlocks(): Block[] {
  const lines = fs.readFileSync(path.join(root, 'README.md'), 'utf8').split('\n')
  const blocks: Block[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)/.exec(lines[i])
    if (heading) section = heading[1]
    const fence = /^```(\w+)/.exec(lines[i])
    if (!fence) continue
    const start = i
    const code: string[] = []
    while (++i < lines.length && !lines[i].startsWith('```')) code.push(lines[i])
    const before = lines.slice(0, start).reverse().find((l) => l.trim() !== '') ?? ''
    const notRun = /^<!-- readme-test: not run, (.+) -->$/.exec(before.trim())?.[1] ?? null
    blocks.push({ lang: fence[1], code: code.join('\n') + '\n', line: start + 1, section, notRun })
  }
  return blocks
}

const blocks = readmeBlocks()
const runnable = blocks.filter((b) => ['sh', 'bash', 'ts', 'js'].includes(b.lang))
const inRepository = (b: Block) => blocks.findIndex((x) => x.section === 'Contributing') <= blocks.indexOf(b)

let project: string
let shims: string
let fastDevRun: NodeJS.ProcessEnv

test.before(() => {
  const installed = packAndInstall()
  project = installed.project
  // What the README's examples read: a folder of photos in class sub-folders.
  reference(['bench-images', '--out', path.join(project, 'photos'), '--count', '200', '--size', '128'])
  shims = tmpdir('readme-shims')
  fs.writeFileSync(
    path.join(shims, 'npm'),
    `#!/usr/bin/env bash
# The README's npm commands as this test runs them: \`npm i byol-torch\` installs
# the packed tarballs, offline; \`npm publish\` only rehearses (--dry-run).
npm=/usr/bin/npm
case "$1" in
  i|install) if [ "$#" = 2 ] && [ "$2" = byol-torch ]; then exec "$npm" install --offline --no-audit --no-fund ${installed.tarballs.join(' ')}; fi ;;
  publish) exec "$npm" publish --dry-run "\${@:2}" ;;
esac
exec "$npm" "$@"
`,
    { mode: 0o755 },
  )
  fastDevRun = { BYOL_TORCH_FAST_DEV_RUN: '2' }
})

test('the README holds runnable blocks; only the test command and what needs several hosts or a GPU are not run', (t) => {
  t.true(runnable.length >= 8)
  const notRun = runnable.filter((b) => b.notRun)
  t.is(notRun.filter((b) => /scripts\/test\.sh/.test(b.code)).length, 1)
  for (const b of notRun.filter((b) => !/scripts\/test\.sh/.test(b.code))) {
    t.regex(b.notRun ?? '', /needs (two hosts|a Slurm cluster|a GPU host)/, `line ${b.line}`)
    t.true(['Multiple GPUs and hosts', 'GPUs: what has run on one'].includes(b.section), `line ${b.line}: ${b.section}`)
  }
})

for (const [i, block] of runnable.entries()) {
  if (block.notRun) continue
  const title = `README block ${i + 1} (line ${block.line}, ${block.lang}, "${block.section}"): ${block.code.split('\n').find((l) => l.trim() && !l.startsWith('#') && !l.startsWith('//'))?.trim()}`
  test.serial(title, (t) => {
    const cwd = inRepository(block) ? root : project
    const env = { ...fastDevRun, PATH: `${shims}:${inRepository(block) ? process.env.PATH : PATH}` }
    const file = path.join(project, `readme-${i + 1}.${block.lang === 'ts' ? 'mts' : block.lang === 'js' ? 'mjs' : 'sh'}`)
    fs.writeFileSync(file, block.code)
    let r
    if (block.lang === 'sh' || block.lang === 'bash') {
      r = sh('bash', ['-euo', 'pipefail', file], { cwd, env, timeout: 900_000 })
    } else {
      if (block.lang === 'ts') {
        const tsc = path.join(project, 'node_modules', '.bin', 'tsc')
        ok(sh(tsc, ['--strict', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'false', file], { cwd }))
      }
      r = sh(process.execPath, [file.replace(/\.mts$/, '.mjs')], { cwd, env })
    }
    t.log(`${(r.stdout + r.stderr).trim().split('\n').slice(-6).join('\n')}`)
    t.is(r.status, 0, `${r.stdout}\n${r.stderr}`)
  })
}
