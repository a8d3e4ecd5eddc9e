/**
 * byol-torch as a user gets it (see installed.ts): everything below runs in
 * a new project where the packed tarballs were installed offline, through the
 * installed package only.
 */
import test from 'ava'
import { SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root, tmpdir } from './helpers'
import { artifacts, ok, packAndInstall, sh as shIn, version } from './installed'

let project: string
let tarballs: string[]
let installSeconds = 0
const sh = (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> => shIn(cmd, args, { cwd: project, ...opts })

test.before(() => {
  ;({ project, tarballs, installSeconds } = packAndInstall())
})

test.serial('there is no Rust toolchain on the PATH the install runs with', (t) => {
  for (const tool of ['cargo', 'rustc']) t.not(sh('sh', ['-c', `command -v ${tool}`]).status, 0, tool)
  t.log(`offline install of ${tarballs.map((f) => path.basename(f)).join(', ')} and TypeScript: ${installSeconds.toFixed(1)} s`)
})

/** The highest version of each symbol-version family an ELF file needs, its NEEDED libraries and run paths. */
function elfFacts(file: string) {
  const highest = (family: string) =>
    [...new Set(ok(sh('readelf', ['-V', '-W', file])).match(new RegExp(`\\b${family}_[0-9.]+`, 'g')) ?? [])]
      .map((v) => v.slice(family.length + 1).split('.').map(Number))
      .sort((a, b) => a.reduce((d, x, i) => d || x - (b[i] ?? 0), 0) || a.length - b.length)
      .pop()
  const dynamic = ok(sh('readelf', ['-d', '-W', file]))
  return {
    glibc: highest('GLIBC') ?? [0],
    glibcxx: highest('GLIBCXX') ?? [0],
    needed: [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
    runPaths: dynamic.match(/.*\(R(UN)?PATH\).*/g) ?? [],
  }
}

for (const [platform, arch] of [['linux-x64-gnu', 'X86-64'], ['linux-arm64-gnu', 'AArch64']]) {
  test.serial(`the ${platform} binary needs glibc <= 2.28, finds libtorch by soname, needs no CUDA library and has no RPATH`, (t) => {
    const addon = path.join(project, 'node_modules', `byol-torch-${platform}`, `byol-torch.${platform}.node`)
    if (platform !== 'linux-x64-gnu') {
      // npm installs only this machine's platform package: read the other from its tarball.
      const dir = tmpdir(platform)
      ok(sh('tar', ['xzf', path.join(artifacts, `byol-torch-${platform}-${version}.tgz`), '-C', dir]))
      fs.mkdirSync(path.dirname(addon), { recursive: true })
      fs.copyFileSync(path.join(dir, 'package', path.basename(addon)), addon)
    }
    t.regex(ok(sh('readelf', ['-h', addon])), new RegExp(`Machine:\\s+.*${arch}`))
    const facts = elfFacts(addon)
    t.log(`${path.basename(addon)}: ${(fs.statSync(addon).size / 1e6).toFixed(2)} MB; highest GLIBC_${facts.glibc.join('.')}, GLIBCXX_${facts.glibcxx.join('.')}`)
    t.log(`NEEDED: ${facts.needed.join(', ')}`)
    t.log(`RPATH/RUNPATH: ${facts.runPaths.length ? facts.runPaths.join('; ') : 'none'}`)
    t.true(facts.glibc[0] === 2 && facts.glibc[1] <= 28, `needs GLIBC_${facts.glibc.join('.')}`)
    // No newer than libtorch's own need (the libstdc++ of GCC 8, as manylinux_2_28).
    t.true(facts.glibcxx[2] <= 25, `needs GLIBCXX_${facts.glibcxx.join('.')}`)
    for (const lib of ['libtorch_cpu.so', 'libc10.so']) t.true(facts.needed.includes(lib), lib)
    // libtorch.so needs libtorch_cuda.so: either entry would map the CUDA
    // libraries on a host that has no GPU (src/native.ts loads them where it has).
    for (const lib of ['libtorch.so', 'libtorch_cuda.so', 'libc10_cuda.so']) t.false(facts.needed.includes(lib), lib)
    t.deepEqual(facts.runPaths, [], 'no RPATH or RUNPATH')
  })
}

test.serial('the linux-x64-gnu package carries the NCCL backend: glibc <= 2.28, libtorch_cuda by soname, no RPATH', (t) => {
  const nccl = path.join(project, 'node_modules', 'byol-torch-linux-x64-gnu', 'byol-torch.linux-x64-gnu.nccl.so')
  t.true(fs.existsSync(nccl), nccl)
  const facts = elfFacts(nccl)
  t.log(`${path.basename(nccl)}: ${(fs.statSync(nccl).size / 1e3).toFixed(0)} kB; highest GLIBC_${facts.glibc.join('.')}, GLIBCXX_${facts.glibcxx.join('.')}; NEEDED: ${facts.needed.join(', ')}`)
  t.true(facts.glibc[0] === 2 && facts.glibc[1] <= 28, `needs GLIBC_${facts.glibc.join('.')}`)
  t.true(facts.glibcxx[2] <= 25, `needs GLIBCXX_${facts.glibcxx.join('.')}`)
  t.true(facts.needed.includes('libtorch_cuda.so'))
  t.deepEqual(facts.runPaths, [], 'no RPATH or RUNPATH')
})

test.serial('the main package depends optionally on every platform package, at its own version', (t) => {
  const main = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'byol-torch', 'package.json'), 'utf8'))
  const platforms = fs.readdirSync(path.join(root, 'npm')).map((d) => JSON.parse(fs.readFileSync(path.join(root, 'npm', d, 'package.json'), 'utf8')).name)
  t.deepEqual(main.optionalDependencies, Object.fromEntries(platforms.map((name) => [name, version])))
})

