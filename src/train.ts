import type { ChildProcess } from 'node:child_process'
import { BYOL } from './byol'
import { DataLoader } from './data'
import { ByolError, checkNumber, checkOptions, Exhaustive, Rule, typeError } from './errors'
import { describeExit, freePort, rankEnv, spawnRank } from './launch'
import { native } from './native'
import type { Backend, KnnOptions, Logger, Loss, LrSchedule, NativeTrainer, OptimizerConfig, OptimizerName, Precision, ProgressEvent, Recipe, Strategy, TrainerOptions } from './native.generated'

export type { Backend, Logger, Precision, Strategy, TrainerOptions }

/** One report from a running `fit`; `switch (event.kind)` narrows it to its fields. */
export type TrainingEvent = ProgressEvent
/** The event `fit` sends every `logEveryNSteps` steps. */
export type StepEvent = Extract<TrainingEvent, { kind: 'step' }>

export interface FitOptions {
  /** Stops training at the next step boundary, writes a checkpoint, and rejects with an `AbortError`. */
  signal?: AbortSignal
  /** Called on the JS thread for each event. If it throws, training stops at the next step boundary (with a checkpoint, as `signal`) and `fit` rejects with what it threw. */
  onProgress?: (event: TrainingEvent) => void
  /**
   * A checkpoint folder (`step-00000100`), or a `checkpointDir` meaning its
   * newest; unreadable ones are passed over for the previous, with a warning.
   * `'auto'` (Lightning's `ckpt_path="last"`): the newest of the trainer's
   * `checkpointDir` when it holds one, else a fresh start. Default: a fresh
   * start, except in a process a launcher started (`torchrun`, `byol-torch
   * train --nproc-per-node`; `TORCHELASTIC_RESTART_COUNT` set), where it is
   * `'auto'`, so that a restarted job goes on from its last checkpoint.
   */
  resumeFrom?: string | 'auto'

  /**
   * Loaders (without transform) for kNN evaluation every `knnEveryNEpochs`,
   * the classifier's settings, and `baseline: true` to evaluate the backbone
   * at random initialisation too, before the first step (not when resuming).
   */
  knn?: { train: DataLoader; test: DataLoader; baseline?: boolean } & KnnOptions
  /**
   * What the loggers record as hyperparameters besides the run's own
   * (architecture, optimiser, schedule, batch, precision, length), which
   * these override by name: Lightning's `save_hyperparameters`. Values are
   * JSON; TensorBoard's HParams dashboard shows numbers, booleans and strings.
   */
  hparams?: Record<string, unknown>
}

export interface FitResult {
  globalStep: number
  currentEpoch: number
  /** The newest checkpoint folder written, if any. */
  lastCheckpoint: string | null
  /** Warnings (also emitted with `process.emitWarning`). */
  warnings: string[]
  /** This process's rank in data-parallel training (0 alone); only rank 0 reports progress and writes checkpoints. */
  rank: number
  /** The number of processes that trained together (1 alone). */
  worldSize: number
  /** The folder the loggers wrote in (`metrics.jsonl`, `events.out.tfevents.*`); `null` without loggers, and on ranks other than 0. */
  logDir: string | null
  /** What carried the data-parallel collectives of the model's tensors; `null` when training alone. */
  backend: 'gloo' | 'nccl' | null
}

/** Lightning's `callback_metrics` after the last event. */
export interface TrainerMetrics {
  train_loss?: number
  train_loss_epoch?: number
  lr?: number
  momentum?: number
  projection_std?: number
  images_per_second?: number
  data_wait_fraction?: number
  knn_accuracy?: number
}

function abortMessage(globalStep: unknown, checkpoint: unknown): string {
  if (typeof globalStep !== 'number') throw typeError('globalStep', 'a number', globalStep)
  if (checkpoint !== null && typeof checkpoint !== 'string') throw typeError('checkpoint', 'a folder path or null', checkpoint)
  return `training was aborted after step ${globalStep}${checkpoint ? `; checkpoint in ${checkpoint}` : ''}`
}

/** Rejection of an aborted `fit`. */
export class AbortError extends Error implements ByolError {
  readonly code = 'ABORT_ERR'
  constructor(
    readonly globalStep: number,
    readonly checkpoint: string | null,
  ) {
    super(abortMessage(globalStep, checkpoint))
    this.name = 'AbortError'
  }
}

