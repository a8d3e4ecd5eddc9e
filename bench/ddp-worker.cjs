// One rank of the data-parallel benchmark: Trainer.fit on random images, one
// libtorch thread. Rank 0 prints {"ms_per_step"} over the steps after warm-up.
// Arguments: batch (per rank) size steps warmup
const b = require('..')

const [batch, size, steps, warmup] = process.argv.slice(2, 6).map(Number)
b.setNumThreads(1)
const images = b.randn([batch * (steps + 1), 3, size, size], { seed: 1 + Number(process.env.RANK ?? 0) })
const loader = new b.DataLoader(new b.TensorDataset(images), { batchSize: batch, shuffle: false, numWorkers: 1, dropLast: true })
const times = []
new b.Trainer({ maxSteps: steps, logEveryNSteps: 1 })
  .fit(new b.BYOL({ seed: 0 }), loader, { onProgress: (e) => e.kind === 'step' && times.push(process.hrtime.bigint()) })
  .then((r) => {
    if (r.rank !== 0) return
    const ms = Number(times[times.length - 1] - times[warmup - 1]) / 1e6 / (times.length - warmup)
    console.log(JSON.stringify({ ms_per_step: ms, world_size: r.worldSize }))
  })
  .catch((e) => {
    console.error(`${e.code ?? ''} ${e.message}`)
    process.exit(1)
  })
