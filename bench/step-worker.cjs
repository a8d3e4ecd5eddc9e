// One process of the step benchmark: byol-torch's trainingStep, printed as JSON.
// Arguments: batch size steps warmup threads [device]
const { BYOL, randn, setNumThreads, getNumThreads } = require('..')

const [batch, size, steps, warmup, threads] = process.argv.slice(2, 7).map(Number)
const device = process.argv[7] || 'cpu'
setNumThreads(threads)
const model = new BYOL({ seed: 0, device })
const x0 = randn([batch, 3, size, size], { seed: 1, device })
const x1 = randn([batch, 3, size, size], { seed: 2, device })
// item() waits for the device, so the clock sees finished work.
for (let i = 0; i < warmup; i++) model.trainingStep([x0, x1], i).item()
const start = process.hrtime.bigint()
let loss
for (let i = 0; i < steps; i++) {
  if (loss) loss.dispose()
  loss = model.trainingStep([x0, x1], i)
}
loss.item()
const seconds = Number(process.hrtime.bigint() - start) / 1e9
console.log(JSON.stringify({ steps_per_s: steps / seconds, peak_rss_mib: process.resourceUsage().maxRSS / 1024, threads: getNumThreads() }))
