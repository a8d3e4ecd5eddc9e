import { checkNumber, checkOptions, Exhaustive, typeError } from './errors'
import { native } from './native'
import type { NativeModule, NativeStateDict, NonLinearity } from './native.generated'
import { DeviceName, Tensor } from './tensor'

export type { NonLinearity }

/** `state_dict()`: tensors by PyTorch's key names, in registration order. */
export type StateDict = Record<string, Tensor>

/** @internal */
export function fromNativeDict(d: NativeStateDict): StateDict {
  const out: StateDict = {}
  for (const k of d.keys()) {
    const t = d.get(k)
    if (t) out[k] = Tensor.wrap(t)
  }
  return out
}

/** @internal */
export function toNativeDict(dict: StateDict, arg = 'stateDict'): NativeStateDict {
  if (dict === null || typeof dict !== 'object') throw typeError(arg, 'an object of Tensors keyed by name', dict)
  const d = new native.NativeStateDict()
  for (const [k, t] of Object.entries(dict)) {
    if (!(t instanceof Tensor)) throw typeError(`${arg}['${k}']`, 'a Tensor', t)
    d.set(k, t.native)
  }
  return d
}

/** Reads every tensor of a safetensors file (PyTorch's `safetensors.torch.load_file`). */
export function loadSafetensors(path: string): StateDict {
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  return fromNativeDict(native.NativeStateDict.load(path))
}

/** Writes tensors to a safetensors file, atomically (temporary file, then rename). */
export function saveSafetensors(dict: StateDict, path: string): void {
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  toNativeDict(dict).save(path)
}

/** Writes a float32 or int64 tensor as NumPy's `.npy` (`numpy.load(path)`), atomically. */
export function saveNpy(tensor: Tensor, path: string): void {
  if (!(tensor instanceof Tensor)) throw typeError('tensor', 'a Tensor', tensor)
  if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
  native.saveNpy(tensor.native, path)
}

export interface ModuleOptions {
  /** Where the parameters live. Default: the CPU. */
  device?: DeviceName
  /** Seeds libtorch's generator before initialising the weights. */
  seed?: number
}

function checkModuleOptions(options: ModuleOptions): void {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an options object', options)
  if (options.seed !== undefined) checkNumber('options.seed', options.seed, { integer: true })
}

/** The native side of anything with `nn.Module`'s training flag. */
interface HasTrainingMode {
  readonly training: boolean
  train(mode: boolean): void
  readonly device: string
}

/** What every `torch.nn.Module` has, here a network or the whole BYOL model: the training flag and the device. */
export abstract class ModuleBase {
  /** @internal */
  abstract readonly native: HasTrainingMode

  /** `module.training`: BatchNorm uses batch statistics (and updates its running ones) while true. */
  get training(): boolean {
    return this.native.training
  }

  /** `module.train(mode)`. Returns the module. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw typeError('mode', 'a boolean', mode)
    this.native.train(mode)
    return this
  }

  /** `module.eval()`. Returns the module. */
  eval(): this {
    return this.train(false)
  }

  /** Where the parameters live, e.g. `'cpu'` or `'cuda:0'`. */
  get device(): string {
    return this.native.device
  }
}

/** A network (`torch.nn.Module`): a backbone, a head, or a momentum copy of one. */
export class Module extends ModuleBase {
  /** @internal */
  readonly native: NativeModule

  /** Modules are made by `resnet18()`, `Backbone.fromTorchScript()`, the head classes and `BYOL`. */
  protected constructor(handle: unknown) {
    super()
    if (!(handle instanceof native.NativeModule)) throw typeError('handle', 'a module made by byol-torch', handle)
    this.native = handle
  }

  /** @internal */
  static wrap(handle: NativeModule): Module {
    return new Module(handle)
  }

  /** `module(x)` / `module.forward(x)`. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw typeError('x', 'a Tensor', x)
    return Tensor.wrap(this.native.forward(x.native))
  }

  /** Whether any parameter still has `requires_grad` set. */
  get requiresGrad(): boolean {
    return this.native.requiresGrad
  }

  /** Number of parameter elements (`sum(p.numel() for p in module.parameters())`). */
  get numParameters(): number {
    return this.native.numParameters
  }

  /** `module.state_dict()`: tensors share memory with the module. */
  stateDict(): StateDict {
    return fromNativeDict(this.native.stateDict())
  }

  /** `module.load_state_dict(dict, strict=True)`. Nothing changes if a key or shape is wrong. */
  loadStateDict(dict: StateDict): void {
    this.native.loadStateDict(toNativeDict(dict))
  }

