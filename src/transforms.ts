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
  return new Tensor(guard(() => native.transformHflip(x.native, flags('apply', x, apply))))
}

/** `rgb_to_grayscale`: one channel of ITU-R 601-2 luma. */
export function rgbToGrayscale(images: Tensor): Tensor {
  return new Tensor(guard(() => native.transformRgbToGrayscale(tensorArg(images).native)))
}

/** Grayscale, kept as 3 channels, for the images whose flag is set. */
export function randomGrayscale(images: Tensor, apply: Flags): Tensor {
  const x = tensorArg(images)
  return new Tensor(guard(() => native.transformRandomGrayscale(x.native, flags('apply', x, apply))))
}

/** `adjust_brightness`. */
export function adjustBrightness(images: Tensor, factor: PerImage): Tensor {
  return new Tensor(guard(() => native.transformAdjust(tensorArg(images).native, 'brightness', values('brightnessFactor', factor))))
}

/** `adjust_contrast`. */
export function adjustContrast(images: Tensor, factor: PerImage): Tensor {
  return new Tensor(guard(() => native.transformAdjust(tensorArg(images).native, 'contrast', values('contrastFactor', factor))))
}

/** `adjust_saturation`. */
export function adjustSaturation(images: Tensor, factor: PerImage): Tensor {
  return new Tensor(guard(() => native.transformAdjust(tensorArg(images).native, 'saturation', values('saturationFactor', factor))))
}

/** `adjust_hue`, factors in `[-0.5, 0.5]` turns of the hue circle. */
export function adjustHue(images: Tensor, factor: PerImage): Tensor {
  return new Tensor(guard(() => native.transformAdjust(tensorArg(images).native, 'hue', values('hueFactor', factor))))
}

/** `solarize`: `1 - x` where `x >= threshold`, for the images whose flag is set. */
export function solarize(images: Tensor, threshold = 0.5, apply: Flags = true): Tensor {
  const x = tensorArg(images)
  checkNumber('threshold', threshold)
  return new Tensor(guard(() => native.transformSolarize(x.native, threshold, flags('apply', x, apply))))
}

/** `gaussian_blur` with an odd square kernel and one sigma per image (reflect padding). */
export function gaussianBlur(images: Tensor, kernelSize: number, sigma: PerImage): Tensor {
  checkNumber('kernelSize', kernelSize, { integer: true })
  return new Tensor(guard(() => native.transformGaussianBlur(tensorArg(images).native, kernelSize, values('sigma', sigma))))
}

/** `normalize`: `(x - mean) / std` per channel. Defaults: ImageNet statistics. */
export function normalize(images: Tensor, mean: readonly number[] = [0.485, 0.456, 0.406], std: readonly number[] = [0.229, 0.224, 0.225]): Tensor {
  return new Tensor(guard(() => native.transformNormalize(tensorArg(images).native, values('mean', mean), values('std', std))))
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
  return new Tensor(guard(() => native.transformResizedCrop(tensorArg(images).native, boxes.map((b) => [...b]), size)))
}
