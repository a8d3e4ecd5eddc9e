/**
 * Trainer.fit: the loop off the JS thread, progress, checkpoints and resume,
 * and every way a run can go wrong.
 */
import test from 'ava'
import { spawn, execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  AbortError,
  BYOL,
  BYOLPredictionHead,
  BYOLProjectionHead,
  DataLoader,
  getNumThreads,
  knnAccuracy,
  latestCheckpoint,
  linearProbe,
  loadSafetensors,
  saveSafetensors,
  setNumThreads,
  Tensor,
  TensorDataset,
  StepEvent,
  Trainer,
  TrainingEvent,
} from '../src/index'
import { root, tmpdir } from './helpers'

function images(n: number, seed = 1, side = 16): Tensor {
  let s = seed
  const pixels = new Uint8Array(n * 3 * side * side).map(() => {
    s = (s * 1103515245 + 12345) % 2147483648
    return s % 256
  })
  return Tensor.fromTypedArray(pixels, [n, 3, side, side])
}

function loader(n = 16, batchSize = 8) {
  return new DataLoader(new TensorDataset(images(n), Array.from({ length: n }, (_, i) => i % 2)), { batchSize, numWorkers: 1, seed: 3 })
}

const isStep = (e: TrainingEvent): e is StepEvent => e.kind === 'step'

