import { checkNumber, checkOptions, typeError } from './errors'
import { native } from './native'
import type { KnnOptions, LinearProbeOptions, ProbeResult } from './native.generated'

export type { KnnOptions, LinearProbeOptions }
export type LinearProbeResult = ProbeResult

/** Features of `shape[0]` images, `shape[1]` numbers each, row-major. */
export interface Features {
  data: Float32Array
  shape: readonly [rows: number, dim: number]
}

/** What `model.embed(loader)` returns: backbone features and the images' labels. */
export interface Embedding extends Features {
  labels: number[]
  /** The images that could not be read (they have no row): each path and why. */
  skipped: string[]
}

function checkFeatures(arg: string, f: unknown): Features {
  const v = f as Features
  if (v === null || typeof v !== 'object' || !(v.data instanceof Float32Array) || !Array.isArray(v.shape) || v.shape.length !== 2) {
    throw typeError(arg, '{ data: Float32Array, shape: [rows, dim] } (e.g. what model.embed() returns)', f)
  }
  const [rows, dim] = v.shape
  checkNumber(`${arg}.shape[0]`, rows, { integer: true, min: 1 })
  checkNumber(`${arg}.shape[1]`, dim, { integer: true, min: 1 })
  if (v.data.length !== rows * dim) throw typeError(`${arg}.data`, `${rows * dim} numbers (shape ${rows} x ${dim})`, `${v.data.length}`)
  return v
}

function checkLabels(arg: string, labels: unknown, rows: number): number[] {
  if (!Array.isArray(labels) && !ArrayBuffer.isView(labels)) throw typeError(arg, 'an array of class indices', labels)
  const out = Array.from(labels as ArrayLike<number>)
  if (out.length !== rows) throw typeError(arg, `${rows} labels, one per row of the features`, `${out.length}`)
  out.forEach((l, i) => checkNumber(`${arg}[${i}]`, l, { integer: true, min: 0 }))
  return out
}

function pair(train: unknown, trainLabels: unknown, test: unknown, testLabels: unknown) {
  const a = checkFeatures('trainFeatures', train)
  const b = checkFeatures('testFeatures', test)
  if (a.shape[1] !== b.shape[1]) throw typeError('testFeatures', `${a.shape[1]} numbers per row, as trainFeatures`, `${b.shape[1]}`)
  return { a, b, la: checkLabels('trainLabels', trainLabels, a.shape[0]), lb: checkLabels('testLabels', testLabels, b.shape[0]) }
}

/**
 * Top-1 accuracy (0 to 1) of the weighted kNN classifier (Wu et al. 2018) that
 * lightly and solo-learn report for self-supervised features: cosine similarity
 * to the `k` nearest training features, each voting `exp(sim / temperature)`.
 */
export async function knnAccuracy(
  trainFeatures: Features,
  trainLabels: ArrayLike<number>,
  testFeatures: Features,
  testLabels: ArrayLike<number>,
  options: KnnOptions = {},
): Promise<number> {
  const { a, b, la, lb } = pair(trainFeatures, trainLabels, testFeatures, testLabels)
  const o = checkOptions<KnnOptions>('options', options, { k: { number: { integer: true, min: 1 } }, temperature: { number: { exclusiveMin: 0 } } })
  const { requested, used } = native.knnNeighbours(o, a.shape[0])
  if (used < requested) {
    process.emitWarning(`knnAccuracy: k=${requested} is more than the ${a.shape[0]} training features; all ${used} vote (k is capped at their number)`, 'EvaluationWarning')
  }
  return native.knnAccuracy(a.data, la, b.data, lb, a.shape[1], o)
}

/**
 * A linear classifier trained on frozen features (standardised with the
 * training set's statistics), the other standard measure of learned features.
 */
export async function linearProbe(
  trainFeatures: Features,
  trainLabels: ArrayLike<number>,
  testFeatures: Features,
  testLabels: ArrayLike<number>,
  options: LinearProbeOptions = {},
): Promise<LinearProbeResult> {
  const { a, b, la, lb } = pair(trainFeatures, trainLabels, testFeatures, testLabels)
  const o = checkOptions<LinearProbeOptions>('options', options, {
    epochs: { number: { integer: true, min: 1 } },
    batchSize: { number: { integer: true, min: 1 } },
    lr: { number: { exclusiveMin: 0 } },
    weightDecay: { number: { min: 0 } },
    seed: { number: { integer: true, min: 0 } },
  })
  return native.linearProbe(a.data, la, b.data, lb, a.shape[1], o)
}
