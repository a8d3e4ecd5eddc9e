// One side of `npm run bench:train`, in its own process so that its peak RSS
// is its own: Trainer.fit over an ImageFolder of JPEGs with BYOLTransform.
// argv: <root> <size> <batch> <workers> <threads> <steps> <warmup>
const { BYOL, BYOLTransform, DataLoader, ImageFolder, Trainer, setNumThreads } = require('../dist')

async function main() {
  const [root, size, batch, workers, threads, steps, warmup] = process.argv.slice(2)
  setNumThreads(Number(threads))
  const loader = new DataLoader(new ImageFolder(root), {
    batchSize: Number(batch),
    numWorkers: Number(workers),
    prefetch: 4,
    transform: new BYOLTransform({ inputSize: Number(size) }),
    dropLast: true,
    // The JPEGs' own side: the views are cropped from the full image, as the
    // reference's torchvision pipeline crops them (the default would shrink
    // every image to inputSize * 8 / 7 first, which is less work).
    imageSize: 256,
  })
  const model = new BYOL({ seed: 0 })
  let start = 0
  await new Trainer({ maxSteps: Number(steps), logEveryNSteps: 1 }).fit(model, loader, {
    onProgress: (e) => {
      if (e.kind === 'step' && e.step === Number(warmup)) start = performance.now()
    },
  })
  const seconds = (performance.now() - start) / 1000
  const rss = process.resourceUsage().maxRSS / 1024
  console.log(JSON.stringify({ images_per_s: ((Number(steps) - Number(warmup)) * Number(batch)) / seconds, peak_rss_mib: rss }))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
