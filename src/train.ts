import { BYOL } from './byol'
import { DataLoader } from './data'
import { checkNumber, codedError, guard, translate, typeError } from './errors'
import { native } from './native'
import type { NativeTrainer, ProgressEvent, TrainerOptions as NativeTrainerOptions } from './native.generated'
import type { DeviceName } from './tensor'

/** Lightning's precision names. Mixed precision is meant for CUDA; on the CPU it runs only when asked. */
export type Precision = '32' | 'bf16-mixed' | '16-mixed'

export interface TrainerOptions {
  /** Stop after this many epochs (Lightning's `max_epochs`). At least one of `maxEpochs`, `maxSteps`. */
  maxEpochs?: number
  /** Stop after this many optimiser steps (`max_steps`). */
  maxSteps?: number
  /** Where the model trains; it is moved there. Default `'cpu'`. */
  device?: DeviceName
  /** Default `'32'`. `'bf16-mixed'`: bfloat16 autocast. `'16-mixed'`: float16 autocast with a dynamic loss scaler. */
  precision?: Precision
  /** Progress events (and `metrics`) every this many steps. Default 50, as Lightning. */
  logEveryNSteps?: number
  /** Folder for checkpoints (made if missing; must be writable, checked before training). */
  checkpointDir?: string
  /** Checkpoint every this many steps; a checkpoint is also written at the end and on abort. */
  checkpointEveryNSteps?: number
  /** Checkpoints kept, newest first. Default 3. */
  keepCheckpoints?: number
  /** Seeds libtorch's generator when `fit` starts (`seed_everything`). The data order and augmentations follow the loader's own seed. Default 0. */
  seed?: number
  /**
   * `'minerva'` (default): minerva's `configure_optimizers`, plain SGD at the
   * model's `learningRate`, constant. `'paper'`: the BYOL paper's LARS recipe
   * (see the README's table). Options given next to a recipe override it.
   */
  recipe?: 'minerva' | 'paper'
  /** `'sgd'`, `'lars'` or `'adamw'`. Default: the recipe's (SGD for minerva). */
  optimizer?: 'sgd' | 'lars' | 'adamw'
  /** Peak learning rate. Default: the recipe's, else the model's `learningRate`. */
  learningRate?: number
  /** SGD/LARS momentum. Default 0 for SGD (minerva), 0.9 for LARS. */
  momentum?: number
  /** Default 0 (SGD, LARS), 0.01 (AdamW), 1.5e-6 in the paper recipe. LARS leaves biases and BatchNorm out. */
  weightDecay?: number
  /** Nesterov momentum (SGD). Default false. */
  nesterov?: boolean
  /** LARS trust coefficient. Default 1e-3. */
  trustCoefficient?: number
  /** AdamW betas. Default [0.9, 0.999]. */
  betas?: [number, number]
  /** AdamW epsilon. Default 1e-8. */
  eps?: number
  /** `'constant'` (minerva) or `'cosine'` (linear warm-up, then cosine decay to 0; the paper). */
  lrSchedule?: 'constant' | 'cosine'
  /** Warm-up steps of the cosine schedule. Default 0. */
  warmupSteps?: number
  /** Warm-up in epochs (added to `warmupSteps`). The paper recipe: 10, capped at a tenth of the run. */
  warmupEpochs?: number
  /** `'minerva'` (default): `0.5 * (-cos(p0, z1) - cos(p1, z0))`. `'paper'`: `(2 - 2cos) + (2 - 2cos)`. */
  loss?: 'minerva' | 'paper'
  /** Lay convolution weights and inputs out as channels_last (faster low-precision convolutions on GPUs). Default false. */
  channelsLast?: boolean
  /** Evaluate kNN accuracy every this many epochs; needs `fit(..., { knn })`. */
  knnEveryNEpochs?: number
  /**
   * τ at the start of the momentum schedule, which rises to 1 (cosine). Default:
   * the model's, 0.996 (minerva, the paper). Runs of a few hundred steps learn
   * faster with 0.99 or less.
   */
  baseMomentum?: number
  /**
   * Lightning's `fast_dev_run`: stop after at most this many steps, to
   * smoke-test a script end to end. Default: the environment variable
   * `BYOL_TORCH_FAST_DEV_RUN` if set, else no cap.
   */
  fastDevRun?: number
}

/** One report from a running `fit`. */
export interface TrainingEvent {
  /** `'step'` (every `logEveryNSteps`), `'epoch'`, `'checkpoint'`, `'knn'` or `'warning'`. */
  kind: 'step' | 'epoch' | 'checkpoint' | 'knn' | 'warning'
  /** `globalStep` after the step. */
  step: number
  totalSteps: number
  /** `currentEpoch` (0-based) of the step. */
  epoch: number
  /** Batches of this epoch done. */
  batch: number
  batchesPerEpoch: number
  /** `train_loss` of the step. */
  loss: number
  learningRate: number
  /** The EMA momentum τ used by the step. */
  momentum: number
  imagesPerSecond: number
  /** Seconds left at the present rate (NaN at first). */
  etaSeconds: number
  /** Collapse monitor: std over the batch of the l2-normalised projections (about `1/sqrt(dim)` when healthy, 0 if collapsed). */
  projectionStd: number
  /** fp16 loss scale (1 otherwise). */
  lossScale: number
  /** `'epoch'`: mean `train_loss` over the epoch (`self.log('train_loss', on_epoch=True)`). */
  epochLoss: number
  /** `'knn'`: top-1 kNN accuracy, 0 to 1. */
  knnAccuracy: number
  /** `'checkpoint'`: the folder written. */
  path: string
  /** `'warning'`: what happened. */
  message: string
}