  /** `copy.deepcopy(module)`. */
  deepCopy(): Module {
    return Module.wrap(this.native.deepCopy())
  }
}

/** A feature extractor: a ResNet trunk or a TorchScript module. */
export class Backbone extends Module {
  /** @internal */
  static wrap(handle: NativeModule): Backbone {
    return new Backbone(handle)
  }

  /**
   * Loads a module saved with `torch.jit.save(torch.jit.script(model), path)`
   * (or `torch.jit.trace`): the Node form of minerva's `backbone: nn.Module`.
   * Its parameters are trained; its output must be `[N, C, ...]`.
   */
  static fromTorchScript(path: string, options: { device?: DeviceName } = {}): Backbone {
    if (typeof path !== 'string') throw typeError('path', 'a file path string', path)
    const o = checkOptions<{ device?: DeviceName }>('options', options, { device: 'device' })
    return Backbone.wrap(native.torchscript(path, o.device))
  }

  /** `'resnet18'`, `'resnet34'`, `'resnet50'` or `'torchscript'`. */
  get kind(): string {
    return this.native.kind
  }

  /** Channels of the output (512 for ResNet18/34, 2048 for ResNet50). */
  get featureDim(): number {
    return this.native.featureDim()
  }

  /** The trunk's weights with torchvision's keys (`conv1.weight`, `layer1.0.bn1.running_mean`, ...). */
  torchvisionStateDict(): StateDict {
    return fromNativeDict(this.native.torchvisionStateDict())
  }
}

/** Options of the ResNet trunks. */
export interface ResNetOptions extends ModuleOptions {
  /**
   * Channels of the first stage (later stages double it). Default `64`, as
   * torchvision; 16 or 32 make a narrow trunk that trains several times faster.
   */
  width?: number
  /**
   * The stem CIFAR-scale SSL benchmarks use (solo-learn, lightly): a 3x3
   * stride-1 `conv1` and no max-pool, for inputs of about 32x32. Default `false`.
   */
  smallInputs?: boolean
}

function makeResnet(name: 'resnet18' | 'resnet34' | 'resnet50', options: ResNetOptions): Backbone {
  checkModuleOptions(options)
  if (options.width !== undefined) checkNumber('options.width', options.width, { integer: true, min: 1 })
  if (options.smallInputs !== undefined && typeof options.smallInputs !== 'boolean') throw typeError('options.smallInputs', 'a boolean', options.smallInputs)
  return Backbone.wrap(native.resnet(name, options.device, options.seed, options.width, options.smallInputs))
}

/**
 * torchvision's `resnet18()` without `fc`, as minerva builds its default trunk
 * (`nn.Sequential(*list(resnet.children())[:-1])`): output `[N, 512, 1, 1]`.
 * Kaiming-normal (fan_out) convolutions, BatchNorm weight 1 and bias 0.
 */
export function resnet18(options: ResNetOptions = {}): Backbone {
  return makeResnet('resnet18', options)
}

/** torchvision's `resnet34()` trunk: output `[N, 512, 1, 1]`. */
export function resnet34(options: ResNetOptions = {}): Backbone {
  return makeResnet('resnet34', options)
}

/** torchvision's `resnet50()` trunk: output `[N, 2048, 1, 1]`. */
export function resnet50(options: ResNetOptions = {}): Backbone {
  return makeResnet('resnet50', options)
}

/**
 * One block of a head, as minerva's tuples:
 * `[inputDim, outputDim, batchNorm, nonLinearity, bias?]`. `batchNorm: true`
 * stands for `nn.BatchNorm1d(outputDim)`; `bias` defaults to "no bias when
 * batch-normalised".
 */
export type Block =
  | readonly [inputDim: number, outputDim: number, batchNorm: boolean | null, nonLinearity: NonLinearity | null]
  | readonly [inputDim: number, outputDim: number, batchNorm: boolean | null, nonLinearity: NonLinearity | null, bias: boolean]

const NON_LINEARITIES = ['relu', 'gelu', 'tanh'] as const satisfies readonly NonLinearity[]
const nonLinearitiesListed: Exhaustive<typeof NON_LINEARITIES, NonLinearity> = true
void nonLinearitiesListed

