// One process of bench/gpu-check: Trainer.fit over uint8 images in order,
// both views the image (what reference/gpu_check.py's `train` does), printed
// as JSON. Argument: a JSON object
//   {images?: .safetensors with `x` | random: [n, size], state?: initial
//    weights, backbone?, seed?, out?: final weights, batch, steps, warmup?,
//    trainer: TrainerOptions, workers?, exact?: TF32 off and cuDNN deterministic}
// Prints {losses, imagesPerSecond (after `warmup` steps, wall clock),
// dataWaitFraction (mean over the timed steps), backend, worldSize}.
const b = require('..')

const o = JSON.parse(process.argv[2])
// fp32 as fp32 and no autotuning, as reference/gpu_check.py sets them.
if (o.exact) b.cudaBackends({ cudnnAllowTf32: false, matmulAllowTf32: false, cudnnDeterministic: true, cudnnBenchmark: false })
let x
if (o.images) {
  x = b.loadSafetensors(o.images).x
} else {
  const [n, size] = o.random
  let s = 12345
  const pixels = new Uint8Array(n * 3 * size * size).map(() => {
    s = (s * 1103515245 + 12345) >>> 0
    return s >>> 24
  })
  x = b.Tensor.fromTypedArray(pixels, [n, 3, size, size])
}
const device = o.trainer.device ?? 'cpu'
const model = o.state ? b.BYOL.load(o.state, { device }) : new b.BYOL({ seed: o.seed ?? 0, backbone: o.backbone, device })
const loader = new b.DataLoader(new b.TensorDataset(x), { batchSize: o.batch, shuffle: false, numWorkers: o.workers ?? 1, device })
const losses = []
const scales = []
const waits = []
let start = 0
const warmup = o.warmup ?? 0
new b.Trainer({ maxSteps: o.steps, logEveryNSteps: 1, ...o.trainer })
  .fit(model, loader, {
    onProgress: (e) => {
      if (e.kind !== 'step') return
      losses.push(e.loss)
      if (e.lossScale !== undefined) scales.push(e.lossScale)
      if (e.step === warmup) start = performance.now()
      if (e.step > warmup) waits.push(e.dataWaitFraction)
    },
  })
  .then((r) => {
    const seconds = (performance.now() - start) / 1000
    if (o.out && r.rank === 0) model.save(o.out)
    const timed = o.steps - warmup
    console.log(
      JSON.stringify({
        losses,
        scales,
        imagesPerSecond: timed > 0 ? (timed * o.batch) / seconds : null,
        dataWaitFraction: waits.length ? waits.reduce((a, w) => a + w, 0) / waits.length : null,
        backend: r.backend,
        worldSize: r.worldSize,
      }),
    )
  })
  .catch((e) => {
    console.error(`${e.code ?? ''} ${e.message}`)
    process.exit(1)
  })
