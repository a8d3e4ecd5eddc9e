/**
 * byol-torch's CUDA half, as far as a host without a GPU can check it: the
 * NCCL backend's library resolves against libtorch_cuda, a CPU host maps
 * none of it, torch.backends' switches, and the GPU check script's own
 * plumbing (`bench/gpu-check --cpu`).
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { cudaBackends, cudaIsAvailable, libtorch } from '../src/index'
import { addonPath, ncclLibraryFile } from '../src/native'
import { root } from './helpers'

const nccl = ncclLibraryFile(addonPath)

test('the NCCL backend is built beside the addon from the CUDA build of libtorch', (t) => {
  t.true(fs.existsSync(path.join(libtorch.libDir, 'libtorch_cuda.so')), 'the cached libtorch is the CUDA build')
  t.true(fs.existsSync(nccl), nccl)
})

test('every symbol of the NCCL backend resolves against libtorch_cuda and NCCL, without a GPU', (t) => {
  // dlopen with RTLD_NOW binds every symbol at once or fails naming the one
  // that is missing; libtorch_cuda loads on any host, a GPU or not.
  const script = `
    const path = require('path'), os = require('os')
    const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | 0x1000
    const load = (f) => { try { process.dlopen({ exports: {} }, f, flags) } catch (e) { if (!/self-register/.test(e.message)) { console.log(e.message); process.exit(1) } } }
    for (const lib of ['libc10.so', 'libtorch_cpu.so', 'libc10_cuda.so', 'libtorch_cuda.so']) load(path.join(process.argv[1], lib))
    load(process.argv[2])
    console.log('resolved')`
  const r = spawnSync(process.execPath, ['-e', script, libtorch.libDir, nccl], { encoding: 'utf8' })
  t.is(r.stdout.trim(), 'resolved', r.stdout + r.stderr)
  const readelf = spawnSync('readelf', ['-d', '-W', nccl], { encoding: 'utf8' }).stdout
  t.regex(readelf, /\(NEEDED\)\s+Shared library: \[libtorch_cuda\.so\]/)
  t.notRegex(readelf, /R(UN)?PATH/, 'found by soname, as the addon finds libtorch')
})

test('a host without a CUDA driver maps neither libtorch_cuda nor the NCCL backend', (t) => {
  t.false(cudaIsAvailable())
  const maps = spawnSync(process.execPath, ['-e', "require(process.argv[1]); process.stdout.write(require('fs').readFileSync('/proc/self/maps', 'utf8'))", path.join(root, 'dist')], {
    encoding: 'utf8',
  }).stdout
  t.regex(maps, /libtorch_cpu\.so/)
  t.notRegex(maps, /libtorch_cuda\.so|\.nccl\.so|libnccl/)
})

test("cudaBackends sets torch.backends' switches and reads them back", (t) => {
  const before = cudaBackends()
  t.deepEqual(Object.keys(before).sort(), ['cudnnAllowTf32', 'cudnnBenchmark', 'cudnnDeterministic', 'matmulAllowTf32'])
  try {
    t.like(cudaBackends({ cudnnAllowTf32: false, cudnnDeterministic: true }), { cudnnAllowTf32: false, cudnnDeterministic: true, matmulAllowTf32: before.matmulAllowTf32 })
    t.like(cudaBackends(), { cudnnAllowTf32: false, cudnnDeterministic: true })
  } finally {
    cudaBackends(before)
  }
})

test('cudaBackends names the switch given a wrong value', (t) => {
  const e = t.throws(() => cudaBackends({ cudnnBenchmark: 1 as unknown as boolean }), { instanceOf: TypeError })
  t.regex(e?.message ?? '', /cudnnBenchmark: expected a boolean, got 1/)
  t.truthy((e as TypeError & { code?: string }).code)
})

test('bench/gpu-check --cpu runs every part of the GPU check at toy sizes, and every check passes', (t) => {
  // The GPU check is run by hand on a GPU host; this keeps its plumbing
  // (the workers, the reference's side, the table) from rotting unseen.
  const r = spawnSync(process.execPath, [path.join(root, 'bench', 'gpu-check'), '--cpu'], { encoding: 'utf8', timeout: 900_000 })
  t.log(r.stdout)
  t.is(r.status, 0, r.stderr.slice(-4000))
  for (const section of ['fp32 parity on cpu', 'mixed precision', 'loader', 'data-parallel', 'throughput']) t.regex(r.stdout, new RegExp(`^\\| ${section} `, 'm'), section)
  t.regex(r.stdout, /stand-ins against lightly's classes .* ok \|/)
  t.regex(r.stdout, /gpu-check: (\d+) of \1 checks ok/)
})
