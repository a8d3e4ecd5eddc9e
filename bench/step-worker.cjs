// One process of the step benchmark: byol-torch's trainingStep, printed as JSON.
const { BYOL, randn, setNumThreads, getNumThreads } = require('..')

const [batch, size, steps, warmup, threads] = process.argv.slice(2).map(Number)
setNumThreads(threads)
const model = new BYOL({ seed: 0 })
const x0 = randn([batch, 3, size, size], { seed: 1 })
const x1 = randn([batch, 3, size, size], { seed: 2 })
for (let i = 0; i < warmup; i++) model.trainingStep([x0, x1], i)
const start = process.hrtime.bigint()
for (let i = 0; i < steps; i++) model.trainingStep([x0, x1], i)
const seconds = Number(process.hrtime.bigint() - start) / 1e9
console.log(JSON.stringify({ steps_per_s: steps / seconds, peak_rss_mib: process.resourceUsage().maxRSS / 1024, threads: getNumThreads() }))
