/**
 * Parity of each transform with torchvision.transforms.v2.functional on the
 * same float images in [0, 1], with per-image parameters. Float paths: the
 * tolerance is float32 rounding (1e-5), except where noted.
 */
import test from 'ava'
import * as path from 'node:path'
import { BYOLTransform, loadSafetensors, randn, saveSafetensors, StateDict, Tensor, transforms } from '../src/index'
import { catchError, maxDiff, reference, tmpdir } from './helpers'

const N = 4
const params = {
  flip: [true, false, true, false],
  brightness: [0.6, 1.0, 1.4, 0.9],
  contrast: [0.6, 1.0, 1.4, 0.0],
  saturation: [0.8, 1.0, 1.2, 0.0],
  hue: [-0.1, 0.0, 0.05, 0.5],
  threshold: 0.5,
  solarize: [true, true, false, true],
  kernel: 7,
  sigma: [0.1, 0.8, 1.5, 2.0],
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  boxes: [
    [0, 0, 40, 40],
    [5, 7, 20, 31],
    [10, 0, 30, 12],
    [0, 0, 48, 48],
  ] as [number, number, number, number][],
  size: 24,
}
let x: Tensor
let ref: StateDict

test.before(() => {
  const dir = tmpdir('transforms')
  // Uniform-ish values in [0, 1], with exact ties between channels in image 3
  // (a gray image) to exercise HSV's flat case.
  const values = randn([N, 3, 48, 48], { seed: 21 }).toFloat32Array().map((v) => 1 / (1 + Math.exp(-v)))
  const plane = 48 * 48
  for (let i = 0; i < plane; i++) values[3 * 3 * plane + plane + i] = values[3 * 3 * plane + i]
  for (let i = 0; i < plane; i++) values[3 * 3 * plane + 2 * plane + i] = values[3 * 3 * plane + i]
  x = Tensor.fromTypedArray(values, [N, 3, 48, 48])
  saveSafetensors({ x }, path.join(dir, 'x.safetensors'))
  reference(['transforms', '--inputs', path.join(dir, 'x.safetensors'), '--params', JSON.stringify(params), '--out', path.join(dir, 'out.safetensors')])
  ref = loadSafetensors(path.join(dir, 'out.safetensors'))
})

const cases: [string, () => Tensor, number][] = [
  ['hflip', () => transforms.hflip(x, params.flip), 0],
  ['grayscale', () => transforms.rgbToGrayscale(x), 1e-6],
  ['brightness', () => transforms.adjustBrightness(x, params.brightness), 1e-6],
  ['contrast', () => transforms.adjustContrast(x, params.contrast), 1e-5],
  ['saturation', () => transforms.adjustSaturation(x, params.saturation), 1e-5],
  // HSV round trips in float32 with a different sequence of operations.
  ['hue', () => transforms.adjustHue(x, params.hue), 1e-5],
  ['solarize', () => transforms.solarize(x, params.threshold, params.solarize), 0],
  // Separable (rows, then columns) rather than one 2-D kernel: summation order differs.
  ['blur', () => transforms.gaussianBlur(x, params.kernel, params.sigma), 1e-5],
  ['normalize', () => transforms.normalize(x, params.mean, params.std), 1e-5],
  ['resized_crop', () => transforms.resizedCrop(x, params.boxes, params.size), 1e-5],
]

for (const [name, run, tolerance] of cases) {
  test(`${name} matches torchvision.transforms.v2.functional (tolerance ${tolerance})`, (t) => {
    const out = run()
    t.deepEqual(out.shape, ref[name].shape)
    const { diff } = maxDiff(out, ref[name])
    t.log(`${name}: max |diff| ${diff.toExponential(2)}`)
    t.true(diff <= tolerance)
  })
}

test('a hue factor outside [-0.5, 0.5] is a RangeError naming it', (t) => {
  const err = catchError(() => transforms.adjustHue(x, 0.7))
  t.true(err instanceof RangeError)
  t.regex(err.message, /^hueFactor: expected values in \[-0.5, 0.5\], got 0.7/)
})

test('an even blur kernel is a RangeError naming kernelSize', (t) => {
  const err = catchError(() => transforms.gaussianBlur(x, 4, 1))
  t.true(err instanceof RangeError)
  t.regex(err.message, /^kernelSize: expected an odd number >= 1, got 4/)
})

test('a crop box outside the image is a RangeError naming the box', (t) => {
  const err = catchError(() => transforms.resizedCrop(x, [[0, 0, 10, 10], [40, 40, 20, 20], [0, 0, 1, 1], [0, 0, 1, 1]], 8))
  t.true(err instanceof RangeError)
  t.regex(err.message, /^boxes\[1\]: expected a box inside the 48x48 image/)
})

test('a parameter list of the wrong length names the argument', (t) => {
  const err = catchError(() => transforms.adjustBrightness(x, [1, 2]))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^brightnessFactor: expected 1 or 4 values \(one per image\), got 2 values/)
})

test('BYOLTransform makes two normalised views of the input size', (t) => {
  const transform = new BYOLTransform({ inputSize: 32, seed: 1 })
  const [v0, v1] = transform.apply(x)
  t.deepEqual(v0.shape, [N, 3, 32, 32])
  t.deepEqual(v1.shape, [N, 3, 32, 32])
  const values = v0.toFloat32Array()
  t.true(values.every(Number.isFinite))
  // Normalised with ImageNet statistics: [0, 1] maps inside about [-2.2, 2.7].
  t.true(Math.min(...values) >= -2.2 && Math.max(...values) <= 2.7)
  t.notDeepEqual(values, v1.toFloat32Array())
})

test('BYOLTransform is deterministic under a seed', (t) => {
  const a = new BYOLTransform({ inputSize: 16, seed: 5 }).apply(x)[1].toFloat32Array()
  const b = new BYOLTransform({ inputSize: 16, seed: 5 }).apply(x)[1].toFloat32Array()
  const c = new BYOLTransform({ inputSize: 16, seed: 6 }).apply(x)[1].toFloat32Array()
  t.deepEqual(a, b)
  t.notDeepEqual(a, c)
})

test('BYOLTransform takes uint8 images and grayscale channels', (t) => {
  const u8 = Tensor.fromTypedArray(new Uint8Array(2 * 1 * 20 * 20).map((_, i) => i % 256), [2, 1, 20, 20])
  const [v0] = new BYOLTransform({ inputSize: 8, normalize: null }).apply(u8)
  t.deepEqual(v0.shape, [2, 3, 8, 8])
  const values = v0.toFloat32Array()
  t.true(Math.min(...values) >= 0 && Math.max(...values) <= 1)
})

test('a BYOLTransform parameter out of range is a RangeError naming it', (t) => {
  for (const [options, pattern] of [
    [{ cjProb: 1.5 }, /^cjProb: expected values in \[0, 1\], got 1.5/],
    [{ minScale: 0 }, /^minScale: expected 0 < minScale <= maxScale <= 1/],
    [{ kernelSize: 4 }, /^kernelSize: expected an odd number >= 1, got 4/],
    [{ view2: { solarization: -0.1 } }, /^view2.solarization: expected values in \[0, 1\]/],
  ] as const) {
    const err = catchError(() => new BYOLTransform(options))
    t.true(err instanceof RangeError, String(err))
    t.regex(err.message, pattern)
  }
})
