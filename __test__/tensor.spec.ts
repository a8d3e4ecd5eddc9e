import test from 'ava'
import { cudaDeviceCount, cudaIsAvailable, randn, Tensor, zeros } from '../src/index'
import { catchError } from './helpers'

test('fromTypedArray keeps shape, dtype and values', (t) => {
  const data = Float32Array.from([1, 2, 3, 4, 5, 6])
  const x = Tensor.fromTypedArray(data, [2, 3])
  t.deepEqual(x.shape, [2, 3])
  t.is(x.dtype, 'float32')
  t.is(x.device, 'cpu')
  t.deepEqual(Array.from(x.toFloat32Array()), [1, 2, 3, 4, 5, 6])
})

test('fromTypedArray reads a view at its offset', (t) => {
  const buffer = new Float32Array([9, 9, 1, 2, 3, 4])
  const x = Tensor.fromTypedArray(buffer.subarray(2), [4])
  t.deepEqual(Array.from(x.toFloat32Array()), [1, 2, 3, 4])
})

test('fromTypedArray takes integer arrays with their dtype', (t) => {
  t.is(Tensor.fromTypedArray(new Uint8Array([1, 2]), [2]).dtype, 'uint8')
  t.is(Tensor.fromTypedArray(new Int32Array([1, 2]), [2]).dtype, 'int32')
  t.is(Tensor.fromTypedArray(new BigInt64Array([1n, 2n]), [2]).dtype, 'int64')
  t.is(Tensor.fromTypedArray(new Float64Array([1, 2]), [1, 2]).dtype, 'float64')
})

test('item returns the value of a one-element tensor', (t) => {
  t.is(Tensor.fromTypedArray(new Float32Array([2.5]), []).item(), 2.5)
  const err = catchError(() => zeros([2]).item())
  t.is(err.code, 'ERR_OUT_OF_RANGE')
})

test('data length not matching the shape is a RangeError naming data', (t) => {
  const err = catchError(() => Tensor.fromTypedArray(new Float32Array(5), [2, 3]))
  t.true(err instanceof RangeError)
  t.is(err.code, 'ERR_OUT_OF_RANGE')
  t.regex(err.message, /^data: expected 6 elements for shape \[2, 3\], got 5 elements/)
})

test('data that is not a typed array is a TypeError naming data', (t) => {
  const err = catchError(() => Tensor.fromTypedArray([1, 2, 3] as unknown as Float32Array, [3]))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^data: expected a Float32Array/)
})

test('a negative or fractional dimension is a RangeError naming it', (t) => {
  t.regex(catchError(() => zeros([2, -1])).message, /^shape\[1\]: expected a number >= 0, got -1/)
  t.regex(catchError(() => zeros([1.5])).message, /^shape\[0\]: expected an integer, got 1.5/)
})

test('randn with a seed is reproducible', (t) => {
  const a = randn([3, 4], { seed: 7 }).toFloat32Array()
  const b = randn([3, 4], { seed: 7 }).toFloat32Array()
  t.deepEqual(a, b)
})

test('cudaDeviceCount agrees with cudaIsAvailable', (t) => {
  t.is(cudaIsAvailable(), cudaDeviceCount() > 0)
})

test('a device that does not exist is a clear error', (t) => {
  const missing = `cuda:${cudaDeviceCount()}` as const
  const err = catchError(() => zeros([2], { device: missing }))
  t.is(err.code, 'ERR_BYOL_DEVICE')
  t.regex(err.message, new RegExp(`'${missing}' was asked for but this machine has ${cudaDeviceCount()} CUDA device`))
  const bad = catchError(() => zeros([2], { device: 'tpu' as 'cpu' }))
  t.true(bad instanceof TypeError)
  t.regex(bad.message, /^device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got 'tpu'/)
})

test("'auto' picks CUDA when present, else the CPU", (t) => {
  t.is(zeros([1], { device: 'auto' }).device, cudaIsAvailable() ? 'cuda:0' : 'cpu')
})

test('to() moves a tensor to a device', (t) => {
  const x = randn([2, 2], { seed: 1 })
  t.deepEqual(x.to('cpu').toFloat32Array(), x.toFloat32Array())
})