function toNativeBlocks(blocks: readonly Block[]) {
  if (!Array.isArray(blocks)) throw typeError('blocks', 'an array of [inputDim, outputDim, batchNorm, nonLinearity, bias?] tuples', blocks)
  return blocks.map((b, i) => {
    if (!Array.isArray(b) || b.length < 4 || b.length > 5) {
      throw typeError(`blocks[${i}]`, 'a tuple [inputDim, outputDim, batchNorm, nonLinearity, bias?]', b)
    }
    const [inputDim, outputDim, batchNorm, nonLinearity, bias] = b
    checkNumber(`blocks[${i}][0]`, inputDim, { integer: true, min: 1 })
    checkNumber(`blocks[${i}][1]`, outputDim, { integer: true, min: 1 })
    if (batchNorm !== null && typeof batchNorm !== 'boolean') throw typeError(`blocks[${i}][2]`, 'a boolean or null', batchNorm)
    if (nonLinearity !== null && !NON_LINEARITIES.includes(nonLinearity)) throw typeError(`blocks[${i}][3]`, "'relu', 'gelu', 'tanh' or null", nonLinearity)
    if (bias !== undefined && typeof bias !== 'boolean') throw typeError(`blocks[${i}][4]`, 'a boolean', bias)
    return { inputDim, outputDim, batchNorm: batchNorm === true, nonLinearity: nonLinearity ?? undefined, bias }
  })
}

/** minerva's `ProjectionHead(blocks)`: base class of projection and prediction heads. */
export class ProjectionHead extends Module {
  constructor(blocks: readonly Block[], options?: ModuleOptions)
  /** @internal */
  constructor(handle: NativeModule)
  constructor(blocks: readonly Block[] | NativeModule, options: ModuleOptions = {}) {
    if (blocks instanceof native.NativeModule) {
      super(blocks)
    } else {
      const specs = toNativeBlocks(blocks)
      checkModuleOptions(options)
      super(native.projectionHead(specs, 'identity', options.device, options.seed))
    }
  }

  /** `head.layers`: the `nn.Sequential`'s layers, as PyTorch prints them. */
  get layers(): string[] {
    return this.native.layers
  }

  /** `head.preprocess_step(x)`: identity here; pool and flatten in `BYOLProjectionHead`. */
  preprocessStep(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw typeError('x', 'a Tensor', x)
    return Tensor.wrap(this.native.preprocessStep(x.native))
  }
}

function byolHead(preprocess: 'avgpool' | 'identity', inputDim?: number, hiddenDim?: number, outputDim?: number, options: ModuleOptions = {}): NativeModule {
  ;[inputDim, hiddenDim, outputDim].forEach((d, i) => d === undefined || checkNumber(['inputDim', 'hiddenDim', 'outputDim'][i], d, { integer: true, min: 1 }))
  checkModuleOptions(options)
  return native.byolHead(preprocess, inputDim, hiddenDim, outputDim, options.device, options.seed)
}

/**
 * minerva's `BYOLProjectionHead(input_dim=2048, hidden_dim=4096, output_dim=256)`:
 * Linear, BatchNorm1d, ReLU, Linear, after `preprocessStep` (adaptive average
 * pooling to 1x1, then flatten), so it takes the trunk's `[N, C, H, W]` output.
 */
export class BYOLProjectionHead extends ProjectionHead {
  constructor(inputDim?: number, hiddenDim?: number, outputDim?: number, options?: ModuleOptions)
  /** @internal */
  constructor(handle: NativeModule)
  constructor(inputDim?: number | NativeModule, hiddenDim?: number, outputDim?: number, options?: ModuleOptions) {
    super(inputDim instanceof native.NativeModule ? inputDim : byolHead('avgpool', inputDim, hiddenDim, outputDim, options))
  }

  /** `head.avgpool`: `nn.AdaptiveAvgPool2d((1, 1))`. */
  get avgpool(): string {
    return 'AdaptiveAvgPool2d(output_size=(1, 1))'
  }
}

/** minerva's `BYOLPredictionHead(input_dim=256, hidden_dim=4096, output_dim=256)`. */
export class BYOLPredictionHead extends ProjectionHead {
  constructor(inputDim?: number, hiddenDim?: number, outputDim?: number, options?: ModuleOptions)
  /** @internal */
  constructor(handle: NativeModule)
  constructor(inputDim?: number | NativeModule, hiddenDim?: number, outputDim?: number, options?: ModuleOptions) {
    super(inputDim instanceof native.NativeModule ? inputDim : byolHead('identity', inputDim, hiddenDim, outputDim, options))
  }
}

/** lightly's `NegativeCosineSimilarity`, BYOL's `criterion`: `-cos(x0, x1)` along dim 1, averaged. */
export class NegativeCosineSimilarity {
  forward(x0: Tensor, x1: Tensor): Tensor {
    if (!(x0 instanceof Tensor)) throw typeError('x0', 'a Tensor', x0)
    if (!(x1 instanceof Tensor)) throw typeError('x1', 'a Tensor', x1)
    return Tensor.wrap(native.negativeCosineSimilarity(x0.native, x1.native))
  }
}