// Small heads keep each step cheap; the trunk is the default ResNet18.
function small(seed = 0) {
  return new BYOL({ seed, projectionHead: new BYOLProjectionHead(512, 32, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })
}

test.serial('fit trains off the JS thread: a timer fires while it runs', async (t) => {
  const model = small()
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const events: TrainingEvent[] = []
  const trainer = new Trainer({ maxSteps: 6, logEveryNSteps: 1 })
  const result = await trainer.fit(model, loader(), { onProgress: (e) => events.push(e) })
  clearInterval(timer)
  t.true(ticks > 2, `the timer fired ${ticks} times`)
  t.is(result.globalStep, 6)
  t.is(model.globalStep, 6)
  t.is(model.currentEpoch, 3, 'two batches per epoch: three whole epochs')
  t.deepEqual(events.filter(isStep).map((e) => e.step), [1, 2, 3, 4, 5, 6])
})

test.serial('progress events carry loss, learning rate, momentum, speed, ETA and the collapse monitor', async (t) => {
  const trainer = new Trainer({ maxSteps: 4, logEveryNSteps: 2, recipe: 'paper' })
  const events: TrainingEvent[] = []
  await trainer.fit(small(), loader(), { onProgress: (e) => events.push(e) })
  const last = events.filter(isStep).pop()!
  t.is(last.step, 4)
  t.is(last.totalSteps, 4)
  t.true(Number.isFinite(last.loss) && last.loss >= 0, 'the paper loss 2 - 2cos summed over views is >= 0')
  t.true(last.learningRate >= 0 && last.momentum >= 0.996 && last.momentum <= 1)
  t.true(last.imagesPerSecond > 0)
  t.true(last.projectionStd > 0 && last.projectionStd < 1)
  t.true(last.dataWaitFraction >= 0 && last.dataWaitFraction <= 1, 'the share of the step spent waiting for the loader')
  t.is(trainer.metrics.train_loss, last.loss)
  const epochs = events.filter((e) => e.kind === 'epoch')
  t.is(epochs.length, 2)
  t.true(epochs.every((e) => Number.isFinite(e.loss)), 'the epoch mean of train_loss is logged')
  t.is(trainer.metrics.train_loss_epoch, epochs[1].loss)
})

test.serial('maxEpochs and maxSteps: one is required, and each must be >= 1', (t) => {
  t.is(t.throws(() => new Trainer({}), { instanceOf: TypeError })?.message, 'maxEpochs: expected maxEpochs or maxSteps (an integer >= 1), got neither')
  t.is(t.throws(() => new Trainer({ maxEpochs: 0 }), { instanceOf: RangeError })?.message, 'maxEpochs: expected a number >= 1, got 0')
  t.is(t.throws(() => new Trainer({ maxSteps: -5 }), { instanceOf: RangeError })?.message, 'maxSteps: expected a number >= 1, got -5')
  t.is((t.throws(() => new Trainer({ maxSteps: 1, precision: '8' as never }), { instanceOf: TypeError }) as { code?: string }).code, 'ERR_INVALID_ARG_TYPE')
})

test.serial('fit called twice at once on the same model is an error', async (t) => {
  const model = small()
  const first = new Trainer({ maxSteps: 3 }).fit(model, loader())
  // Should the first call fail, its reason is more telling than the second's outcome.
  first.catch((e) => t.log('first fit failed', e))
  const second = new Trainer({ maxSteps: 3 }).fit(model, loader())
  const err = await t.throwsAsync(second)
  t.is((err as { code?: string }).code, 'ERR_BYOL_BUSY')
  t.regex(err!.message, /^fit: the model is being trained by Trainer\.fit/)
  await first
  t.is(model.globalStep, 3)
})

test.serial('a checkpoint folder that cannot be written fails before training starts', async (t) => {
  const dir = tmpdir('unwritable')
  const file = path.join(dir, 'a-file')
  fs.writeFileSync(file, 'not a folder')
  const model = small()
  const err = await t.throwsAsync(new Trainer({ maxSteps: 2, checkpointDir: path.join(file, 'ckpt') }).fit(model, loader()))
  t.is((err as { code?: string }).code, 'ERR_BYOL_FILE')
  t.regex(err!.message, /checkpointDir/)
  t.is(model.globalStep, 0)
})

test.serial('an AbortSignal stops at a step boundary, writes a checkpoint and rejects with AbortError', async (t) => {
  const dir = tmpdir('abort')
  const controller = new AbortController()
  const model = small()
  const run = new Trainer({ maxSteps: 50, logEveryNSteps: 1, checkpointDir: dir }).fit(model, loader(), {
    signal: controller.signal,
    onProgress: (e) => {
      if (e.kind === 'step' && e.step === 2) controller.abort()
    },
  })
  const err = (await t.throwsAsync(run, { instanceOf: AbortError })) as AbortError
  t.is(err.code, 'ABORT_ERR')
  t.is(err.name, 'AbortError')
  t.true(err.globalStep >= 2 && err.globalStep < 50)
  t.is(model.globalStep, err.globalStep)
  t.is(err.checkpoint, path.join(dir, `step-${String(err.globalStep).padStart(8, '0')}`))
  t.true(fs.existsSync(path.join(err.checkpoint!, 'model.safetensors')))
})

test.serial('an exception thrown by onProgress stops the run with a checkpoint and rejects fit with it', async (t) => {
  const dir = tmpdir('listener-throws')
  const model = small()
  const bug = new Error('a bug in the listener')
  let after = 0
  const run = new Trainer({ maxSteps: 50, logEveryNSteps: 1, checkpointDir: dir }).fit(model, loader(), {
    onProgress: (e) => {
      if (e.kind === 'step' && e.step === 2) throw bug
      if (e.kind === 'step' && e.step > 2) after++
    },
  })
  t.is(await t.throwsAsync(run), bug)
  t.true(model.globalStep >= 2 && model.globalStep < 50, `stopped at step ${model.globalStep}`)
  t.is(after, 0, 'onProgress is not called again once it has thrown')
  t.is(latestCheckpoint(dir), path.join(dir, `step-${String(model.globalStep).padStart(8, '0')}`))
})

test.serial("fit keeps the caller's thread count", async (t) => {
  const before = getNumThreads()
  // Not the core count: libgomp's default, which a lost setting falls back to.
  setNumThreads(os.availableParallelism() + 1)
  try {
    await new Trainer({ maxSteps: 1 }).fit(small(), loader())
    t.is(getNumThreads(), os.availableParallelism() + 1)
  } finally {
    setNumThreads(before)
  }
})

test.serial('latestCheckpoint names the newest checkpoint folder, or null for a first run', async (t) => {
  const dir = tmpdir('latest')
  t.is(latestCheckpoint(path.join(dir, 'not-yet')), null)
  t.is(latestCheckpoint(dir), null)
  await new Trainer({ maxSteps: 3, checkpointDir: dir, checkpointEveryNSteps: 1 }).fit(small(), loader())
  t.is(latestCheckpoint(dir), path.join(dir, 'step-00000003'))
})

test.serial('a run killed mid-way and resumed reaches the parameters of an uninterrupted run', async (t) => {
  // Each run is its own process; the first is killed with SIGKILL once it has
  // checkpointed step 3 of 7, the second resumes from the folder.
  const dir = tmpdir('kill')
  const data = path.join(dir, 'images.safetensors')
  saveSafetensors({ x: images(24, 9) }, data)
  const child = path.join(root, '__test__', 'fixtures', 'train-child.cjs')
  const killedAt = await new Promise<number>((resolve, reject) => {
    const p = spawn(process.execPath, [child, data, path.join(dir, 'a'), '7', '-'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let seen = 0
    p.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().trim().split('\n')) seen = Math.max(seen, JSON.parse(line).checkpoint)
      if (seen >= 3) p.kill('SIGKILL')
    })
    p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(seen) : reject(new Error(`the run ended by itself (${code})`))))
  })
  t.true(killedAt >= 3 && killedAt < 7, `killed after step ${killedAt}`)
  const run = (args: string[]) => execFileSync(process.execPath, [child, data, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })
  run([path.join(dir, 'a'), '7', path.join(dir, 'resumed.safetensors'), path.join(dir, 'a')])
  run([path.join(dir, 'b'), '7', path.join(dir, 'whole.safetensors')])
  const resumed = loadSafetensors(path.join(dir, 'resumed.safetensors'))
  const whole = loadSafetensors(path.join(dir, 'whole.safetensors'))
  let worst = 0
  for (const [k, v] of Object.entries(whole)) {
    const a = v.toFloat32Array()
    const b = resumed[k].toFloat32Array()
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]))
  }
  t.log(`killed after step ${killedAt}; worst difference over ${Object.keys(whole).length} tensors: ${worst}`)
  t.is(worst, 0)
})

