import { checkNumber, checkOptions, Exhaustive, typeError } from './errors'
import { DataLoader, warnOnce } from './data'
import type { Embedding } from './eval'
import { native } from './native'
import type { MomentumSchedule, NativeByol, OptimizerConfig } from './native.generated'
import {
  Backbone,
  BYOLPredictionHead,
  BYOLProjectionHead,
  fromNativeDict,
  Module,
  ModuleBase,
  NegativeCosineSimilarity,
  ProjectionHead,
  StateDict,
  toNativeDict,
} from './modules'
import { DeviceName, Tensor } from './tensor'

export type { MomentumSchedule }

const MOMENTUM_SCHEDULES = ['step', 'epoch'] as const satisfies readonly MomentumSchedule[]
const momentumSchedulesListed: Exhaustive<typeof MOMENTUM_SCHEDULES, MomentumSchedule> = true
void momentumSchedulesListed
const RESNETS = ['resnet18', 'resnet34', 'resnet50'] as const

export interface BYOLOptions {
  /**
   * `backbone`: a `Backbone` (e.g. `resnet50()` or `Backbone.fromTorchScript(path)`)
   * or the name of a ResNet trunk. Default: a ResNet18 trunk, as minerva.
   * A module passed here becomes `model.backbone` (the same object, as in PyTorch).
   */
  backbone?: Backbone | 'resnet18' | 'resnet34' | 'resnet50'
  /** Default: a `BYOLProjectionHead` taking the backbone's `featureDim`, with minerva's hidden and output sizes. */
  projectionHead?: ProjectionHead
  /** Default: a `BYOLPredictionHead` taking the projection head's output, with minerva's hidden size. */
  predictionHead?: ProjectionHead
  /** `learning_rate` of the SGD optimiser. Default `0.025`. */
  learningRate?: number
  /** `schedule`: steps over which the momentum goes from 0.996 to 1. Default `90000`. */
  schedule?: number
  /**
   * `'step'`: the momentum follows the global step, as minerva's docs and the
   * BYOL paper say. `'epoch'`: follows `currentEpoch`, as minerva's code does.
   * Default `'step'`.
   */
  momentumSchedule?: MomentumSchedule
  /** Default: the CPU. */
  device?: DeviceName
  /** Seeds libtorch's generator before the weights are initialised. */
  seed?: number
}

/** An optimiser's settings (`torch.optim`'s): only those the optimiser has are present. */
export type { OptimizerConfig }

/** The optimiser `configureOptimizers()` sets up (`torch.optim.SGD`). */
export type SGDConfig = OptimizerConfig

/**
 * minerva's `BYOL` (Bootstrap Your Own Latent, Grill et al. 2020): an online
 * network (backbone, projection head, prediction head) trained to predict a
 * momentum network's projection of another view of the same image.
 */
export class BYOL extends ModuleBase {
  /** @internal */
  readonly native: NativeByol
  /** `backbone`. */
  readonly backbone: Backbone
  /** `backbone_momentum`: a frozen deep copy of the backbone, updated by EMA. */
  readonly backboneMomentum: Backbone
  /** `projection_head`. */
  readonly projectionHead: ProjectionHead
  /** `projection_head_momentum`: a frozen deep copy of the projection head. */
  readonly projectionHeadMomentum: ProjectionHead
  /** `prediction_head`. */
  readonly predictionHead: ProjectionHead
  /** `criterion`: negative cosine similarity. */
  readonly criterion = new NegativeCosineSimilarity()

