/**
 * Image transforms on batches of float images `[N, C, H, W]` in `[0, 1]`, run
 * in libtorch on the batch's device. Each takes one parameter per image (or
 * one for the whole batch), as `torchvision.transforms.v2.functional` does for
 * a single image.
 */
import { checkNumber, guard, typeError } from './errors'
import { native } from './native'
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
  return Tensor.wrap(guard(() => native.transformHflip(x.native, flags('apply', x, apply))))
}

/** `rgb_to_grayscale`: one channel of ITU-R 601-2 luma. */
export function rgbToGrayscale(images: Tensor): Tensor {
  return Tensor.wrap(guard(() => native.transformRgbToGrayscale(tensorArg(images).native)))
}

/** Grayscale, kept as 3 channels, for the images whose flag is set. */
export function randomGrayscale(images: Tensor, apply: Flags): Tensor {
  const x = tensorArg(images)
  return Tensor.wrap(guard(() => native.transformRandomGrayscale(x.native, flags('apply', x, apply))))
}

/** `adjust_brightness`. */
export function adjustBrightness(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(guard(() => native.transformAdjust(tensorArg(images).native, 'brightness', values('brightnessFactor', factor))))
}

/** `adjust_contrast`. */
export function adjustContrast(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(guard(() => native.transformAdjust(tensorArg(images).native, 'contrast', values('contrastFactor', factor))))
}

/** `adjust_saturation`. */
export function adjustSaturation(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(guard(() => native.transformAdjust(tensorArg(images).native, 'saturation', values('saturationFactor', factor))))
}

/** `adjust_hue`, factors in `[-0.5, 0.5]` turns of the hue circle. */
export function adjustHue(images: Tensor, factor: PerImage): Tensor {
  return Tensor.wrap(guard(() => native.transformAdjust(tensorArg(images).native, 'hue', values('hueFactor', factor))))
}

/** `solarize`: `1 - x` where `x >= threshold`, for the images whose flag is set. */
export function solarize(images: Tensor, threshold = 0.5, apply: Flags = true): Tensor {
  const x = tensorArg(images)
  checkNumber('threshold', threshold)
  return Tensor.wrap(guard(() => native.transformSolarize(x.native, threshold, flags('apply', x, apply))))
}

/** `gaussian_blur` with an odd square kernel and one sigma per image (reflect padding). */
export function gaussianBlur(images: Tensor, kernelSize: number, sigma: PerImage): Tensor {
  checkNumber('kernelSize', kernelSize, { integer: true })
  return Tensor.wrap(guard(() => native.transformGaussianBlur(tensorArg(images).native, kernelSize, values('sigma', sigma))))
}

/** `normalize`: `(x - mean) / std` per channel. Defaults: ImageNet statistics. */
export function normalize(images: Tensor, mean: readonly number[] = [0.485, 0.456, 0.406], std: readonly number[] = [0.229, 0.224, 0.225]): Tensor {
  return Tensor.wrap(guard(() => native.transformNormalize(tensorArg(images).native, values('mean', mean), values('std', std))))
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
  return Tensor.wrap(guard(() => native.transformResizedCrop(tensorArg(images).native, boxes.map((b) => [...b]), size)))
}

/** Per-view settings: BYOL's views differ in blur and solarisation. */
export interface ViewOptions {
  /** Probability of a Gaussian blur. */
  gaussianBlur: number
  /** Probability of solarisation. */
  solarization: number
}