const PRECISIONS = ['32', 'bf16-mixed', '16-mixed'] as const satisfies readonly Precision[]
const RECIPES = ['minerva', 'paper'] as const satisfies readonly Recipe[]
const OPTIMIZERS = ['SGD', 'LARS', 'AdamW'] as const satisfies readonly OptimizerName[]
const LR_SCHEDULES = ['constant', 'cosine'] as const satisfies readonly LrSchedule[]
const LOSSES = ['minerva', 'paper'] as const satisfies readonly Loss[]
const STRATEGIES = ['auto', 'single', 'ddp'] as const satisfies readonly Strategy[]
const BACKENDS = ['auto', 'gloo', 'nccl'] as const satisfies readonly Backend[]
const LOGGERS = ['jsonl', 'tensorboard'] as const satisfies readonly Logger[]
const listed: [
  Exhaustive<typeof PRECISIONS, Precision>,
  Exhaustive<typeof RECIPES, Recipe>,
  Exhaustive<typeof OPTIMIZERS, OptimizerName>,
  Exhaustive<typeof LR_SCHEDULES, LrSchedule>,
  Exhaustive<typeof LOSSES, Loss>,
  Exhaustive<typeof STRATEGIES, Strategy>,
  Exhaustive<typeof BACKENDS, Backend>,
  Exhaustive<typeof LOGGERS, Logger>,
] = [true, true, true, true, true, true, true, true]
void listed

const int = (min: number): Rule => ({ number: { integer: true, min } })
const positive: Rule = { number: { exclusiveMin: 0 } }
const nonNegative: Rule = { number: { min: 0 } }

/**
 * Lightning's `Trainer` for BYOL: `await new Trainer({ maxEpochs: 10 }).fit(model, loader)`.
 * The loop runs in Rust on a thread of its own; the event loop, and libuv's
 * thread pool, stay free.
 */
export class Trainer {
  /** @internal */
  readonly native: NativeTrainer
  /** The options given (each one left out has its default, see `TrainerOptions`). */
  readonly options: Readonly<TrainerOptions>
  /** The latest values, as Lightning's `trainer.callback_metrics`. */
  metrics: TrainerMetrics = {}

  constructor(options: TrainerOptions = {}) {
    const o = checkOptions<TrainerOptions>('options', options, {
      maxEpochs: int(1),
      maxSteps: int(1),
      device: 'device',
      precision: { oneOf: PRECISIONS },
      logEveryNSteps: int(1),
      checkpointDir: 'string',
      checkpointEveryNSteps: int(1),
      keepCheckpoints: int(1),
      seed: int(0),
      recipe: { oneOf: RECIPES },
      optimizer: 'object',
      lrSchedule: { oneOf: LR_SCHEDULES },
      warmupSteps: int(0),
      warmupEpochs: nonNegative,
      loss: { oneOf: LOSSES },
      channelsLast: 'boolean',
      knnEveryNEpochs: int(1),
      baseMomentum: nonNegative,
      fastDevRun: int(1),
      strategy: { oneOf: STRATEGIES },
      backend: { oneOf: BACKENDS },
      collectiveTimeout: positive,
      syncBatchNorm: 'boolean',
      accumulateGradBatches: int(1),
      devices: int(1),
      logger: { listOf: LOGGERS },
      logDir: 'string',
    })
    checkOptions<OptimizerConfig>('optimizer', o.optimizer, {
      name: { oneOf: OPTIMIZERS },
      lr: positive,
      momentum: nonNegative,
      dampening: nonNegative,
      weightDecay: nonNegative,
      nesterov: 'boolean',
      trustCoefficient: positive,
      betas: 'pair',
      eps: positive,
      excludeBiasAndNorm: 'boolean',
    })
    this.native = new native.NativeTrainer(o)
    this.options = Object.freeze({ ...o })
  }