  constructor(options?: BYOLOptions)
  /** @internal */
  constructor(options: BYOLOptions, loaded: NativeByol)
  constructor(options: BYOLOptions = {}, loaded?: NativeByol) {
    super()
    if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
    if (loaded) {
      this.native = loaded
    } else {
      const { backbone, projectionHead, predictionHead, learningRate, schedule, momentumSchedule, device, seed } = options
      if (learningRate !== undefined) checkNumber('learningRate', learningRate, { exclusiveMin: 0 })
      if (schedule !== undefined) checkNumber('schedule', schedule, { integer: true, min: 1 })
      if (momentumSchedule !== undefined && !MOMENTUM_SCHEDULES.includes(momentumSchedule)) {
        throw typeError('momentumSchedule', "'step' or 'epoch'", momentumSchedule)
      }
      if (seed !== undefined) checkNumber('seed', seed, { integer: true })
      if (backbone !== undefined && !(backbone instanceof Backbone) && !RESNETS.includes(backbone)) {
        throw typeError('backbone', "a Backbone or 'resnet18' | 'resnet34' | 'resnet50'", backbone)
      }
      if (projectionHead !== undefined && !(projectionHead instanceof ProjectionHead)) {
        throw typeError('projectionHead', 'a ProjectionHead', projectionHead)
      }
      if (predictionHead !== undefined && !(predictionHead instanceof ProjectionHead)) {
        throw typeError('predictionHead', 'a ProjectionHead', predictionHead)
      }
      this.native = new native.NativeByol(
        { backboneName: typeof backbone === 'string' ? backbone : undefined, learningRate, schedule, momentumSchedule, device, seed },
        backbone instanceof Backbone ? backbone.native : undefined,
        projectionHead?.native,
        predictionHead?.native,
      )
    }
    this.backbone = options.backbone instanceof Backbone ? options.backbone : Backbone.wrap(this.native.part('backbone'))
    this.projectionHead = options.projectionHead ?? new BYOLProjectionHead(this.native.part('projection_head'))
    this.predictionHead = options.predictionHead ?? new BYOLPredictionHead(this.native.part('prediction_head'))
    this.backboneMomentum = Backbone.wrap(this.native.part('backbone_momentum'))
    this.projectionHeadMomentum = new BYOLProjectionHead(this.native.part('projection_head_momentum'))
  }

  /** Loads a model written by `save()` or by PyTorch (`save_file(model.state_dict(), path)`). */
  static load(path: string, options: { device?: DeviceName } = {}): BYOL {
    if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
    const o = checkOptions<{ device?: DeviceName }>('options', options, { device: 'device' })
    const loaded = native.NativeByol.load(path, o.device)
    return new BYOL({}, loaded)
  }

  /** `learning_rate`: used by the next `configureOptimizers()`. */
  get learningRate(): number {
    return this.native.learningRate
  }
  set learningRate(lr: number) {
    checkNumber('learningRate', lr, { exclusiveMin: 0 })
    this.native.learningRate = lr
  }

  /** `schedule_length`: steps (or epochs) of the momentum schedule. */
  get scheduleLength(): number {
    return this.native.scheduleLength
  }
  set scheduleLength(n: number) {
    checkNumber('scheduleLength', n, { integer: true, min: 1 })
    this.native.scheduleLength = n
  }

  /** What the momentum follows: `'step'` or `'epoch'`. */
  get momentumSchedule(): MomentumSchedule {
    return this.native.momentumSchedule as MomentumSchedule
  }

  /** Lightning's `global_step`: optimiser steps taken so far. */
  get globalStep(): number {
    return this.native.globalStep
  }
  set globalStep(n: number) {
    checkNumber('globalStep', n, { integer: true, min: 0 })
    this.native.globalStep = n
  }

  /** Lightning's `current_epoch`. */
  get currentEpoch(): number {
    return this.native.currentEpoch
  }
  set currentEpoch(n: number) {
    checkNumber('currentEpoch', n, { integer: true, min: 0 })
    this.native.currentEpoch = n
  }

  /** The momentum the next `trainingStep` will use. */
  get momentum(): number {
    return this.native.currentMomentum()
  }

  /** The momentum the last `trainingStep` used (NaN before the first). */
  get lastMomentum(): number {
    return this.native.lastMomentum
  }

