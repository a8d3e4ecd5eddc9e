import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { BYOLTransform, DataLoader, Dataset, ImageFolder, mnist, randomSplit, saveImage, Tensor, TensorDataset } from '../src/index'
import { catchError, reference, tmpdir } from './helpers'

async function collect(loader: DataLoader) {
  const out = []
  for await (const batch of loader) out.push(batch)
  return out
}

function toyDataset(n: number) {
  const pixels = new Uint8Array(n * 3 * 8 * 8).map((_, i) => (i * 7) % 256)
  return new TensorDataset(Tensor.fromTypedArray(pixels, [n, 3, 8, 8]), Array.from({ length: n }, (_, i) => i))
}

let folder: string
test.before(() => {
  folder = tmpdir('images')
  reference(['make-images', '--out', folder])
})

test('the built-in MNIST dataset has 10,000 labelled digits', (t) => {
  const ds = mnist()
  t.is(ds.length, 10000)
  t.deepEqual(ds.get(0)?.shape, [3, 28, 28])
})

test('DataLoader yields both views and the labels of each batch', async (t) => {
  const loader = new DataLoader(toyDataset(10), { batchSize: 4, transform: new BYOLTransform({ inputSize: 6 }), numWorkers: 2 })
  const batches = await collect(loader)
  t.is(loader.length, 3)
  t.deepEqual(batches.map(([x0, x1, labels]) => [x0.shape, x1.shape, labels.length]), [
    [[4, 3, 6, 6], [4, 3, 6, 6], 4],
    [[4, 3, 6, 6], [4, 3, 6, 6], 4],
    [[2, 3, 6, 6], [2, 3, 6, 6], 2],
  ])
  t.deepEqual(batches.flatMap((b) => b[2]).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})

test('DataLoader is deterministic under a seed, whatever the number of workers', async (t) => {
  const run = async (workers: number) =>
    (await collect(new DataLoader(toyDataset(12), { batchSize: 4, seed: 3, numWorkers: workers, transform: new BYOLTransform({ inputSize: 6 }) }))).map(
      ([x0, , labels]) => [labels, Array.from(x0.toFloat32Array())],
    )
  t.deepEqual(await run(1), await run(3))
})

test('each epoch has a new order when shuffling', async (t) => {
  const loader = new DataLoader(toyDataset(16), { batchSize: 16, seed: 1 })
  const [a] = await collect(loader)
  const [b] = await collect(loader)
  t.notDeepEqual(a[2], b[2])
  t.deepEqual([...a[2]].sort((x, y) => x - y), [...b[2]].sort((x, y) => x - y))
})

test('a batch size larger than the dataset gives one short batch, or none with dropLast', async (t) => {
  t.is((await collect(new DataLoader(toyDataset(5), { batchSize: 8 })))[0][2].length, 5)
  t.is((await collect(new DataLoader(toyDataset(5), { batchSize: 8, dropLast: true }))).length, 0)
})

test('numWorkers <= 0 or absurd is a RangeError naming numWorkers', (t) => {
  for (const numWorkers of [0, -1, 1e6]) {
    const err = catchError(() => new DataLoader(toyDataset(4), { numWorkers }))
    t.true(err instanceof RangeError, String(err))
    t.regex(err.message, /^numWorkers: expected/)
  }
})

test('ImageFolder labels images by sorted class folder, recursively', (t) => {
  const ds = new ImageFolder(folder)
  t.deepEqual(ds.classes, ['cats', 'dogs'])
  t.is(ds.length, 7)
})

test('gray, RGBA and 16-bit PNGs are read as RGB, and odd sizes are resized', async (t) => {
  const loader = new DataLoader(new ImageFolder(folder), { batchSize: 7, shuffle: false, imageSize: 24 })
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  const batches = await collect(loader)
  await new Promise((r) => setImmediate(r))
  process.off('warning', onWarning)
  t.deepEqual(batches[0][0].shape, [6, 3, 24, 24])
  t.deepEqual(batches[0][2], [0, 0, 0, 1, 1, 1])
  // The truncated JPEG is skipped, and said once, with its path.
  t.is(warnings.length, 1)
  t.true(warnings[0].includes(path.join(folder, 'cats', 'truncated.jpg')))
  t.deepEqual(loader.skipped.map((s) => s.split(' (')[0]), [path.join(folder, 'cats', 'truncated.jpg')])
  t.regex(loader.skipped[0], /\(.+\)$/s, 'and why it could not be read')
})

test('a missing folder is an error naming the path', (t) => {
  const missing = path.join(tmpdir('data'), 'nowhere')
  const err = catchError(() => new ImageFolder(missing))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.true(err.message.startsWith(missing))
})

test('a folder without images is an error naming the path', (t) => {
  const empty = tmpdir('data')
  fs.mkdirSync(path.join(empty, 'class'))
  const err = catchError(() => new ImageFolder(empty))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.true(err.message.startsWith(empty))
  t.regex(err.message, /no images/)
})

test('the event loop keeps running while the workers prepare batches', async (t) => {
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  await collect(new DataLoader(mnist(), { batchSize: 500, transform: new BYOLTransform({ inputSize: 28 }), numWorkers: 2 }))
  clearInterval(timer)
  t.true(ticks > 5, `timer fired ${ticks} times`)
})

test('saveImage writes a PNG that ImageFolder reads back with the same pixels', (t) => {
  const root = tmpdir('png')
  fs.mkdirSync(path.join(root, 'x'))
  const pixels = new Uint8Array(3 * 5 * 7).map((_, i) => (i * 37) % 256)
  saveImage(Tensor.fromTypedArray(pixels, [3, 5, 7]), path.join(root, 'x', 'a.png'))
  const back = new ImageFolder(root).get(0)
  t.deepEqual(back?.shape, [3, 5, 7])
  t.deepEqual(Array.from(back?.toFloat32Array() ?? []), Array.from(pixels))
  t.deepEqual(fs.readdirSync(path.join(root, 'x')), ['a.png'])
})

test("TensorDataset reads HWC uint8 images with layout 'nhwc'", (t) => {
  // Two 2x2 RGB images, pixel (y, x) of image n = [n, 10 * y + x, 100].
  const hwc = new Uint8Array(2 * 2 * 2 * 3)
  for (let n = 0; n < 2; n++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) hwc.set([n, 10 * y + x, 100], ((n * 2 + y) * 2 + x) * 3)
  const ds = new TensorDataset(Tensor.fromTypedArray(hwc, [2, 2, 2, 3]), [0, 1], { layout: 'nhwc' })
  t.deepEqual(Array.from(ds.get(1)?.toFloat32Array() ?? []), [1, 1, 1, 1, 0, 1, 10, 11, 100, 100, 100, 100])
})

test('TensorDataset with labels of the wrong length names labels', (t) => {
  const err = catchError(() => new TensorDataset(Tensor.fromTypedArray(new Uint8Array(2 * 3 * 4 * 4), [2, 3, 4, 4]), [1]))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^labels: expected 2 labels, one per image, got 1 labels/)
})

