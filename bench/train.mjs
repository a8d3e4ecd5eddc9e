// npm run bench:train: images/s of the whole training loop (JPEG decode, both
// BYOL views, momentum update, four forwards, backward, SGD step) of
// Trainer.fit against the same loop in PyTorch (torchvision.transforms.v2,
// torch DataLoader with the same worker count, minerva's BYOL on the same
// ResNet18, batch and threads), side by side in one run, with each side's
// peak RSS. Each side runs in its own process; rounds alternate.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    workers: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    count: { type: 'string', default: '512' },
    rounds: { type: 'string', default: '2' },
    // One JSON line at the end, for `npm run bench`.
    json: { type: 'boolean', default: false },
  },
})
const python = join(process.env.BYOL_TORCH_HOME || join(homedir(), '.cache', 'byol-torch'), 'venv', 'bin', 'python')
const script = join(here, '..', 'reference', 'byol_reference.py')
const root = mkdtempSync(join(tmpdir(), 'byol-bench-train-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
execFileSync(python, [script, 'bench-images', '--out', root, '--count', values.count])
const { size, batch, workers, threads, steps, warmup } = values
console.log(`whole training loop: ResNet18 BYOL (4096/256 heads), ${values.count} JPEGs 256x256 -> two ${size}x${size} views, batch ${batch}, ${workers} data worker(s), ${threads} libtorch threads, CPU; steps ${warmup}-${steps} timed`)

const run = (cmd, args) => JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop())
const best = { ours: null, torch: null }
for (let r = 0; r < Number(values.rounds); r++) {
  const ours = run(process.execPath, [join(here, 'train-worker.cjs'), root, size, batch, workers, threads, steps, warmup])
  const torch = run(python, [script, 'bench-train', '--root', root, '--size', size, '--batch', batch, '--workers', workers, '--threads', threads, '--steps', steps, '--warmup', warmup])
  console.log(`round ${r + 1}: byol-torch ${ours.images_per_s.toFixed(1)} images/s (peak RSS ${ours.peak_rss_mib.toFixed(0)} MiB), PyTorch ${torch.images_per_s.toFixed(1)} images/s (peak RSS ${torch.peak_rss_mib.toFixed(0)} MiB), ratio ${(ours.images_per_s / torch.images_per_s).toFixed(2)}`)
  if (!best.ours || ours.images_per_s > best.ours.images_per_s) best.ours = ours
  if (!best.torch || torch.images_per_s > best.torch.images_per_s) best.torch = torch
}
console.log(
  `best of ${values.rounds}: byol-torch ${best.ours.images_per_s.toFixed(1)} vs PyTorch ${best.torch.images_per_s.toFixed(1)} images/s = ${(best.ours.images_per_s / best.torch.images_per_s).toFixed(2)}x; peak RSS ${best.ours.peak_rss_mib.toFixed(0)} vs ${best.torch.peak_rss_mib.toFixed(0)} MiB`,
)
if (values.json) {
  console.log(JSON.stringify({ unit: 'images/s', ours: best.ours.images_per_s, torch: best.torch.images_per_s, ours_rss_mib: best.ours.peak_rss_mib, torch_rss_mib: best.torch.peak_rss_mib }))
}
