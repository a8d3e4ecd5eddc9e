import { checkNumber, guard, translate, typeError } from './errors'
import { native } from './native'

/** Features of `shape[0]` images, `shape[1]` numbers each, row-major. */
export interface Features {
  data: Float32Array
  shape: readonly [rows: number, dim: number]
}

/** What `model.embed(loader)` returns: backbone features and the images' labels. */
export interface Embedding extends Features {
  labels: number[]
}

export interface KnnOptions {
  /** Neighbours that vote. Default 200 (lightly, solo-learn). */
  k?: number
  /** Softness of the votes `exp(similarity / temperature)`. Default 0.1. */
  temperature?: number
}

export interface LinearProbeOptions {
  /** Passes over the training features. Default 20. */
  epochs?: number
  /** Default 256. */
  batchSize?: number
  /** AdamW learning rate. Default 0.01. */
  lr?: number
  /** Default 0. */
  weightDecay?: number
  /** Seeds the initial weights and the order. Default 0. */
  seed?: number
}

export interface LinearProbeResult {
  trainAccuracy: number
  testAccuracy: number
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
  const k = checkNumber('k', options.k ?? 200, { integer: true, min: 1 })
  const temperature = checkNumber('temperature', options.temperature ?? 0.1, { exclusiveMin: 0 })
  return guard(() => native.knnAccuracy(a.data, la, b.data, lb, a.shape[1], k, temperature)).catch((e: unknown) => {
    throw translate(e)
  })
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
  const o = {
    epochs: checkNumber('epochs', options.epochs ?? 20, { integer: true, min: 1 }),
    batchSize: checkNumber('batchSize', options.batchSize ?? 256, { integer: true, min: 1 }),
    lr: checkNumber('lr', options.lr ?? 0.01, { exclusiveMin: 0 }),
    weightDecay: checkNumber('weightDecay', options.weightDecay ?? 0, { min: 0 }),
    seed: checkNumber('seed', options.seed ?? 0, { integer: true, min: 0 }),
  }
  return guard(() => native.linearProbe(a.data, la, b.data, lb, a.shape[1], o)).catch((e: unknown) => {
    throw translate(e)
  })
}
