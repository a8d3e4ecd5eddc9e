// CUDA checks and the GPU step benchmark, for a GPU host with PyTorch 2.11.0
// (run with BYOL_TORCH_LIBTORCH pointing at its torch/lib):
//   node bench/gpu-check.cjs <python-with-torch>
// 1. CUDA is found through the same addon; 2. a training step on 'cuda'
// matches the CPU; 3. the loader on the GPU; 4. Trainer.fit on 'cuda' in
// '32', 'bf16-mixed' (with channels_last) and '16-mixed' (loss scaler):
// images/s, loss, and the loss against fp32; 5. steps/s of byol-torch and
// PyTorch on the GPU.
const { execFileSync } = require('node:child_process')
const os = require('node:os')
const path = require('node:path')
const b = require('..')

const python = process.argv[2] || 'python3'
console.log(`libtorch ${b.libtorch.version} from ${b.libtorch.source}; cudaIsAvailable ${b.cudaIsAvailable()}; devices ${b.cudaDeviceCount()}`)
if (!b.cudaIsAvailable()) process.exit(1)

const dir = require('node:fs').mkdtempSync(path.join(os.tmpdir(), 'gpu-'))
const file = path.join(dir, 'm.safetensors')
new b.BYOL({ seed: 1, learningRate: 0.001 }).save(file)
const cpu = b.BYOL.load(file)
const gpu = b.BYOL.load(file, { device: 'cuda' })
const x0 = b.randn([32, 3, 32, 32], { seed: 2 })
const x1 = b.randn([32, 3, 32, 32], { seed: 3 })
const g0 = x0.to('cuda')
const g1 = x1.to('cuda')
for (let i = 0; i < 3; i++) {
  const lc = cpu.trainingStep([x0, x1], i).item()
  const lg = gpu.trainingStep([g0, g1], i).item()
  console.log(`step ${i}: loss cpu ${lc.toFixed(7)} cuda ${lg.toFixed(7)} |diff| ${Math.abs(lc - lg).toExponential(2)}`)
}
const sc = cpu.stateDict()
const sg = gpu.stateDict()
let worst = { key: '', diff: 0, scale: 0 }
for (const k of Object.keys(sc)) {
  const a = sc[k].toFloat32Array()
  const g = sg[k].toFloat32Array()
  let d = 0
  let s = 0
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - g[i]))
    s = Math.max(s, Math.abs(a[i]))
  }
  if (d / Math.max(s, 1e-2) > worst.diff / Math.max(worst.scale, 1e-2)) worst = { key: k, diff: d, scale: s }
}
console.log(`after 3 steps, worst parameter ${worst.key}: max |cpu - cuda| ${worst.diff.toExponential(2)} (scale ${worst.scale.toExponential(2)})`)
console.log(`device of the GPU model: ${gpu.device}`)

// The data pipeline with the transform on the GPU.
;(async () => {
  const pixels = new Uint8Array(2048 * 3 * 72 * 72).map((_, i) => (i * 2654435761) >>> 24)
  const images = new b.TensorDataset(b.Tensor.fromTypedArray(pixels, [2048, 3, 72, 72]))
  const loader = new b.DataLoader(images, { batchSize: 256, numWorkers: 4, device: 'cuda', transform: new b.BYOLTransform({ inputSize: 64 }) })
  let n = 0
  const t0 = performance.now()
  for await (const [v0, v1] of loader) {
    if (n === 0) console.log(`loader on cuda: views ${v0.shape} on ${v0.device}, ${v1.device}`)
    n += v0.shape[0]
    v0.dispose()
    v1.dispose()
  }
  console.log(`loader on cuda: ${n} 72x72 images, two 64x64 views each, ${(n / ((performance.now() - t0) / 1000)).toFixed(0)} images/s`)
  for (const [precision, channelsLast] of [['32', false], ['bf16-mixed', true], ['16-mixed', true]]) {
    const model = b.BYOL.load(file, { device: 'cuda' })
    const gpuLoader = new b.DataLoader(images, { batchSize: 256, numWorkers: 4, device: 'cuda', seed: 1, transform: new b.BYOLTransform({ inputSize: 64 }) })
    const seen = []
    let start = 0
    await new b.Trainer({ maxSteps: 24, device: 'cuda', precision, channelsLast, logEveryNSteps: 1, optimizer: { lr: 0.001 } }).fit(model, gpuLoader, {
      onProgress: (e) => {
        if (e.kind !== 'step') return
        if (e.step === 4) start = performance.now()
        seen.push(e)
      },
    })
    const rate = (20 * 256) / ((performance.now() - start) / 1000)
    const last = seen[seen.length - 1]
    console.log(`Trainer.fit on cuda, ${precision}${channelsLast ? ' channels_last' : ''}: ${rate.toFixed(0)} images/s, losses ${seen.slice(0, 3).map((e) => e.loss.toFixed(5)).join(' ')} ... ${last.loss.toFixed(5)}, loss scale ${last.lossScale}`)
  }
  benchmark()
})()

function benchmark() {
  const [batch, size, steps, warmup] = ['256', '64', '30', '5']
  const ours = () => JSON.parse(execFileSync(process.execPath, [path.join(__dirname, 'step-worker.cjs'), batch, size, steps, warmup, '8', 'cuda'], { encoding: 'utf8' }).trim())
  const ref = () => JSON.parse(execFileSync(python, [path.join(__dirname, '..', 'reference', 'byol_reference.py'), 'bench', '--batch', batch, '--size', size, '--steps', steps, '--warmup', warmup, '--threads', '8', '--device', 'cuda'], { encoding: 'utf8' }).trim().split('\n').pop())
  const r = []
  for (let round = 0; round < 2; round++) r.push([ours(), ref()])
  for (const [o, p] of r) console.log(`GPU trainingStep, ResNet18 BYOL, batch ${batch}, ${size}x${size}, fp32: byol-torch ${o.steps_per_s.toFixed(2)} steps/s, PyTorch ${p.steps_per_s.toFixed(2)} steps/s, ratio ${(o.steps_per_s / p.steps_per_s).toFixed(3)}`)
}