test.serial('with accumulateGradBatches an abort stops between windows, and resuming reaches the parameters of an uninterrupted run', async (t) => {
  const dir = tmpdir('accumulate')
  const options = { maxSteps: 6, accumulateGradBatches: 3, logEveryNSteps: 1, checkpointDir: dir }
  // 32 images in batches of 4: 8 batches an epoch, so windows of 3, 3 and 2.
  // small()'s heads are drawn unseeded: both runs start from one state.
  const start = small().stateDict()
  const whole = small()
  whole.loadStateDict(start)
  await new Trainer({ ...options, checkpointDir: tmpdir('accumulate-whole') }).fit(whole, loader(32, 4))
  const stopped = small()
  stopped.loadStateDict(start)
  const controller = new AbortController()
  const steps: number[] = []
  const aborted = new Trainer(options).fit(stopped, loader(32, 4), {
    signal: controller.signal,
    onProgress: (e) => {
      if (e.kind !== 'step') return
      steps.push(e.step)
      if (e.step === 2) controller.abort()
    },
  })
  const err = (await t.throwsAsync(aborted, { instanceOf: AbortError })) as AbortError
  t.true(err.globalStep >= 2 && err.globalStep < 6)
  const resumed = small()
  await new Trainer(options).fit(resumed, loader(32, 4), { resumeFrom: dir })
  t.is(resumed.globalStep, 6)
  t.is(resumed.currentEpoch, 2, 'two epochs of 3 optimiser steps each')
  const a = whole.stateDict()
  const b = resumed.stateDict()
  let worst = 0
  for (const [k, v] of Object.entries(a)) {
    const x = v.toFloat32Array()
    const y = b[k].toFloat32Array()
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]))
  }
  t.log(`aborted after step ${err.globalStep}; worst difference from the uninterrupted run: ${worst}`)
  t.is(worst, 0)
})

