import { checkNumber, checkOptions, DEVICE_PATTERN, typeError } from './errors'
import { native } from './native'
import type { CudaBackends, Dtype, NativeTensor } from './native.generated'

/** `'cpu'`, `'cuda'`, `'cuda:N'` or `'auto'` (CUDA when present, else CPU). */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}` | 'auto'

/** Element types a tensor can be made from. */
export type DType = Dtype

export type TypedArrayInput = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array

export interface TensorOptions {
  /** Where to put the tensor. Default: the CPU. */
  device?: DeviceName
}

function dtypeOf(data: unknown): DType {
  if (data instanceof Float32Array) return 'float32'
  if (data instanceof Float64Array) return 'float64'
  if (data instanceof Int32Array) return 'int32'
  if (data instanceof BigInt64Array) return 'int64'
  if (data instanceof Int16Array) return 'int16'
  if (data instanceof Int8Array) return 'int8'
  if (data instanceof Uint8Array) return 'uint8'
  throw typeError('data', 'a Float32Array, Float64Array, Int32Array, BigInt64Array, Int16Array, Int8Array or Uint8Array', data)
}

/** @internal */
export function checkShape(shape: unknown, arg = 'shape'): number[] {
  if (!Array.isArray(shape)) throw typeError(arg, 'an array of non-negative integers', shape)
  shape.forEach((d, i) => checkNumber(`${arg}[${i}]`, d, { integer: true, min: 0 }))
  return shape as number[]
}

/** A libtorch tensor (`torch.Tensor`). */
export class Tensor {
  /** @internal */
  readonly native: NativeTensor

  private constructor(native: NativeTensor) {
    this.native = native
  }

  /** @internal */
  static wrap(native: NativeTensor): Tensor {
    return new Tensor(native)
  }

  /**
   * Makes a tensor from a typed array in row-major order. The values are copied
   * once, straight from the array's memory into libtorch.
   */
  static fromTypedArray(data: TypedArrayInput, shape: readonly number[], options: TensorOptions = {}): Tensor {
    const dtype = dtypeOf(data)
    checkShape(shape)
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    return Tensor.wrap(native.tensorFromBytes(bytes, [...shape], dtype, options.device))
  }

  /** `tensor.shape`. */
  get shape(): number[] {
    return this.native.shape
  }

  /** `tensor.dtype`, e.g. `'float32'`. */
  get dtype(): string {
    return this.native.dtype
  }

  /** `tensor.device`, e.g. `'cpu'` or `'cuda:0'`. */
  get device(): string {
    return this.native.device
  }

  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1)
  }

  /** The values as float32 in row-major order (copied off the device if needed). */
  toFloat32Array(): Float32Array {
    return this.native.toFloat32Array()
  }

  /** `tensor.to(device)`. */
  to(device: DeviceName): Tensor {
    if (typeof device !== 'string' || !DEVICE_PATTERN.test(device)) throw typeError('device', "'cpu', 'cuda', 'cuda:N' or 'auto'", device)
    return Tensor.wrap(this.native.to(device))
  }

  /**
   * Frees the tensor's memory now. Node runs the finalizers of native objects
   * only between event-loop turns, so a long synchronous loop should dispose
   * of the tensors it no longer needs. Using a disposed tensor throws.
   */
  dispose(): void {
    this.native.dispose()
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.native.disposed
  }

  /** `tensor.item()`: the value of a one-element tensor. */
  item(): number {
    return this.native.item()
  }
}

export interface RandomOptions extends TensorOptions {
  /** Reseeds libtorch's generator first (`torch.manual_seed`). */
  seed?: number
}

/** `torch.randn(shape)`: standard normal float32 values. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  checkShape(shape)
  const o = checkOptions<RandomOptions>('options', options, { device: 'device', seed: { number: { integer: true } } })
  if (o.seed !== undefined) checkNumber('options.seed', o.seed, { integer: true })
  return Tensor.wrap(native.randn([...shape], o.seed, o.device))
}

/** `torch.zeros(shape)`, float32. */
export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  checkShape(shape)
  const o = checkOptions<TensorOptions>('options', options, { device: 'device' })
  return Tensor.wrap(native.zeros([...shape], o.device))
}

/** `torch.manual_seed(seed)`. */
export function manualSeed(seed: number): void {
  checkNumber('seed', seed, { integer: true })
  native.manualSeed(seed)
}

/** `torch.cuda.is_available()`. */
export function cudaIsAvailable(): boolean {
  return native.cudaIsAvailable()
}

/** `torch.cuda.device_count()`. */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount()
}

/**
 * torch.backends' switches for CUDA arithmetic: sets each one given and
 * returns all four as they now are. Process-wide, as in PyTorch. For numbers
 * that match PyTorch's to fp32 rounding on a GPU, turn TF32 off and cuDNN
 * deterministic on, in both: `cudaBackends({ cudnnAllowTf32: false, cudnnDeterministic: true })`.
 */
export function cudaBackends(set: CudaBackends = {}): Required<CudaBackends> {
  const s = checkOptions<CudaBackends>('set', set, {
    cudnnAllowTf32: 'boolean',
    matmulAllowTf32: 'boolean',
    cudnnDeterministic: 'boolean',
    cudnnBenchmark: 'boolean',
  })
  const now = native.cudaBackends(s)
  return {
    cudnnAllowTf32: now.cudnnAllowTf32 === true,
    matmulAllowTf32: now.matmulAllowTf32 === true,
    cudnnDeterministic: now.cudnnDeterministic === true,
    cudnnBenchmark: now.cudnnBenchmark === true,
  }
}

/** `torch.set_num_threads(n)`: intra-op threads of libtorch on CPU. */
export function setNumThreads(n: number): void {
  checkNumber('n', n, { integer: true, min: 1 })
  native.setNumThreads(n)
}

/** `torch.get_num_threads()`. */
export function getNumThreads(): number {
  return native.getNumThreads()
}