export interface FitOptions {
  /** Stops training at the next step boundary, writes a checkpoint, and rejects with an `AbortError`. */
  signal?: AbortSignal
  /** Called on the JS thread for each event. */
  onProgress?: (event: TrainingEvent) => void
  /** A checkpoint folder (`step-00000100`), or a `checkpointDir` meaning its newest. Unreadable ones are passed over for the previous, with a warning. */
  resumeFrom?: string
  /** Loaders (without transform) for kNN evaluation every `knnEveryNEpochs`. */
  knn?: { train: DataLoader; test: DataLoader; k?: number; temperature?: number }
}

export interface FitResult {
  globalStep: number
  currentEpoch: number
  /** The newest checkpoint folder written, if any. */
  lastCheckpoint: string | null
  /** Warnings (also emitted with `process.emitWarning`). */
  warnings: string[]
}

/** Lightning's `callback_metrics` after the last event. */
export interface TrainerMetrics {
  train_loss?: number
  train_loss_epoch?: number
  lr?: number
  momentum?: number
  projection_std?: number
  images_per_second?: number
  knn_accuracy?: number
}

/** Rejection of an aborted `fit`. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(
    readonly globalStep: number,
    readonly checkpoint: string | null,
  ) {
    super(`training was aborted after step ${globalStep}${checkpoint ? `; checkpoint in ${checkpoint}` : ''}`)
    this.name = 'AbortError'
  }
}

const PRECISIONS = ['32', 'bf16-mixed', '16-mixed']

function optionalInt(o: TrainerOptions, key: keyof TrainerOptions, min: number): number | undefined {
  return o[key] === undefined ? undefined : checkNumber(key, o[key], { integer: true, min })
}

function oneOf<T extends string>(key: string, v: unknown, allowed: readonly string[]): T | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !allowed.includes(v)) throw typeError(key, allowed.map((a) => `'${a}'`).join(' | '), v)
  return v as T
}

/**
 * Lightning's `Trainer` for BYOL: `await new Trainer({ maxEpochs: 10 }).fit(model, loader)`.
 * The loop runs in Rust on a worker thread; the event loop stays free.
 */
export class Trainer {
  /** @internal */
  readonly native: NativeTrainer
  /** The options with their defaults filled in. */
  readonly options: Readonly<NativeTrainerOptions>
  /** The latest values, as Lightning's `trainer.callback_metrics`. */
  metrics: TrainerMetrics = {}

  constructor(options: TrainerOptions = {}) {
    if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
    const o = options
    if (o.maxEpochs === undefined && o.maxSteps === undefined) {
      throw codedError('ERR_INVALID_ARG_TYPE', 'maxEpochs: expected maxEpochs or maxSteps (an integer >= 1), got neither')
    }
    const betas = o.betas
    if (betas !== undefined && (!Array.isArray(betas) || betas.length !== 2)) throw typeError('betas', 'two numbers [beta1, beta2]', betas)
    const num = (key: keyof TrainerOptions, opts: { min?: number; exclusiveMin?: number } = {}) =>
      o[key] === undefined ? undefined : checkNumber(key, o[key], opts)
    const resolved: NativeTrainerOptions = {
      maxEpochs: optionalInt(o, 'maxEpochs', 1),
      maxSteps: optionalInt(o, 'maxSteps', 1),
      device: o.device ?? 'cpu',
      precision: oneOf<Precision>('precision', o.precision, PRECISIONS) ?? '32',
      logEveryNSteps: optionalInt(o, 'logEveryNSteps', 1) ?? 50,
      checkpointDir: o.checkpointDir,
      checkpointEveryNSteps: optionalInt(o, 'checkpointEveryNSteps', 1),
      keepCheckpoints: optionalInt(o, 'keepCheckpoints', 1) ?? 3,
      seed: optionalInt(o, 'seed', 0) ?? 0,
      recipe: oneOf('recipe', o.recipe, ['minerva', 'paper']) ?? 'minerva',
      optimizer: oneOf('optimizer', o.optimizer, ['sgd', 'lars', 'adamw']),
      learningRate: num('learningRate', { exclusiveMin: 0 }),
      momentum: num('momentum', { min: 0 }),
      weightDecay: num('weightDecay', { min: 0 }),
      nesterov: o.nesterov,
      trustCoefficient: num('trustCoefficient', { exclusiveMin: 0 }),
      betas: betas?.map((b, i) => checkNumber(`betas[${i}]`, b, { min: 0 })),
      eps: num('eps', { exclusiveMin: 0 }),
      lrSchedule: oneOf('lrSchedule', o.lrSchedule, ['constant', 'cosine']),
      warmupSteps: optionalInt(o, 'warmupSteps', 0),
      warmupEpochs: num('warmupEpochs', { min: 0 }),
      loss: oneOf('loss', o.loss, ['minerva', 'paper']),
      channelsLast: o.channelsLast ?? false,
      knnEveryNEpochs: optionalInt(o, 'knnEveryNEpochs', 1),
      baseMomentum: num('baseMomentum', { min: 0 }),
      fastDevRun: optionalInt(o, 'fastDevRun', 1),
    }
    if (o.checkpointDir !== undefined && typeof o.checkpointDir !== 'string') throw typeError('checkpointDir', 'a folder path string', o.checkpointDir)
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw typeError('nesterov', 'a boolean', o.nesterov)
    this.native = guard(() => new native.NativeTrainer(resolved))
    this.options = Object.freeze(resolved)
  }

