/**
 * Image transforms on batches of float images `[N, C, H, W]` in `[0, 1]`, run
 * in libtorch on the batch's device. Each takes one parameter per image (or
 * one for the whole batch), as `torchvision.transforms.v2.functional` does for
 * a single image.
 */
import { checkNumber, checkOptions, typeError } from './errors'
import { native } from './native'
import type { ByolTransformOptions, NativeByolTransform, Normalization, ViewOptions } from './native.generated'
import { Tensor } from './tensor'

type PerImage = number | readonly number[]
type Flags = boolean | readonly boolean[]

function tensorArg(x: Tensor): Tensor {
  if (!(x instanceof Tensor)) throw typeError('images', 'a Tensor of shape [N, C, H, W]', x)
  return x
}

function values(arg: string, v: PerImage): number[] {
  const list = typeof v === 'number' ? [v] : Array.isArray(v) ? [...v] : null
  if (!list) throw typeError(arg, 'a number or an array of numbers (one per image)', v)
  list.forEach((n, i) => checkNumber(`${arg}[${i}]`, n))
  return list
}

function flags(arg: string, x: Tensor, v: Flags): boolean[] {
  if (typeof v === 'boolean') return new Array(x.shape[0]).fill(v)
  if (!Array.isArray(v) || v.some((f) => typeof f !== 'boolean')) throw typeError(arg, 'a boolean or an array of booleans', v)
  return [...v]
}

/** `horizontal_flip` of the images whose flag is set (default: all). */
export function hflip(images: Tensor, apply: Flags = true): Tensor {
  const x = tensorArg(images)
  return Tensor.wrap(native.transformHflip(x.native, flags('apply', x, apply)))
}

/** `rgb_to_grayscale`: one channel of ITU-R 601-2 luma. */
export function rgbToGrayscale(images: Tensor): Tensor {
  return Tensor.wrap(native.transformRgbToGrayscale(tensorArg(images).native))
}

/** Grayscale, kept as 3 channels, for the images whose flag is set. */
export function randomGrayscale(images: Tensor, apply: Flags): Tensor {
  const x = tensorArg(images)
  return Tensor.wrap(native.transformRandomGrayscale(x.native, flags('apply', x, apply)))
}

/** `adjust_brightness`. */
export function adjustBrightness(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(native.transformAdjust(tensorArg(images).native, 'brightness', values('brightnessFactor', factor)))
}

/** `adjust_contrast`. */
export function adjustContrast(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(native.transformAdjust(tensorArg(images).native, 'contrast', values('contrastFactor', factor)))
}

/** `adjust_saturation`. */
export function adjustSaturation(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(native.transformAdjust(tensorArg(images).native, 'saturation', values('saturationFactor', factor)))
}

/** `adjust_hue`, factors in `[-0.5, 0.5]` turns of the hue circle. */
export function adjustHue(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(native.transformAdjust(tensorArg(images).native, 'hue', values('hueFactor', factor)))
}

/** `solarize`: `1 - x` where `x >= threshold` (default 0.5, `BYOLTransform`'s), for the images whose flag is set. */
export function solarize(images: Tensor, threshold?: number, apply: Flags = true): Tensor {
  const x = tensorArg(images)
  if (threshold !== undefined) checkNumber('threshold', threshold)
  return Tensor.wrap(native.transformSolarize(x.native, threshold, flags('apply', x, apply)))
}

/** `gaussian_blur` with an odd square kernel and one sigma per image (reflect padding). */
export function gaussianBlur(images: Tensor, kernelSize: number, sigma: PerImage): Tensor {
  checkNumber('kernelSize', kernelSize, { integer: true })
  return Tensor.wrap(native.transformGaussianBlur(tensorArg(images).native, kernelSize, values('sigma', sigma)))
}

/** `normalize`: `(x - mean) / std` per channel. Default: ImageNet's statistics. */
export function normalize(images: Tensor, mean?: readonly number[], std?: readonly number[]): Tensor {
  const x = tensorArg(images)
  return Tensor.wrap(native.transformNormalize(x.native, mean && values('mean', mean), std && values('std', std)))
}

/** A crop box in pixels: `[top, left, height, width]`. */
export type CropBox = readonly [top: number, left: number, height: number, width: number]

/** `resized_crop` of each image to `size x size`: bilinear with antialiasing. */
export function resizedCrop(images: Tensor, boxes: readonly CropBox[], size: number): Tensor {
  if (!Array.isArray(boxes)) throw typeError('boxes', 'an array of [top, left, height, width] boxes', boxes)
  boxes.forEach((b, i) => {
    if (!Array.isArray(b) || b.length !== 4) throw typeError(`boxes[${i}]`, '[top, left, height, width]', b)
    b.forEach((v, j) => checkNumber(`boxes[${i}][${j}]`, v, { integer: true }))
  })
  checkNumber('size', size, { integer: true })
  return Tensor.wrap(native.transformResizedCrop(tensorArg(images).native, boxes.map((b) => [...b]), size))
}

export type { ViewOptions, Normalization }

/** lightly's `BYOLTransform` options; each one left out takes lightly's default. */
export type BYOLTransformOptions = ByolTransformOptions

const aNumber = { number: {} } as const

/**
 * BYOL's two asymmetric views (Grill et al. 2020, as lightly's `BYOLTransform`):
 * random resized crop, horizontal flip, colour jitter in random order,
 * grayscale, Gaussian blur, solarisation, normalisation. Runs batched in
 * libtorch on the batch's device; deterministic for a seed.
 */
export class BYOLTransform {
  /** @internal */
  readonly native: NativeByolTransform

  constructor(options: BYOLTransformOptions = {}) {
    const o = checkOptions<BYOLTransformOptions>('options', options, {
      inputSize: { number: { integer: true, min: 1 } },
      cjProb: aNumber,
      cjStrength: aNumber,
      cjBright: aNumber,
      cjContrast: aNumber,
      cjSat: aNumber,
      cjHue: aNumber,
      minScale: aNumber,
      maxScale: aNumber,
      ratio: 'pair',
      randomGrayScale: aNumber,
      hfProb: aNumber,
      sigmas: 'pair',
      kernelSize: { number: { integer: true, min: 1 } },
      solarizeThreshold: aNumber,
      normalize: 'objectOrNull',
      view1: 'object',
      view2: 'object',
      seed: { number: { integer: true, min: 0 } },
    })
    for (const view of ['view1', 'view2'] as const) {
      checkOptions<ViewOptions>(view, o[view], { gaussianBlur: aNumber, solarization: aNumber })
    }
    this.native = new native.NativeByolTransform(o)
  }

  /** The normalisation the views end with (`null` if none): give it to an evaluation `DataLoader`'s `normalize`. */
  get normalization(): Normalization | null {
    return this.native.normalization ?? null
  }

  /** The two views `[x0, x1]` of a `[N, C, H, W]` batch (uint8, or float in [0, 1]). */
  apply(images: Tensor): [Tensor, Tensor] {
    const [a, b] = this.native.apply(tensorArg(images).native)
    return [Tensor.wrap(a), Tensor.wrap(b)]
  }
}
