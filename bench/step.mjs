// npm run bench:step: byol-torch's trainingStep against the same step of the
// PyTorch reference (reference/byol_reference.py), side by side in one run:
// ResNet18, batch 32, 64x64 inputs, CPU, same libtorch, same thread count.
// Each side runs in its own process, alternating, and the best round counts.
import { execFileSync } from 'node:child_process'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '32' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    // One JSON line at the end, for `npm run bench`.
    json: { type: 'boolean', default: false },
  },
})
const python = join(process.env.BYOL_TORCH_HOME || join(homedir(), '.cache', 'byol-torch'), 'venv', 'bin', 'python')
const { batch, size, steps, warmup, threads } = values

function ours() {
  const out = execFileSync(process.execPath, [join(here, 'step-worker.cjs'), batch, size, steps, warmup, threads], { encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').pop())
}
function reference() {
  const args = [join(here, '..', 'reference', 'byol_reference.py'), 'bench', '--batch', batch, '--size', size, '--steps', steps, '--warmup', warmup, '--threads', threads]
  const out = execFileSync(python, args, { encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').pop())
}

console.log(`trainingStep, ResNet18 BYOL, batch ${batch}, ${size}x${size}, CPU, ${threads} thread(s), ${steps} timed steps after ${warmup} warm-up, best of ${values.rounds} rounds`)
let best = { ours: null, ref: null }
for (let r = 0; r < Number(values.rounds); r++) {
  const a = ours()
  const b = reference()
  console.log(`  round ${r + 1}: byol-torch ${a.steps_per_s.toFixed(3)} steps/s, PyTorch ${b.steps_per_s.toFixed(3)} steps/s`)
  if (!best.ours || a.steps_per_s > best.ours.steps_per_s) best.ours = a
  if (!best.ref || b.steps_per_s > best.ref.steps_per_s) best.ref = b
}
console.log(`byol-torch: ${best.ours.steps_per_s.toFixed(3)} steps/s, peak RSS ${best.ours.peak_rss_mib.toFixed(0)} MiB`)
console.log(`PyTorch:    ${best.ref.steps_per_s.toFixed(3)} steps/s, peak RSS ${best.ref.peak_rss_mib.toFixed(0)} MiB`)
console.log(`ratio (byol-torch / PyTorch): ${(best.ours.steps_per_s / best.ref.steps_per_s).toFixed(3)}`)
if (values.json) {
  console.log(JSON.stringify({ unit: 'steps/s', ours: best.ours.steps_per_s, torch: best.ref.steps_per_s, ours_rss_mib: best.ours.peak_rss_mib, torch_rss_mib: best.ref.peak_rss_mib }))
}