test.serial('require and import load the installed package', (t) => {
  t.regex(ok(sh('node', ['-e', "const b = require('byol-torch'); console.log(typeof b.BYOL, b.VERSION)"])), /^function 0\./)
  t.regex(ok(sh('node', ['--input-type=module', '-e', "import { BYOL, Trainer } from 'byol-torch'; console.log(typeof BYOL, typeof Trainer)"])), /^function function/)
})

test.serial('a training step runs from the installed package', (t) => {
  const script = `
    const { BYOL, resnet18, randn } = require('byol-torch')
    const model = new BYOL({ backbone: resnet18({ width: 8, smallInputs: true }), seed: 0 })
    const x = randn([4, 3, 16, 16], { seed: 1 })
    console.log(model.trainingStep([x, x]).item(), model.globalStep)`
  const [loss, step] = ok(sh('node', ['-e', script])).trim().split(' ').map(Number)
  t.true(Number.isFinite(loss))
  t.is(step, 1)
})

test.serial('npx byol-torch train writes its run folder', (t) => {
  const out = path.join(project, 'run')
  ok(sh('npx', ['byol-torch', 'train', '--data', 'mnist', '--max-steps', '20', '--width', '8', '--small-inputs', '--hidden-dim', '64', '--output-dim', '32', '--batch-size', '32', '--out', out]))
  for (const f of ['model.safetensors', 'backbone.safetensors', 'metrics.jsonl', 'report.html', 'checkpoints/step-00000020/trainer.json']) {
    t.true(fs.existsSync(path.join(out, f)), f)
  }
})

test.serial('npx byol-torch doctor reports what a bug report needs and succeeds', (t) => {
  const text = ok(sh('npx', ['byol-torch', 'doctor']))
  for (const line of ['addon', 'libtorch', 'CUDA', 'threads', 'CPU']) t.regex(text, new RegExp(`^  ${line}\\b`, 'm'))
  t.regex(text, /everything byol-torch needs is here/)
  t.log(text)
})

test.serial('npx byol-torch doctor fails, saying why, when libtorch is missing', (t) => {
  const r = sh('npx', ['byol-torch', 'doctor'], { env: { BYOL_TORCH_HOME: tmpdir('empty-cache'), HOME: tmpdir('home') } })
  t.is(r.status, 1)
  t.regex(r.stdout, /npx byol-torch-install-libtorch/)
})

test.serial('npx byol-torch-install-libtorch prints its usage, and finds the installed libtorch', (t) => {
  const help = ok(sh('npx', ['byol-torch-install-libtorch', '--help']))
  t.regex(help, /^Usage: byol-torch-install-libtorch/)
  t.regex(help, /GB/)
  t.regex(ok(sh('npx', ['byol-torch-install-libtorch'])), /libtorch 2\.11\.0 is/)
})

test.serial('an unsupported platform is refused with an error naming the supported ones', (t) => {
  const script = "Object.defineProperty(process, 'arch', { value: 'riscv64' }); try { require('byol-torch') } catch (e) { console.log(e.code, e.message) }"
  const out = ok(sh('node', ['-e', script]))
  t.regex(out, /^ERR_BYOL_UNSUPPORTED_PLATFORM .*linux-riscv64.*linux-x64/)
})

for (const module of ['nodenext', 'commonjs']) {
  test.serial(`a consumer using every export compiles with tsc --strict, module ${module}`, (t) => {
    const dir = path.join(project, `ts-${module}`)
    fs.mkdirSync(dir, { recursive: true })
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'consumer', 'consumer.ts'), path.join(dir, 'consumer.ts'))
    // Under nodenext the same file also compiles as an ES module.
    if (module === 'nodenext') fs.copyFileSync(path.join(dir, 'consumer.ts'), path.join(dir, 'consumer.mts'))
    const tsconfig = {
      compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, module, moduleResolution: module === 'nodenext' ? 'nodenext' : 'node10', target: 'es2022', types: ['node'] },
      files: module === 'nodenext' ? ['consumer.ts', 'consumer.mts'] : ['consumer.ts'],
    }
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
    const r = sh(path.join(project, 'node_modules', '.bin', 'tsc'), ['-p', dir])
    t.is(r.status, 0, r.stdout + r.stderr)
  })
}

test.serial('the consumer file uses every runtime export of the package', (t) => {
  const exports = JSON.parse(ok(sh('node', ['-e', "console.log(JSON.stringify(Object.keys(require('byol-torch'))))"]))) as string[]
  const source = fs.readFileSync(path.join(__dirname, 'fixtures', 'consumer', 'consumer.ts'), 'utf8')
  t.deepEqual(exports.filter((name) => !new RegExp(`\\b${name}\\b`).test(source)), [])
})
