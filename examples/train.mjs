// Training from the TypeScript API, as the README's guide does: BYOL on the
// built-in MNIST digits with Trainer.fit, then the weighted kNN accuracy of
// the backbone on held-out digits beside the same backbone at its random
// initialisation. `node examples/train.mjs --steps 3000` for a longer run.
// (`bash scripts/demo.sh` runs the same job through the `byol-torch` command.)
import { parseArgs } from 'node:util'
import {
  BYOL,
  BYOLPredictionHead,
  BYOLProjectionHead,
  BYOLTransform,
  DataLoader,
  knnAccuracy,
  mnist,
  mnistRecipe,
  mnistViews,
  randomSplit,
  resnet18,
  setNumThreads,
  Trainer,
} from '../dist/index.js'

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '2500' },
    // 2 cores: one for the data worker, one for libtorch (oversubscribing is slower)
    threads: { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
  },
})
const seed = Number(values.seed)
setNumThreads(Number(values.threads))

const [train, heldOut] = randomSplit(mnist(), [8000, 2000], { seed })
// BYOL's views tuned for gray, centred digits, and the demo's recipe (src/presets.ts).
const transform = new BYOLTransform(mnistViews({ seed }))
const loader = new DataLoader(train, { batchSize: mnistRecipe.batchSize, transform, dropLast: true, seed, numWorkers: 1, prefetch: 4 })
const { width, smallInputs } = mnistRecipe.backbone
const { hiddenDim, outputDim } = mnistRecipe.heads
const backbone = resnet18({ seed, width, smallInputs })
const model = new BYOL({
  backbone,
  projectionHead: new BYOLProjectionHead(backbone.featureDim, hiddenDim, outputDim, { seed }),
  predictionHead: new BYOLPredictionHead(outputDim, hiddenDim, outputDim, { seed }),
})

// Features in eval mode of unaugmented digits, normalised as the views are.
/** @param {import('../dist/index.js').Dataset} ds */
const evalLoader = (ds) => new DataLoader(ds, { batchSize: 500, shuffle: false, normalize: transform.normalization, numWorkers: 1 })
async function knn() {
  const a = await model.embed(evalLoader(train))
  const b = await model.embed(evalLoader(heldOut))
  return knnAccuracy(a, a.labels, b, b.labels, { k: 200, temperature: 0.1 })
}

const random = await knn()
const trainer = new Trainer({
  maxSteps: Number(values.steps),
  logEveryNSteps: 100,
  // BYOL needs a couple of thousand steps to overtake random features: bf16
  // autocast with channels_last about doubles the CPU's speed on these convolutions.
  precision: 'bf16-mixed',
  channelsLast: true,
  ...mnistRecipe.trainer,
})
await trainer.fit(model, loader, {
  onProgress: (e) => {
    if (e.kind === 'step') console.log(`step ${e.step}/${e.totalSteps}  loss ${e.loss.toFixed(4)}  lr ${e.learningRate.toFixed(4)}  ${e.imagesPerSecond.toFixed(0)} img/s  ETA ${(e.etaSeconds ?? NaN).toFixed(0)} s`)
  },
})
const byol = await knn()
console.log(`kNN accuracy (k=200, T=0.1) on ${heldOut.length} held-out digits: BYOL ${(100 * byol).toFixed(1)}%, random init ${(100 * random).toFixed(1)}%`)