/** lightly's `BYOLTransform` options; every one has the default lightly gives it. */
export interface BYOLTransformOptions {
  /** Output side in pixels. Default 224. */
  inputSize?: number
  /** Probability of colour jitter. Default 0.8. */
  cjProb?: number
  /** Scales all jitter strengths. Default 1. */
  cjStrength?: number
  /** Brightness jitter. Default 0.4. */
  cjBright?: number
  /** Contrast jitter. Default 0.4. */
  cjContrast?: number
  /** Saturation jitter. Default 0.2. */
  cjSat?: number
  /** Hue jitter (turns). Default 0.1. */
  cjHue?: number
  /** Smallest crop area, as a fraction of the image. Default 0.08. */
  minScale?: number
  /** Largest crop area. Default 1. */
  maxScale?: number
  /** Aspect ratio range of the crop. Default [3/4, 4/3]. */
  ratio?: readonly [number, number]
  /** Probability of grayscale. Default 0.2. */
  randomGrayScale?: number
  /** Probability of a horizontal flip. Default 0.5. */
  hfProb?: number
  /** Blur sigma range. Default [0.1, 2]. */
  sigmas?: readonly [number, number]
  /** Odd blur kernel size. Default: about a tenth of `inputSize`. */
  kernelSize?: number
  /** Solarisation threshold. Default 0.5. */
  solarizeThreshold?: number
  /** Normalisation; `null` for none. Default ImageNet's mean and std. */
  normalize?: { mean: readonly number[]; std: readonly number[] } | null
  /** First view. Default `{ gaussianBlur: 1, solarization: 0 }`. */
  view1?: Partial<ViewOptions>
  /** Second view. Default `{ gaussianBlur: 0.1, solarization: 0.2 }`. */
  view2?: Partial<ViewOptions>
  /** Seed of the transform's random generator. Default 0. */
  seed?: number
}

/**
 * BYOL's two asymmetric views (Grill et al. 2020, as lightly's `BYOLTransform`):
 * random resized crop, horizontal flip, colour jitter in random order,
 * grayscale, Gaussian blur, solarisation, normalisation. Runs batched in
 * libtorch on the batch's device; deterministic for a seed.
 */
export class BYOLTransform {
  /** @internal */
  readonly native: import('./native.generated').NativeByolTransform

  /** @internal the options with every default filled in, as the addon takes them */
  readonly resolved: import('./native.generated').ByolTransformOptions

  constructor(options: BYOLTransformOptions = {}) {
    const o = options
    const seed = checkNumber('seed', o.seed ?? 0, { integer: true, min: 0 })
    const normalize = o.normalize === null ? undefined : [
      [...(o.normalize?.mean ?? [0.485, 0.456, 0.406])],
      [...(o.normalize?.std ?? [0.229, 0.224, 0.225])],
    ]
    const num = (arg: string, v: number | undefined, d: number) => checkNumber(arg, v ?? d)
    this.resolved = {
            inputSize: checkNumber('inputSize', o.inputSize ?? 224, { integer: true }),
            cjProb: num('cjProb', o.cjProb, 0.8),
            cjStrength: num('cjStrength', o.cjStrength, 1),
            cjBright: num('cjBright', o.cjBright, 0.4),
            cjContrast: num('cjContrast', o.cjContrast, 0.4),
            cjSat: num('cjSat', o.cjSat, 0.2),
            cjHue: num('cjHue', o.cjHue, 0.1),
            minScale: num('minScale', o.minScale, 0.08),
            maxScale: num('maxScale', o.maxScale, 1),
            ratio: [...(o.ratio ?? [3 / 4, 4 / 3])],
            randomGrayScale: num('randomGrayScale', o.randomGrayScale, 0.2),
            hfProb: num('hfProb', o.hfProb, 0.5),
            sigmas: [...(o.sigmas ?? [0.1, 2])],
            kernelSize: o.kernelSize,
            solarizeThreshold: num('solarizeThreshold', o.solarizeThreshold, 0.5),
            normalize,
            view1: { gaussianBlur: o.view1?.gaussianBlur ?? 1, solarization: o.view1?.solarization ?? 0 },
            view2: { gaussianBlur: o.view2?.gaussianBlur ?? 0.1, solarization: o.view2?.solarization ?? 0.2 },
    }
    this.native = guard(() => new native.NativeByolTransform(this.resolved, seed))
  }

  /** The normalisation the views end with (`null` if none): give it to an evaluation `DataLoader`'s `normalize`. */
  get normalization(): { mean: number[]; std: number[] } | null {
    const n = this.resolved.normalize
    return n ? { mean: [...n[0]], std: [...n[1]] } : null
  }

  /** The two views `[x0, x1]` of a `[N, C, H, W]` batch (uint8, or float in [0, 1]). */
  apply(images: Tensor): [Tensor, Tensor] {
    const [a, b] = guard(() => this.native.apply(tensorArg(images).native))
    return [Tensor.wrap(a), Tensor.wrap(b)]
  }
}