  /** `forward(x)`: `predictionHead(projectionHead(backbone(x)))`. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw typeError('x', 'a Tensor', x)
    return Tensor.wrap(this.native.forward(x.native))
  }

  /** `forward_momentum(x)`: `projectionHeadMomentum(backboneMomentum(x))`, detached. */
  forwardMomentum(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw typeError('x', 'a Tensor', x)
    return Tensor.wrap(this.native.forwardMomentum(x.native))
  }

  /**
   * `training_step(batch, batch_idx)`, plus what Lightning does around it: the
   * momentum update, the four forwards, the loss, backward and the optimiser
   * step, all in libtorch. Runs in training mode. Returns the loss.
   */
  trainingStep(batch: readonly [Tensor, Tensor], batchIdx = 0): Tensor {
    if (!Array.isArray(batch) || batch.length !== 2) throw typeError('batch', 'a pair [x0, x1] of Tensors', batch)
    const [x0, x1] = batch
    if (!(x0 instanceof Tensor)) throw typeError('batch[0]', 'a Tensor', x0)
    if (!(x1 instanceof Tensor)) throw typeError('batch[1]', 'a Tensor', x1)
    checkNumber('batchIdx', batchIdx, { integer: true, min: 0 })
    return Tensor.wrap(this.native.trainingStep(x0.native, x1.native))
  }

  /** `configure_optimizers()`: SGD at `learningRate`, which `trainingStep` then uses. */
  configureOptimizers(): SGDConfig {
    return this.native.configureOptimizers()
  }

  /**
   * `cosine_schedule(step, max_steps, start_value, end_value, period=None)`:
   * `startValue` at step 0 to `endValue` at `maxSteps - 1`, held there after.
   * Throws `RangeError` for `step < 0`, `maxSteps < 1` or `period <= 0`; warns
   * (`process.emitWarning`) when `step > maxSteps`.
   */
  cosineSchedule(step: number, maxSteps: number, startValue: number, endValue: number, period?: number): number {
    return cosineSchedule(step, maxSteps, startValue, endValue, period)
  }

  /** `update_momentum(model, model_ema, m)`: `ema = ema * m + model * (1 - m)`, parameters only. */
  updateMomentum(model: Module, modelEma: Module, m: number): void {
    updateMomentum(model, modelEma, m)
  }

  /** `deactivate_requires_grad(model)`: freezes every parameter. */
  deactivateRequiresGrad(model: Module): void {
    deactivateRequiresGrad(model)
  }

  /** `state_dict()`, with PyTorch's keys (`backbone.0.weight`, `projection_head.layers.0.weight`, ...). */
  stateDict(): StateDict {
    return fromNativeDict(this.native.stateDict())
  }

  /** `load_state_dict(dict, strict=True)`. Nothing changes if a key or shape is wrong. */
  loadStateDict(dict: StateDict): void {
    const d = toNativeDict(dict)
    this.native.loadStateDict(d)
  }

  /** Saves the state dict as safetensors, atomically; PyTorch reads it with `safetensors.torch.load_file`. */
  save(path: string, options: { provenance?: Record<string, unknown> } = {}): void {
    if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
    this.native.save(path, provenanceArg(options))
  }

  /**
   * Writes the trained backbone as TorchScript, traced from its forward in
   * evaluation mode on a batch of shape `example` (`[1, 3, H, W]`): no Python
   * class is needed to run it. In PyTorch `torch.jit.load(path)(x)`; in C++
   * `torch::jit::load(path)`; `torch.onnx.export` turns it into ONNX. With
   * `projectionHead: true` the module is the backbone then the projection
   * head (the features BYOL's loss sees); default `false`. Here, `Backbone.fromTorchScript(path)`
   * loads it back.
   */
  exportTorchScript(path: string, options: { example: readonly number[]; projectionHead?: boolean }): void {
    if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
    if (options === null || typeof options !== 'object') throw typeError('options', '{ example: [N, C, H, W] }', options)
    const { example, projectionHead } = options
    if (!Array.isArray(example) || example.length !== 4) throw typeError('example', 'a batch shape [N, C, H, W]', example)
    example.forEach((d, i) => checkNumber(`example[${i}]`, d, { integer: true, min: 1 }))
    if (projectionHead !== undefined && typeof projectionHead !== 'boolean') throw typeError('projectionHead', 'a boolean', projectionHead)
    this.native.exportTorchScript(path, [...example], projectionHead)
  }