  /**
   * Lightning's `trainer.fit(model, train_dataloaders)`. Resolves when the run
   * ends; `model.globalStep` and `model.currentEpoch` advance as it goes.
   */
  async fit(model: BYOL, loader: DataLoader, options: FitOptions = {}): Promise<FitResult> {
    if (!(model instanceof BYOL)) throw typeError('model', 'a BYOL model', model)
    if (!(loader instanceof DataLoader)) throw typeError('train_dataloaders', 'a DataLoader', loader)
    if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
    const { signal, onProgress, resumeFrom, knn, hparams } = options
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('signal', 'an AbortSignal', signal)
    if (onProgress !== undefined && typeof onProgress !== 'function') throw typeError('onProgress', 'a function', onProgress)
    if (resumeFrom !== undefined && typeof resumeFrom !== 'string') throw typeError('resumeFrom', 'a checkpoint folder path', resumeFrom)
    if (knn !== undefined && (!(knn.train instanceof DataLoader) || !(knn.test instanceof DataLoader))) {
      throw typeError('knn', '{ train: DataLoader, test: DataLoader }', knn)
    }
    if (this.options.knnEveryNEpochs !== undefined && knn === undefined) {
      throw typeError('knn', '{ train, test } loaders because knnEveryNEpochs is set', undefined)
    }
    if (knn?.k !== undefined) checkNumber('knn.k', knn.k, { integer: true, min: 1 })
    if (knn?.temperature !== undefined) checkNumber('knn.temperature', knn.temperature, { exclusiveMin: 0 })
    let hparamsJson: string | undefined
    if (hparams !== undefined) {
      if (hparams === null || typeof hparams !== 'object' || Array.isArray(hparams)) throw typeError('hparams', 'an object of JSON values', hparams)
      try {
        hparamsJson = JSON.stringify(hparams)
      } catch (e) {
        throw typeError('hparams', `an object of JSON values (${(e as Error).message})`, hparams)
      }
    }
    if (signal?.aborted) throw new AbortError(model.globalStep, null)
    // Events and the result travel separately; the result waits for the
    // events sent before it, so that `onProgress` has seen them all on resolve.
    let received = 0
    let expected = -1
    let allReceived: () => void = () => {}
    const drained = new Promise<void>((resolve) => (allReceived = resolve))
    // An exception thrown by onProgress stops the run (with a checkpoint, as
    // an abort) and rejects fit with it, as an exception in a Lightning
    // callback leaves trainer.fit; left uncaught, it would end the process
    // with training still running on its thread.
    let thrown: { error: unknown } | undefined
    const onEvent = (event: ProgressEvent) => {
      received++
      if (received === expected) allReceived()
      this.#record(event)
      if (event.kind === 'warning') process.emitWarning(`byol-torch: ${event.message}`, 'TrainingWarning')
      if (thrown) return
      try {
        onProgress?.(event)
      } catch (error) {
        thrown = { error }
        this.native.abort()
      }
    }
    const knnOptions = knn && { k: knn.k, temperature: knn.temperature }
    if (knn?.baseline !== undefined && typeof knn.baseline !== 'boolean') throw typeError('knn.baseline', 'a boolean', knn.baseline)
    const peers = await this.startPeers()
    const running = this.native.fit(model.native, loader.native, resumeFrom, knn?.train.native, knn?.test.native, knnOptions, knn?.baseline, hparamsJson, onEvent)
    const abort = () => this.native.abort()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      const r = await running.catch(async (e: unknown) => {
        // Let the events queued before the failure reach onProgress first.
        await new Promise((resolve) => setImmediate(resolve))
        throw thrown ? thrown.error : e
      })
      expected = r.events
      if (received < expected) await drained
      if (thrown) throw thrown.error
      if (r.aborted) throw new AbortError(r.globalStep, r.lastCheckpoint ?? null)
      return {
        globalStep: r.globalStep,
        currentEpoch: r.currentEpoch,
        lastCheckpoint: r.lastCheckpoint ?? null,
        warnings: r.warnings,
        rank: r.rank,
        worldSize: r.worldSize,
        logDir: r.logDir ?? null,
        backend: r.backend === 'gloo' || r.backend === 'nccl' ? r.backend : null,
      }
    } catch (e) {
      for (const p of peers) if (p.exitCode === null) p.kill('SIGTERM')
      throw e
    } finally {
      signal?.removeEventListener('abort', abort)
      await Promise.all(peers.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((resolve) => p.once('exit', resolve)) : undefined)))
    }
  }

  /**
   * With `devices` > 1 in a process no launcher started: this process
   * becomes rank 0 and the script runs again in the others, as Lightning's
   * DDP launcher does. Returns the processes started.
   */
  private async startPeers(): Promise<ChildProcess[]> {
    const devices = this.native.devices
    if (devices <= 1 || process.env.WORLD_SIZE !== undefined) return []
    const addr = '127.0.0.1'
    const port = String(await freePort())
    Object.assign(process.env, rankEnv(0, devices, addr, port))
    return Array.from({ length: devices - 1 }, (_, i) => {
      const child = spawnRank(i + 1, devices, addr, port, process.argv.slice(2))
      child.on('exit', (code, signal) => {
        if (code !== 0) process.emitWarning(`byol-torch: rank ${i + 1} ${describeExit(code, signal)}`, 'TrainingWarning')
      })
      return child
    })
  }

  #record(e: TrainingEvent): void {
    const m = this.metrics
    switch (e.kind) {
      case 'step':
        Object.assign(m, { train_loss: e.loss, lr: e.learningRate, momentum: e.momentum, projection_std: e.projectionStd, images_per_second: e.imagesPerSecond, data_wait_fraction: e.dataWaitFraction })
        break
      case 'epoch':
        m.train_loss_epoch = e.loss
        break
      case 'knn':
        m.knn_accuracy = e.accuracy
        break
    }
  }
}

/**
 * The newest checkpoint folder in `dir`, or `null` when it holds none or does
 * not exist: what a job that may have been stopped before passes as
 * `resumeFrom` (Lightning's `ckpt_path="last"`).
 */
export function latestCheckpoint(dir: string): string | null {
  if (typeof dir !== 'string') throw typeError('dir', 'a folder path', dir)
  return native.latestCheckpoint(dir)
}
