/** `byol-torch train`: BYOL on a dataset, then the model, the backbone, metrics and a report. */
import { Option } from '@commander-js/extra-typings'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { TrainerOptions } from '../train'
import { dataCommand, device, fraction, int, Logger, loggers, num, optimizerName, pair, signals } from './options'

/** The flags a preset sets, each unless given on the command line. */
const presetFlags = ['width', 'smallInputs', 'hiddenDim', 'outputDim', 'batchSize', 'optimizer', 'lr', 'momentum', 'weightDecay', 'baseMomentum'] as const

export function trainCommand() {
  const command = dataCommand('train', 'train BYOL, then write the model, the backbone (torchvision keys), metrics.jsonl and report.html')
    .option('--out <folder>', 'run folder (default runs/<date>)')
    .addOption(new Option('--preset <p>', "the demo's MNIST recipe (mnistRecipe): width 16, small-input stem, 1024/128 heads, batch 32, SGD 0.05 with momentum 0.9, wd 5e-4, tau 0.99; flags given win").choices(['mnist'] as const))
    .addOption(new Option('--backbone <name>', 'ResNet trunk').choices(['resnet18', 'resnet34', 'resnet50'] as const).default('resnet18' as const))
    .option('--width <n>', 'channels of the first ResNet stage (torchvision: 64)', int(1), 64)
    .option('--small-inputs', 'CIFAR-style stem for ~32x32 images: 3x3 stride-1 conv1, no max-pool')
    .option('--hidden-dim <n>', 'hidden width of both heads', int(1), 4096)
    .option('--output-dim <n>', 'projection size', int(1), 256)
    .option('--batch-size <n>', 'images per step', int(2), 128)
    .option('--min-scale <f>', 'smallest crop area (default 0.3 for MNIST, 0.08 otherwise)', fraction)
    .option('--no-compare-random', 'skip the kNN accuracy of the random initialisation')
    .option('--k <n>', 'kNN neighbours', int(1), 200)
    .option('--temperature <t>', 'kNN temperature', num(0, true), 0.1)
    .option('--resume <checkpoint|auto>', "continue from a checkpoint folder, or the newest in a checkpoint dir; 'auto': the newest of this run's checkpoints if any, else from the start (the default under torchrun and --nproc-per-node, whose restarts then go on)")
    .option('--max-restarts <n>', 'with --nproc-per-node: restart all processes up to n times when one fails, each going on from the last checkpoint (torchrun --max-restarts)', int(0), 0)
    .option('--max-epochs <n>', 'stop after this many epochs (default 1 if --max-steps is not given)', int(1))
    .option('--max-steps <n>', 'stop after this many steps', int(1))
    .option('--device <d>', 'cpu | cuda | cuda:N | auto', device, 'cpu' as const)
    .addOption(new Option('--precision <p>', 'numeric precision').choices(['32', 'bf16-mixed', '16-mixed'] as const).default('32' as const))
    .option('--log-every-n-steps <n>', 'progress and metrics every n steps', int(1), 10)
    .option('--checkpoint-dir <folder>', 'checkpoints (default <out>/checkpoints)')
    .option('--checkpoint-every-n-steps <n>', 'checkpoint every n steps (always at the end and on Ctrl+C)', int(1))
    .option('--keep-checkpoints <n>', 'checkpoints kept', int(1), 3)
    .addOption(new Option('--recipe <r>', "minerva's plain SGD or the BYOL paper's LARS recipe").choices(['minerva', 'paper'] as const).default('minerva' as const))
    .addOption(new Option('--optimizer <o>', "optimizer (default: the recipe's)").choices(['SGD', 'LARS', 'AdamW'] as const).argParser(optimizerName))
    .option('--lr <x>', "peak learning rate (default: the recipe's; minerva 0.025)", num(0, true))
    .option('--momentum <x>', 'SGD/LARS momentum', num(0))
    .option('--weight-decay <x>', 'weight decay', num(0))
    .option('--nesterov', 'Nesterov momentum (SGD)')
    .option('--trust-coefficient <x>', 'LARS trust coefficient (1e-3)', num(0, true))
    .option('--betas <b1,b2>', 'AdamW betas (0.9,0.999)', pair)
    .option('--eps <x>', 'AdamW epsilon (1e-8)', num(0, true))
    .addOption(new Option('--lr-schedule <s>', 'learning-rate schedule').choices(['constant', 'cosine'] as const))
    .option('--warmup-steps <n>', 'linear warm-up steps (cosine schedule)', int(0))
    .option('--warmup-epochs <x>', 'linear warm-up epochs (cosine schedule)', num(0))
    .addOption(new Option('--loss <l>', "minerva's 0.5(-cos - cos) or the paper's (2 - 2cos) x 2").choices(['minerva', 'paper'] as const))
    .option('--channels-last', 'channels_last activations and weights (faster convolutions with bf16-mixed/16-mixed, on GPUs and on CPUs with AVX-512 BF16 or AMX)')
    .option('--knn-every-n-epochs <n>', 'kNN accuracy on the held-out images every n epochs', int(1))
    .option('--base-momentum <x>', 'EMA momentum τ at the start (0.996)', num(0))
    .option('--nproc-per-node <n>', 'data-parallel training in n processes on this host (as torchrun --nproc-per-node n); under torchrun, Slurm or Kubernetes the launcher\'s RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are used instead', int(1), 1)
    .addOption(new Option('--backend <b>', "data-parallel: what carries the collectives (default auto: NCCL when training on CUDA, Gloo on the CPU)").choices(['auto', 'gloo', 'nccl'] as const))
    .option('--collective-timeout <s>', 'data-parallel: seconds a rank waits for the others before failing (a dead rank is reported within it)', num(0, true))
    .option('--accumulate-grad-batches <k>', 'one optimizer and EMA step per k batches, their gradients averaged (a larger effective batch on few devices)', int(1))
    .option('--sync-batchnorm', 'data-parallel: BatchNorm statistics over all processes (torch.nn.SyncBatchNorm)')
    .option('--logger <list>', 'loggers besides metrics.jsonl (which the report reads): tensorboard writes events.out.tfevents.* in the run folder; "none" for none', loggers, ['tensorboard'] as Logger[])
    .option('--stop-signals <list>', 'signals that stop at the next step, write a checkpoint and exit with 128 + the signal number (a second one exits at once)', signals, ['SIGINT', 'SIGTERM', 'SIGUSR1'] as NodeJS.Signals[])
  return command.action(async (given) => {
      const distributed = process.env.WORLD_SIZE !== undefined
      refuseFinishedRun(path.resolve(given.out ?? defaultOut()), given.resume)
      if (given.nprocPerNode > 1 && !distributed) {
        const { launch } = await import('./launch')
        // One run folder for all the processes.
        const out = path.resolve(given.out ?? defaultOut())
        const args = withoutFlag(withoutFlag(process.argv.slice(2), '--nproc-per-node'), '--max-restarts').concat(['--out', out])
        process.exitCode = await launch(given.nprocPerNode, args, given.stopSignals, given.maxRestarts)
        return
      }
      // In data-parallel training rank 0 reports, evaluates and writes; the others only train.
      const lead = !distributed || process.env.RANK === '0'
      const lib = await import('../index')
      const rt = await import('./runtime')
      const { native } = await import('../native')
      const f = { ...given }
      if (given.preset === 'mnist') {
        const r = lib.mnistRecipe
        const o = r.trainer.optimizer
        const preset = { ...r.backbone, ...r.heads, batchSize: r.batchSize, optimizer: o.name, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, baseMomentum: r.trainer.baseMomentum }
        for (const key of presetFlags) if (command.getOptionValueSource(key) !== 'cli') Object.assign(f, { [key]: preset[key] })
      }
      const { ProgressView } = await import('./progress')
      const { readMetrics, renderReport, writeAtomically } = await import('./html-report')
      const threads = rt.useThreads(f)
      const out = path.resolve(f.out ?? defaultOut())
      fs.mkdirSync(out, { recursive: true })
      const data = rt.openData(f)
      const transform = rt.augmentations(data, f.minScale, f.seed)
      const loader = new lib.DataLoader(data.train, { batchSize: f.batchSize, numWorkers: f.workers, prefetch: 4, seed: f.seed, transform, imageSize: data.imageSize, dropLast: true })
      const evalTrain = rt.evalLoader(data.train, data.imageSize, f.workers, transform)
      const evalVal = rt.evalLoader(data.val, data.imageSize, f.workers, transform)
      const backbone = { resnet18: lib.resnet18, resnet34: lib.resnet34, resnet50: lib.resnet50 }[f.backbone]({ seed: f.seed, width: f.width, smallInputs: Boolean(f.smallInputs) })
      const model = new lib.BYOL({
        backbone,
        projectionHead: new lib.BYOLProjectionHead(backbone.featureDim, f.hiddenDim, f.outputDim, { seed: f.seed }),
        predictionHead: new lib.BYOLPredictionHead(f.outputDim, f.hiddenDim, f.outputDim, { seed: f.seed }),
        device: f.device,
      })
      const options: TrainerOptions = {
        maxEpochs: f.maxEpochs ?? (f.maxSteps === undefined ? 1 : undefined),
        maxSteps: f.maxSteps,
        device: f.device,
        precision: f.precision,
        logEveryNSteps: f.logEveryNSteps,
        checkpointDir: f.checkpointDir ?? path.join(out, 'checkpoints'),
        checkpointEveryNSteps: f.checkpointEveryNSteps,
        keepCheckpoints: f.keepCheckpoints,
        seed: f.seed,
        recipe: f.recipe,
        optimizer: {
          name: f.optimizer,
          lr: f.lr,
          momentum: f.momentum,
          weightDecay: f.weightDecay,
          nesterov: f.nesterov,
          trustCoefficient: f.trustCoefficient,
          betas: f.betas,
          eps: f.eps,
        },
        lrSchedule: f.lrSchedule,
        warmupSteps: f.warmupSteps,
        warmupEpochs: f.warmupEpochs,
        loss: f.loss,
        channelsLast: f.channelsLast,
        knnEveryNEpochs: f.knnEveryNEpochs,
        baseMomentum: f.baseMomentum,
        backend: f.backend,
        collectiveTimeout: f.collectiveTimeout,
        syncBatchNorm: f.syncBatchnorm,
        accumulateGradBatches: f.accumulateGradBatches,
        // metrics.jsonl is what the report reads: always written.
        logger: ['jsonl', ...f.logger],
        logDir: out,
      }
      const trainer = new lib.Trainer(options)

      const metricsFile = path.join(out, 'metrics.jsonl')
      const log = (record: object) => lead && fs.appendFileSync(metricsFile, JSON.stringify({ ...record, time: new Date().toISOString() }) + '\n')
      if (lead) console.log(
        `byol-torch train: ${data.name}, ${data.train.length} ${data.digits ? 'images' : 'image files'} for training, ${data.val.length} held out for kNN; ${f.backbone} (width ${f.width}${f.smallInputs ? ', small-input stem' : ''}), batch ${f.batchSize}, ${data.imageSize}x${data.imageSize}, recipe ${f.recipe}, ${f.device}, ${f.precision === '32' ? 'float32' : f.precision}, ${threads} thread${threads === 1 ? '' : 's'}`,
      )
      if (lead) console.log(`run folder: ${out}`)
      // What the report shows besides the curves: every setting of this session, and what its views look like.
      // What the report shows besides the curves: every setting of this
      // session; the trainer's loggers add the run's own and the view pairs.
      const settings = { ...f, out, threads, worldSize: Number(process.env.WORLD_SIZE ?? 1) }

      let randomKnn: number | undefined
      let lastKnn: { step: number; accuracy: number } | undefined
      const skipped = new Set<string>()
      const view = new ProgressView(Boolean(process.stdout.isTTY))
      // Ctrl+C, and the signals schedulers send before they stop a job (SIGTERM
      // from Kubernetes, Docker, systemd, Slurm; SIGUSR1 as Slurm's warning):
      // stop at the next step, write a checkpoint, exit with 128 + the signal's
      // number. A second signal exits at once.
      const controller = new AbortController()
      let stoppedBy: NodeJS.Signals | undefined
      const exitCode = (signal: NodeJS.Signals) => 128 + (os.constants.signals[signal] ?? 0)
      const onSignal = (signal: NodeJS.Signals) => {
        stoppedBy = signal
        view.line(`${signal}: stopping at the next step (a checkpoint is written); send it again to exit at once`)
        controller.abort()
        for (const s of f.stopSignals) {
          process.removeListener(s, onSignal)
          process.once(s, () => {
            view.line(`${s}: exiting now`)
            native.exitNow(exitCode(s))
          })
        }
      }
      for (const s of f.stopSignals) process.once(s, onSignal)
      const started = Date.now()
      let stopped = 'finished'
      try {
        await trainer.fit(model, loader, {
          signal: controller.signal,
          resumeFrom: f.resume,
          knn: { train: evalTrain, test: evalVal, k: f.k, temperature: f.temperature, baseline: f.compareRandom && !f.resume },
          hparams: settings,
          onProgress: (e) => {
            switch (e.kind) {
              case 'step':
                view.step(e)
                break
              case 'epoch':
                view.line(`epoch ${e.epoch}: train_loss ${e.loss.toFixed(4)}`)
                break
              case 'knn':
                lastKnn = { step: e.step, accuracy: e.accuracy }
                if (e.epoch === undefined) {
                  randomKnn = e.accuracy
                  view.line(`kNN accuracy of the backbone at random initialisation: ${rt.pct(e.accuracy)}`)
                } else view.line(`epoch ${e.epoch}: kNN accuracy ${rt.pct(e.accuracy)}`)
                break
              case 'warning':
                view.line(`warning: ${e.message}`)
                if (e.message.startsWith('skipped an unreadable image: ')) skipped.add(e.message)
                break
            }
          },
        })
      } catch (e) {
        if (!(e instanceof lib.AbortError)) throw e
        stopped = 'aborted'
        view.line(`${e.message}\nresume with: npx byol-torch train ${process.argv.slice(3).join(' ')} --resume ${e.checkpoint ?? options.checkpointDir}`)
      } finally {
        view.stop()
        for (const s of f.stopSignals) process.removeListener(s, onSignal)
      }
      const seconds = (Date.now() - started) / 1000
      if (!lead) {
        if (stoppedBy) process.exitCode = exitCode(stoppedBy)
        return
      }

      // The last epoch's kNN evaluation is the final one, unless training stopped
      // between epochs; a run stopped by a signal has no time for another.
      let finalKnn = lastKnn?.step === model.globalStep ? lastKnn.accuracy : undefined
      if (finalKnn === undefined && stoppedBy === undefined) {
        finalKnn = await rt.knnOf(model, evalTrain, evalVal, f.k, f.temperature)
        log({ kind: 'knn', step: model.globalStep, epoch: model.currentEpoch, accuracy: finalKnn })
        // The trainer's event file is closed: TensorBoard reads every file of the folder.
        if (f.logger.includes('tensorboard')) native.NativeTensorBoardWriter.create(out).addScalar('knn_accuracy', finalKnn, model.globalStep)
      }
      // Where the weights come from: eval and embed default to the same data and held-out split.
      const provenance = { data: f.data, imageSize: data.imageSize, seed: f.seed, valFraction: f.valFraction, recipe: f.recipe, steps: model.globalStep, epochs: model.currentEpoch, batchSize: f.batchSize }
      model.save(path.join(out, 'model.safetensors'), { provenance })
      model.exportBackbone(path.join(out, 'backbone.safetensors'), { provenance })
      const summary: Record<string, string | number> = {
        data: data.name,
        backbone: `${f.backbone}, width ${f.width}, ${f.smallInputs ? 'small-input stem (3x3 conv, no max-pool)' : 'ImageNet stem (7x7 conv, max-pool)'}`,
        recipe: f.recipe,
        'optimizer steps': model.globalStep,
        epochs: model.currentEpoch,
        stopped,
      }
      if (skipped.size) summary['training images'] = `${data.train.length - skipped.size} (${skipped.size} could not be read)`
      // k as it voted: capped at the training images.
      const k = native.knnNeighbours({ k: f.k }, data.train.length).used
      if (finalKnn !== undefined) summary[`kNN accuracy (k=${k}, T=${f.temperature}), BYOL`] = rt.pct(finalKnn)
      if (randomKnn !== undefined) summary[`kNN accuracy (k=${k}, T=${f.temperature}), random init`] = rt.pct(randomKnn)
      log({ kind: 'session', seconds })
      log({ kind: 'summary', rows: summary })
      writeAtomically(path.join(out, 'report.html'), renderReport(readMetrics(metricsFile)))
      if (finalKnn !== undefined) {
        console.log(`\nkNN accuracy on ${data.val.length} held-out images (weighted kNN, k=${k}, T=${f.temperature}):`)
        console.log(`  BYOL backbone after ${model.globalStep} steps: ${rt.pct(finalKnn)}`)
        if (randomKnn !== undefined) console.log(`  the same backbone at random initialisation: ${rt.pct(randomKnn)}`)
      }
      console.log(`\nwrote ${path.join(out, 'model.safetensors')} (BYOL.load), ${path.join(out, 'backbone.safetensors')} (torchvision keys),`)
      console.log(`      ${metricsFile}, ${path.join(out, 'report.html')}`)
      if (skipped.size) console.log(`\n${skipped.size} image(s) could not be read and were left out of training (see the warnings above)`)
      if (stoppedBy) process.exitCode = exitCode(stoppedBy)
    })
}

function defaultOut(): string {
  return path.join('runs', new Date().toISOString().replace(/[:.]/g, '-'))
}

/** `args` without `flag` and its value (`--flag v` or `--flag=v`). */
/**
 * A run folder whose run finished (its model.safetensors written) is not
 * trained over unless `--resume` says how: a second run would overwrite it.
 * A launcher's restart (TORCHELASTIC_RESTART_COUNT above 0) follows a failed
 * attempt, and goes on.
 */
function refuseFinishedRun(out: string, resume: string | undefined): void {
  const restart = Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0) > 0
  if (resume !== undefined || restart || !fs.existsSync(path.join(out, 'model.safetensors'))) return
  const err = new Error(
    `the run folder ${out} already holds a finished run (model.safetensors); give another --out, or --resume auto to go on from its last checkpoint (with a larger --max-steps or --max-epochs)`,
  ) as Error & { code: string }
  err.code = 'ERR_BYOL_CHECKPOINT'
  throw err
}

function withoutFlag(args: string[], flag: string): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) i++
    else if (!args[i].startsWith(`${flag}=`)) out.push(args[i])
  }
  return out
}
