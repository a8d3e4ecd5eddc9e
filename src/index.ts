/**
 * byol-torch: BYOL self-supervised training for Node.js on libtorch, with the
 * API of minerva's `minerva.models.ssl.byol` in camelCase.
 */
export { LibtorchNotFoundError, TORCH_VERSION, INSTALL_COMMAND, VERSION } from './locate'
export type { LibtorchLocation } from './locate'
export { libtorch } from './native'
export {
  Tensor,
  randn,
  zeros,
  manualSeed,
  cudaIsAvailable,
  cudaDeviceCount,
  cudaBackends,
  setNumThreads,
  getNumThreads,
} from './tensor'
export type { DeviceName, DType, TypedArrayInput, TensorOptions, RandomOptions } from './tensor'
export type { CudaBackends } from './native.generated'
export {
  Module,
  Backbone,
  ProjectionHead,
  BYOLProjectionHead,
  BYOLPredictionHead,
  NegativeCosineSimilarity,
  resnet18,
  resnet34,
  resnet50,
  loadSafetensors,
  saveSafetensors,
  saveNpy,
} from './modules'
export type { StateDict, Block, NonLinearity, ModuleOptions, ResNetOptions } from './modules'
export { BYOL, cosineSchedule, updateMomentum, deactivateRequiresGrad, readModelMetadata } from './byol'
export type { BYOLOptions, MomentumSchedule, OptimizerConfig, SGDConfig } from './byol'
export { BYOL_ERROR_CODES } from './errors'
export type { ByolError, ByolErrorCode } from './errors'
export * as transforms from './transforms'
export type { CropBox, BYOLTransformOptions, ViewOptions, Normalization } from './transforms'
export { BYOLTransform } from './transforms'
export { Dataset, TensorDataset, ImageFolder, DataLoader, mnist, randomSplit, saveImage } from './data'
export type { Batch, DataLoaderOptions, ImageFolderOptions, TensorDatasetOptions } from './data'
export { knnAccuracy, linearProbe } from './eval'
export type { Features, Embedding, KnnOptions, LinearProbeOptions, LinearProbeResult } from './eval'
export { Trainer, AbortError, latestCheckpoint } from './train'
export { mnistViews, mnistRecipe } from './presets'
export type { TrainerOptions, FitOptions, FitResult, TrainingEvent, StepEvent, TrainerMetrics, Precision, Strategy, Backend, Logger } from './train'
