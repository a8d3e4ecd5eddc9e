// npm run bench:ddp: what data-parallel training costs on CPU. The step time
// of one process alone (one libtorch thread) against the step time of each of
// two processes training together over Gloo on 127.0.0.1 (one thread each, the
// same batch per process): the difference is the gradient all-reduce that
// backward did not hide, and the broadcast of BatchNorm buffers. A speed-up
// needs more cores than processes; this measures the overhead.
import { execFileSync, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort, rankEnv } from '../dist/launch.js'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '16' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
  },
})
const worker = join(here, 'ddp-worker.cjs')
const args = [values.batch, values.size, values.steps, values.warmup]
const last = (out) => JSON.parse(out.trim().split('\n').pop())

async function pair() {
  const port = String(await freePort())
  const ranks = [0, 1].map((rank) => {
    const env = { ...process.env, ...rankEnv(rank, 2, '127.0.0.1', port) }
    const child = spawn(process.execPath, [worker, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${rank} exited with ${code}`)))))
  })
  return last((await Promise.all(ranks))[0])
}

console.log(`data-parallel overhead: ResNet18 BYOL, batch ${values.batch} per process, ${values.size}x${values.size}, CPU, one libtorch thread per process, Gloo over 127.0.0.1, bucket 25 MiB; steps ${values.warmup}-${values.steps} timed, best of ${values.rounds}`)
// One process alone: no launcher's variables, whatever this shell has.
const launcherVariables = Object.keys(rankEnv(0, 1, '', ''))
const alone1 = Object.fromEntries(Object.entries(process.env).filter(([k]) => !launcherVariables.includes(k)))
let alone = Infinity
let together = Infinity
for (let r = 0; r < Number(values.rounds); r++) {
  const one = last(execFileSync(process.execPath, [worker, ...args], { encoding: 'utf8', env: alone1, stdio: ['ignore', 'pipe', 'inherit'] }))
  const two = await pair()
  console.log(`  round ${r + 1}: one process ${one.ms_per_step.toFixed(0)} ms/step, two processes ${two.ms_per_step.toFixed(0)} ms/step`)
  alone = Math.min(alone, one.ms_per_step)
  together = Math.min(together, two.ms_per_step)
}
const overhead = together - alone
console.log(`one process: ${alone.toFixed(0)} ms/step; each of two: ${together.toFixed(0)} ms/step`)
console.log(`communication not hidden by backward: ${overhead.toFixed(0)} ms per step (${((100 * overhead) / together).toFixed(1)}% of the step)`)