  /**
   * Writes the trained backbone as safetensors with torchvision's keys
   * (`conv1.weight`, `layer1.0.bn1.weight`, ...), atomically. In PyTorch:
   * `resnet18().load_state_dict(load_file(path), strict=False)` (only `fc` is missing).
   */
  exportBackbone(path: string, options: { provenance?: Record<string, unknown> } = {}): void {
    if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
    this.native.exportBackbone(path, provenanceArg(options))
  }

  /**
   * Backbone features of every image of `loader` (its first view; use a loader
   * without `transform` for evaluation), in eval mode, average-pooled: the
   * features BYOL is judged by. Runs off the JS thread.
   */
  async embed(loader: DataLoader): Promise<Embedding> {
    if (!(loader instanceof DataLoader)) throw typeError('loader', 'a DataLoader', loader)
    const e = await this.native.embed(loader.native)
    for (const item of e.skipped) warnOnce(`byol-torch: embed skipped an unreadable image: ${item}`)
    return { data: e.data, shape: [e.rows, e.dim], labels: e.labels, skipped: e.skipped }
  }
}

/** lightly's `cosine_schedule` (see `BYOL.cosineSchedule`). */
export function cosineSchedule(step: number, maxSteps: number, startValue: number, endValue: number, period?: number): number {
  checkNumber('step', step, { integer: true })
  checkNumber('maxSteps', maxSteps, { integer: true })
  checkNumber('startValue', startValue)
  checkNumber('endValue', endValue)
  if (period !== undefined && period !== null) checkNumber('period', period, { integer: true })
  const r = native.cosineSchedule(step, maxSteps, startValue, endValue, period ?? undefined)
  if (r.pastEnd) process.emitWarning(`Current step number ${step} exceeds max_steps ${maxSteps}.`, 'RuntimeWarning')
  return r.value
}

/** lightly's `update_momentum(model, model_ema, m)`. */
export function updateMomentum(model: Module, modelEma: Module, m: number): void {
  if (!(model instanceof Module)) throw typeError('model', 'a Module', model)
  if (!(modelEma instanceof Module)) throw typeError('modelEma', 'a Module', modelEma)
  checkNumber('m', m)
  native.updateMomentum(model.native, modelEma.native, m)
}

/** lightly's `deactivate_requires_grad(model)`. */
export function deactivateRequiresGrad(model: Module): void {
  if (!(model instanceof Module)) throw typeError('model', 'a Module', model)
  model.native.deactivateRequiresGrad()
}

/** `options.provenance` as the JSON the native side stores in the file's metadata. */
function provenanceArg(options: { provenance?: Record<string, unknown> }): string | undefined {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
  const p = options.provenance
  if (p === undefined) return undefined
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw typeError('provenance', 'an object of JSON values', p)
  return JSON.stringify(p)
}

/**
 * What a model file or an exported backbone says of itself (its safetensors
 * `__metadata__`, JSON values parsed): `architecture` (backbone, width, stem,
 * head dimensions, dtype), `provenance` (data, image size, split, recipe,
 * steps) when it was saved with one, and byol-torch's own settings.
 */
export function readModelMetadata(path: string): Record<string, unknown> {
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  const raw = native.safetensorsMetadata(path)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(raw)) {
    try {
      out[k] = JSON.parse(v)
    } catch {
      out[k] = v
    }
  }
  return out
}