test.serial('resuming from a checkpoint of another architecture names the mismatched keys', async (t) => {
  const dir = tmpdir('arch')
  await new Trainer({ maxSteps: 1, checkpointDir: dir }).fit(small(), loader())
  const other = new BYOL({ seed: 1, projectionHead: new BYOLProjectionHead(512, 64, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })
  const err = await t.throwsAsync(new Trainer({ maxSteps: 2 }).fit(other, loader(), { resumeFrom: dir }))
  t.is((err as { code?: string }).code, 'ERR_BYOL_CHECKPOINT')
  t.regex(err!.message, /another architecture/)
  t.regex(err!.message, /projection_head\.layers\.0\.weight/)
  t.is(other.globalStep, 0)
})

test.serial('a corrupt newest checkpoint is passed over for the previous one, with a warning', async (t) => {
  const dir = tmpdir('corrupt')
  await new Trainer({ maxSteps: 2, checkpointDir: dir, checkpointEveryNSteps: 1 }).fit(small(), loader())
  const newest = path.join(dir, 'step-00000002', 'optimizer.safetensors')
  const bytes = fs.readFileSync(newest)
  bytes[bytes.length - 1] ^= 0xff
  fs.writeFileSync(newest, bytes)
  const model = small()
  const result = await new Trainer({ maxSteps: 3 }).fit(model, loader(), { resumeFrom: dir })
  t.is(result.warnings.length, 1)
  t.regex(result.warnings[0], /step-00000001 because .*step-00000002 is unusable: optimizer\.safetensors is corrupt/)
  t.is(model.globalStep, 3)

  fs.rmSync(path.join(dir, 'step-00000001'), { recursive: true })
  const err = await t.throwsAsync(new Trainer({ maxSteps: 3 }).fit(small(), loader(), { resumeFrom: dir }))
  t.is((err as { code?: string }).code, 'ERR_BYOL_CHECKPOINT')
  t.regex(err!.message, /no usable checkpoint left/)
})

test.serial('a loss that becomes NaN stops the run with the step, after saving the last good state', async (t) => {
  // A learning rate of 1e30 blows the weights up in step 1; step 2's loss is NaN.
  const dir = tmpdir('nan')
  const model = small()
  const before = model.stateDict()['backbone.0.weight'].toFloat32Array()
  const err = (await t.throwsAsync(new Trainer({ maxSteps: 4, checkpointDir: dir, optimizer: { lr: 1e30 } }).fit(model, loader()))) as Error & {
    code?: string
    step?: number
  }
  t.is(err.code, 'ERR_BYOL_NON_FINITE_LOSS')
  t.is(err.step, 2)
  t.regex(err.message, /the loss became NaN at step 2; the parameters were left as they were after step 1; that state is saved in .*step-00000001/)
  t.is(model.globalStep, 1)
  const saved = loadSafetensors(path.join(dir, 'step-00000001', 'model.safetensors'))['backbone.0.weight'].toFloat32Array()
  const now = model.stateDict()['backbone.0.weight'].toFloat32Array()
  t.deepEqual(saved, now)
  t.notDeepEqual(now, before)
})

test.serial('float images holding NaN are refused when the dataset is made', (t) => {
  const data = new Float32Array(2 * 3 * 4 * 4).fill(0.5)
  data[5] = Number.NaN
  const err = t.throws(() => new TensorDataset(Tensor.fromTypedArray(data, [2, 3, 4, 4])), { instanceOf: RangeError })
  t.is(err?.message, 'images: expected finite values in [0, 1], got NaN or infinite values')
})

test.serial('embed gives eval-mode backbone features; knnAccuracy and linearProbe score them', async (t) => {
  const model = small()
  const e = await model.embed(loader(16))
  t.deepEqual(e.shape, [16, 512])
  t.is(e.data.length, 16 * 512)
  t.is(e.labels.length, 16)
  t.true(model.training, 'embed leaves the model in training mode')
  const acc = await knnAccuracy(e, e.labels, e, e.labels, { k: 1 })
  t.is(acc, 1, 'each feature is its own nearest neighbour')
  const probe = await linearProbe(e, e.labels, e, e.labels, { epochs: 50 })
  t.is(probe.trainAccuracy, 1)
  const err = await t.throwsAsync(knnAccuracy(e, e.labels.slice(1), e, e.labels))
  t.is((err as { code?: string }).code, 'ERR_INVALID_ARG_TYPE')
  t.regex(err!.message, /trainLabels: expected 16 labels/)
})

test.serial('knnAccuracy caps k at the number of training features and says so', async (t) => {
  const train = { data: new Float32Array([1, 0, 0, 1, 1, 0.1]), shape: [3, 2] as [number, number] }
  const test_ = { data: new Float32Array([1, 0.05]), shape: [1, 2] as [number, number] }
  const warnings: string[] = []
  const listen = (w: Error) => warnings.push(w.message)
  process.on('warning', listen)
  const capped = await knnAccuracy(train, [0, 1, 0], test_, [0], { k: 200 })
  const three = await knnAccuracy(train, [0, 1, 0], test_, [0], { k: 3 })
  await new Promise((resolve) => setImmediate(resolve))
  process.off('warning', listen)
  t.is(capped, three, 'k=200 over 3 features votes as k=3')
  t.deepEqual(warnings.filter((w) => w.startsWith('knnAccuracy')), ['knnAccuracy: k=200 is more than the 3 training features; all 3 vote (k is capped at their number)'])
})

test.serial('kNN evaluation every N epochs during fit reports accuracy', async (t) => {
  const events: TrainingEvent[] = []
  const trainer = new Trainer({ maxEpochs: 2, knnEveryNEpochs: 1 })
  await trainer.fit(small(), loader(), { knn: { train: loader(16), test: loader(8), k: 5 }, onProgress: (e) => events.push(e) })
  const knn = events.filter((e) => e.kind === 'knn')
  t.deepEqual(knn.map((e) => e.epoch), [0, 1])
  t.true(knn.every((e) => e.accuracy >= 0 && e.accuracy <= 1))
  t.is(trainer.metrics.knn_accuracy, knn[1].accuracy)
})