test('randomSplit gives disjoint subsets of the requested sizes, the same for the same seed', (t) => {
  const ds = toyDataset(10)
  const [a, b] = randomSplit(ds, [7, 3], { seed: 1 })
  t.is(a.length, 7)
  t.is(b.length, 3)
  const firstPixel = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.get(i)!.toFloat32Array()[0])
  const all = [...firstPixel(a), ...firstPixel(b)].sort((x, y) => x - y)
  t.deepEqual(all, firstPixel(ds).sort((x, y) => x - y), 'every item exactly once')
  const [again] = randomSplit(ds, [7, 3], { seed: 1 })
  t.deepEqual(firstPixel(again), firstPixel(a))
  t.is(t.throws(() => randomSplit(ds, [5, 3]), { instanceOf: RangeError })?.message, "lengths: expected lengths that add up to the dataset's 10 items, got 8")
})

test('randomSplit takes fractions as torch does: [0.25, 0.25, 0.5] of 10 items is 3, 2 and 5', (t) => {
  const ds = toyDataset(10)
  t.deepEqual(randomSplit(ds, [0.25, 0.25, 0.5], { seed: 2 }).map((d) => d.length), [3, 2, 5])
  const firstPixel = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.get(i)!.toFloat32Array()[0])
  t.deepEqual(randomSplit(ds, [0.8, 0.2], { seed: 2 }).map(firstPixel), randomSplit(ds, [8, 2], { seed: 2 }).map(firstPixel))
  t.is(t.throws(() => randomSplit(ds, [0.5, 0.3]), { instanceOf: RangeError })?.message, 'lengths[0]: expected whole counts, or fractions that add up to 1, got 0.5')
})

test('a loader without transform normalises the images when asked', async (t) => {
  const loader = new DataLoader(toyDataset(2), { batchSize: 2, shuffle: false, normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } })
  const plain = new DataLoader(toyDataset(2), { batchSize: 2, shuffle: false })
  const [[x]] = await collect(loader)
  const [[p]] = await collect(plain)
  const a = x.toFloat32Array()
  const b = p.toFloat32Array()
  t.true(a.every((v, i) => Math.abs(v - (b[i] - 0.5) / 0.25) < 1e-6))
})
