/**
 * Recipes worth sharing between the `byol-torch` command, the examples and
 * users: settings found by experiment, kept in one place.
 */
import { checkOptions } from './errors'
import type { BYOLTransformOptions } from './transforms'

/**
 * BYOL's views for MNIST-like digits: gray and centred, so milder crops, no
 * flips, hue, saturation or grayscale, and no solarisation (solarising white
 * strokes on black erases the digit). Normalised with the digits' statistics.
 */
export function mnistViews(options: { inputSize?: number; minScale?: number; seed?: number } = {}): BYOLTransformOptions {
  const o = checkOptions<{ inputSize?: number; minScale?: number; seed?: number }>('options', options, {
    inputSize: { number: { integer: true, min: 1 } },
    minScale: { number: { min: 0 } },
    seed: { number: { integer: true, min: 0 } },
  })
  return {
    inputSize: o.inputSize ?? 28,
    minScale: o.minScale ?? 0.3,
    hfProb: 0,
    cjHue: 0,
    cjSat: 0,
    randomGrayScale: 0,
    view1: { gaussianBlur: 0.5, solarization: 0 },
    view2: { gaussianBlur: 0.1, solarization: 0 },
    normalize: { mean: [0.13, 0.13, 0.13], std: [0.31, 0.31, 0.31] },
    seed: o.seed,
  }
}

/**
 * The recipe with which BYOL overtakes a random ResNet on MNIST in a few
 * minutes on a 2-core CPU (the demo's, `bash scripts/demo.sh`): a narrow
 * ResNet18 with the small-image stem, small heads, small batches (BYOL gains
 * on random features only after a couple of thousand steps), SGD with momentum
 * at a constant rate, and a faster-moving target network.
 */
export const mnistRecipe = {
  backbone: { width: 16, smallInputs: true },
  heads: { hiddenDim: 1024, outputDim: 128 },
  batchSize: 32,
  trainer: { optimizer: { name: 'SGD', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }, baseMomentum: 0.99 },
} as const