  /**
   * Lightning's `trainer.fit(model, train_dataloaders)`. Resolves when the run
   * ends; `model.globalStep` and `model.currentEpoch` advance as it goes.
   */
  async fit(model: BYOL, loader: DataLoader, options: FitOptions = {}): Promise<FitResult> {
    if (!(model instanceof BYOL)) throw typeError('model', 'a BYOL model', model)
    if (!(loader instanceof DataLoader)) throw typeError('train_dataloaders', 'a DataLoader', loader)
    if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
    const { signal, onProgress, resumeFrom, knn } = options
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('signal', 'an AbortSignal', signal)
    if (onProgress !== undefined && typeof onProgress !== 'function') throw typeError('onProgress', 'a function', onProgress)
    if (resumeFrom !== undefined && typeof resumeFrom !== 'string') throw typeError('resumeFrom', 'a checkpoint folder path', resumeFrom)
    if (knn !== undefined && (!(knn.train instanceof DataLoader) || !(knn.test instanceof DataLoader))) {
      throw typeError('knn', '{ train: DataLoader, test: DataLoader }', knn)
    }
    if (this.options.knnEveryNEpochs !== undefined && knn === undefined) {
      throw typeError('knn', '{ train, test } loaders because knnEveryNEpochs is set', undefined)
    }
    if (signal?.aborted) throw new AbortError(model.globalStep, null)
    const k = knn?.k === undefined ? undefined : checkNumber('knn.k', knn.k, { integer: true, min: 1 })
    const t = knn?.temperature === undefined ? undefined : checkNumber('knn.temperature', knn.temperature, { exclusiveMin: 0 })
    // Events and the result travel separately; the result waits for the
    // events sent before it, so `onProgress` has seen them all on resolve.
    let received = 0
    let expected = -1
    let allReceived: () => void = () => {}
    const drained = new Promise<void>((resolve) => (allReceived = resolve))
    const onEvent = (e: ProgressEvent) => {
      const event = e as TrainingEvent
      received++
      if (received === expected) allReceived()
      this.record(event)
      if (event.kind === 'warning') process.emitWarning(`byol-torch: ${event.message}`, 'TrainingWarning')
      onProgress?.(event)
    }
    const task = guard(() =>
      this.native.fit(model.native, loader.native, resumeFrom, knn?.train.native, knn?.test.native, k, t, onEvent),
    )
    const abort = () => this.native.abort()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      const r = await task.catch(async (e: unknown) => {
        // Let the events queued before the failure reach onProgress first.
        await new Promise((resolve) => setImmediate(resolve))
        throw withStep(translate(e))
      })
      expected = r.events
      if (received < expected) await drained
      if (r.stop === 'aborted') throw new AbortError(r.globalStep, r.lastCheckpoint ?? null)
      return { globalStep: r.globalStep, currentEpoch: r.currentEpoch, lastCheckpoint: r.lastCheckpoint ?? null, warnings: r.warnings }
    } finally {
      signal?.removeEventListener('abort', abort)
    }
  }

  private record(e: TrainingEvent): void {
    const m = this.metrics
    if (e.kind === 'step') {
      Object.assign(m, {
        train_loss: e.loss,
        lr: e.learningRate,
        momentum: e.momentum,
        projection_std: e.projectionStd,
        images_per_second: e.imagesPerSecond,
      })
    } else if (e.kind === 'epoch') {
      m.train_loss_epoch = e.epochLoss
    } else if (e.kind === 'knn') {
      m.knn_accuracy = e.knnAccuracy
    }
  }
}

/** A non-finite loss error also carries the step as `error.step`. */
function withStep(e: unknown): unknown {
  if (e instanceof Error && (e as { code?: string }).code === 'ERR_BYOL_NON_FINITE_LOSS') {
    const m = /at step (\d+)/.exec(e.message)
    if (m) (e as Error & { step: number }).step = Number(m[1])
  }
  return e
}
