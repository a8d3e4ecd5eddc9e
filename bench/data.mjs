// npm run bench:data: images/s of the two-view pipeline (JPEG decode + both
// BYOL views at 224x224) of byol-torch's DataLoader against torchvision.transforms.v2
// with torch.utils.data.DataLoader, same worker count, same images, in one run;
// then the augmentation alone on decoded uint8 images.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BYOLTransform, DataLoader, ImageFolder, setNumThreads } from '../dist/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    batch: { type: 'string', default: '32' },
    count: { type: 'string', default: '256' },
    epochs: { type: 'string', default: '2' },
    // One JSON line at the end, for `npm run bench`.
    json: { type: 'boolean', default: false },
  },
})
const python = join(process.env.BYOL_TORCH_HOME || join(homedir(), '.cache', 'byol-torch'), 'venv', 'bin', 'python')
const script = join(here, '..', 'reference', 'byol_reference.py')
const root = mkdtempSync(join(tmpdir(), 'byol-bench-data-'))
process.on('exit', () => rmSync(root, { recursive: true, force: true }))
execFileSync(python, [script, 'bench-images', '--out', root, '--count', values.count])
const workers = Number(values.workers)
const batch = Number(values.batch)

setNumThreads(1)
const loader = new DataLoader(new ImageFolder(root), { batchSize: batch, numWorkers: workers, transform: new BYOLTransform({ inputSize: 224 }), imageSize: 256 })
let n = 0
let start = performance.now()
for (let e = 0; e < Number(values.epochs); e++) {
  for await (const [x0, x1] of loader) {
    n += x0.shape[0]
    x0.dispose()
    x1.dispose()
  }
}
const ours = n / ((performance.now() - start) / 1000)

// The augmentation alone: one worker, already decoded uint8 batches.
const alone = new DataLoader(new ImageFolder(root), { batchSize: batch, numWorkers: 1, imageSize: 256, shuffle: false })
const decoded = []
for await (const [x0] of alone) decoded.push(x0)
const transform = new BYOLTransform({ inputSize: 224 })
let m = 0
start = performance.now()
for (const x of decoded.slice(0, 4)) {
  const [a, b] = transform.apply(x)
  m += x.shape[0]
  a.dispose()
  b.dispose()
}
const oursAlone = m / ((performance.now() - start) / 1000)

const ref = JSON.parse(execFileSync(python, [script, 'bench-data', '--root', root, '--batch', String(batch), '--workers', String(workers), '--epochs', values.epochs], { encoding: 'utf8' }).trim().split('\n').pop())
console.log(`two-view pipeline (decode + 2 views, 224x224), ${values.count} JPEGs 256x256, batch ${batch}, ${workers} worker(s):`)
console.log(`  byol-torch  ${ours.toFixed(0)} images/s`)
console.log(`  torchvision ${ref.pipeline_images_per_s.toFixed(0)} images/s`)
console.log(`  ratio ${(ours / ref.pipeline_images_per_s).toFixed(2)}`)
console.log(`augmentation alone (2 views of decoded uint8 images, one thread):`)
console.log(`  byol-torch  ${oursAlone.toFixed(0)} images/s (batched)`)
console.log(`  torchvision ${ref.augment_images_per_s.toFixed(0)} images/s (per image)`)
console.log(`  ratio ${(oursAlone / ref.augment_images_per_s).toFixed(2)}`)
if (values.json) {
  const rss = { ours_rss_mib: process.resourceUsage().maxRSS / 1024, torch_rss_mib: ref.peak_rss_mib }
  console.log(JSON.stringify({
    pipeline: { unit: 'images/s', ours, torch: ref.pipeline_images_per_s, ...rss },
    augment: { unit: 'images/s', ours: oursAlone, torch: ref.augment_images_per_s, ...rss },
  }))
}
