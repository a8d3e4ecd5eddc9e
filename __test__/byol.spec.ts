import test from 'ava'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  BYOL,
  BYOLPredictionHead,
  BYOLProjectionHead,
  cosineSchedule,
  cudaDeviceCount,
  deactivateRequiresGrad,
  randn,
  resnet18,
  saveSafetensors,
  Tensor,
} from '../src/index'
import { catchError, maxDiff, reference, tmpdir } from './helpers'

/** A BYOL small enough to step quickly: ResNet18 trunk, narrow heads. */
function smallModel(options: { schedule?: number; momentumSchedule?: 'step' | 'epoch'; learningRate?: number } = {}): BYOL {
  return new BYOL({
    backbone: resnet18({ seed: 0 }),
    projectionHead: new BYOLProjectionHead(512, 32, 16, { seed: 1 }),
    predictionHead: new BYOLPredictionHead(16, 32, 16, { seed: 2 }),
    ...options,
  })
}

const views = (n = 4, size = 16): [Tensor, Tensor] => [randn([n, 3, size, size], { seed: 10 }), randn([n, 3, size, size], { seed: 11 })]

test('new BYOL() trains out of the box: the projection head takes the trunk\'s 512 features', (t) => {
  const model = new BYOL({ seed: 0 })
  t.is(model.projectionHead.layers[0], 'Linear(in_features=512, out_features=4096, bias=False)')
  const loss = model.trainingStep(views(4, 32), 0)
  t.deepEqual(loss.shape, [])
  t.true(Number.isFinite(loss.item()))
})

test('a ResNet50 backbone gets a 2048-input projection head', (t) => {
  const model = new BYOL({ backbone: 'resnet50', seed: 0 })
  t.is(model.projectionHead.layers[0], 'Linear(in_features=2048, out_features=4096, bias=False)')
})

test('BYOL has minerva\'s defaults and documented members', (t) => {
  const model = new BYOL()
  t.is(model.learningRate, 0.025)
  t.is(model.scheduleLength, 90000)
  t.is(model.momentumSchedule, 'step')
  t.is(model.backbone.kind, 'resnet18')
  t.is(model.backboneMomentum.kind, 'resnet18')
  t.is(model.predictionHead.layers.length, 4)
  t.is(model.projectionHeadMomentum.layers.length, 4)
  t.is(typeof model.criterion.forward, 'function')
  t.deepEqual(model.configureOptimizers(), { name: 'SGD', lr: 0.025, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false })
})

test("the model's own heads are minerva's classes: BYOLProjectionHead (with avgpool) and BYOLPredictionHead", (t) => {
  const model = new BYOL()
  t.true(model.projectionHead instanceof BYOLProjectionHead)
  t.true(model.projectionHeadMomentum instanceof BYOLProjectionHead)
  t.true(model.predictionHead instanceof BYOLPredictionHead)
  if (model.projectionHead instanceof BYOLProjectionHead) t.is(model.projectionHead.avgpool, 'AdaptiveAvgPool2d(output_size=(1, 1))')
})

test('the momentum networks are frozen deep copies', (t) => {
  const model = smallModel()
  t.false(model.backboneMomentum.requiresGrad)
  t.false(model.projectionHeadMomentum.requiresGrad)
  t.true(model.backbone.requiresGrad)
  const online = model.backbone.stateDict()['0.weight'].toFloat32Array()
  t.deepEqual(model.backboneMomentum.stateDict()['0.weight'].toFloat32Array(), online)
  model.trainingStep(views(), 0)
  const after = model.backbone.stateDict()['0.weight'].toFloat32Array()
  t.notDeepEqual(after, online, 'the online backbone learned')
  // The EMA ran before the step, when online and momentum were equal.
  const { diff } = maxDiff(model.backboneMomentum.stateDict()['0.weight'], Tensor.fromTypedArray(online, [64, 3, 7, 7]))
  t.true(diff < 1e-6)
})

test('a backbone passed in becomes model.backbone, as in PyTorch', (t) => {
  const backbone = resnet18({ seed: 0 })
  const model = new BYOL({ backbone })
  t.is(model.backbone, backbone)
  model.trainingStep(views(4, 32), 0)
  t.deepEqual(backbone.stateDict()['0.weight'].toFloat32Array(), model.stateDict()['backbone.0.weight'].toFloat32Array())
})

test('trainingStep advances globalStep and uses the momentum of the step', (t) => {
  const model = smallModel({ schedule: 10 })
  t.is(model.globalStep, 0)
  model.trainingStep(views(), 0)
  t.is(model.lastMomentum, 0.996)
  t.is(model.globalStep, 1)
  for (let i = 1; i < 5; i++) model.trainingStep(views(), i)
  t.is(model.lastMomentum, cosineSchedule(4, 10, 0.996, 1))
  t.true(model.lastMomentum > 0.997)
})

test("momentumSchedule 'epoch' follows currentEpoch, as minerva's code does", (t) => {
  const model = smallModel({ schedule: 10, momentumSchedule: 'epoch' })
  for (let i = 0; i < 3; i++) model.trainingStep(views(), i)
  t.is(model.lastMomentum, 0.996)
  model.currentEpoch = 9
  model.trainingStep(views(), 3)
  t.is(model.lastMomentum, 1)
})

test('updateMomentum moves the EMA towards the model by 1 - m', (t) => {
  const model = smallModel()
  model.trainingStep(views(), 0)
  const online = model.projectionHead.stateDict()['layers.0.weight'].toFloat32Array()
  const ema = model.projectionHeadMomentum.stateDict()['layers.0.weight'].toFloat32Array()
  model.updateMomentum(model.projectionHead, model.projectionHeadMomentum, 0.75)
  const updated = model.projectionHeadMomentum.stateDict()['layers.0.weight'].toFloat32Array()
  for (const i of [0, 1, 100]) t.true(Math.abs(updated[i] - (ema[i] * 0.75 + online[i] * 0.25)) < 1e-7)
})

test('updateMomentum refuses modules of different layouts', (t) => {
  const model = smallModel()
  const err = catchError(() => model.updateMomentum(model.backbone, model.projectionHeadMomentum, 0.9))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^modelEma: expected a copy of model/)
})

test('deactivateRequiresGrad freezes a module', (t) => {
  const head = new BYOLPredictionHead(8, 8, 8)
  t.true(head.requiresGrad)
  deactivateRequiresGrad(head)
  t.false(head.requiresGrad)
})

test('cosineSchedule goes from start to end and holds there', (t) => {
  const model = smallModel()
  t.is(model.cosineSchedule(0, 100, 0.996, 1), 0.996)
  t.true(Math.abs(model.cosineSchedule(50, 101, 0, 1) - 0.5) < 1e-12)
  t.is(model.cosineSchedule(99, 100, 0.996, 1), 1)
  t.is(model.cosineSchedule(0, 1, 0.5, 1), 1)
})

test('cosineSchedule throws RangeError for a negative step, maxSteps < 1 or period <= 0', (t) => {
  const model = smallModel()
  for (const [fn, pattern] of [
    [() => model.cosineSchedule(-1, 10, 0, 1), /^step: expected a step number >= 0, got -1/],
    [() => model.cosineSchedule(0, 0, 0, 1), /^maxSteps: expected a total step number >= 1, got 0/],
    [() => model.cosineSchedule(0, 10, 0, 1, 0), /^period: expected a period >= 1, got 0/],
  ] as const) {
    const err = catchError(fn)
    t.true(err instanceof RangeError)
    t.regex(err.message, pattern)
  }
})

test('cosineSchedule warns when step exceeds maxSteps', async (t) => {
  const warnings: string[] = []
  const listener = (w: Error) => warnings.push(w.message)
  process.on('warning', listener)
  cosineSchedule(11, 10, 0, 1)
  await new Promise((r) => setImmediate(r))
  process.off('warning', listener)
  t.deepEqual(warnings, ['Current step number 11 exceeds max_steps 10.'])
})

test('stateDict has the keys of the PyTorch module', (t) => {
  const keys = Object.keys(new BYOL().stateDict())
  t.is(keys.length, 264)
  for (const k of [
    'backbone.0.weight',
    'backbone.1.running_mean',
    'backbone.4.0.conv1.weight',
    'projection_head.layers.0.weight',
    'projection_head.layers.1.num_batches_tracked',
    'prediction_head.layers.3.bias',
    'backbone_momentum.7.1.bn2.weight',
    'projection_head_momentum.layers.3.bias',
  ]) {
    t.true(keys.includes(k), k)
  }
})

test('save and BYOL.load round-trip weights, schedule and step', (t) => {
  const model = smallModel({ schedule: 500, learningRate: 0.01 })
  model.trainingStep(views(), 0)
  const file = path.join(tmpdir('save'), 'model.safetensors')
  model.save(file)
  const loaded = BYOL.load(file)
  t.is(loaded.scheduleLength, 500)
  t.is(loaded.learningRate, 0.01)
  t.is(loaded.globalStep, 1)
  const x = randn([2, 3, 16, 16], { seed: 5 })
  model.eval()
  loaded.eval()
  t.deepEqual(loaded.forward(x).toFloat32Array(), model.forward(x).toFloat32Array())
})

test('a failed save leaves no partial file', (t) => {
  const dir = tmpdir('save')
  const file = path.join(dir, 'missing-folder', 'model.safetensors')
  const err = catchError(() => smallModel().save(file))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.deepEqual(fs.readdirSync(dir), [])
})

test('BYOL.load of a truncated file is an error naming the file', (t) => {
  const dir = tmpdir('load')
  const file = path.join(dir, 'model.safetensors')
  smallModel().save(file)
  const truncated = path.join(dir, 'truncated.safetensors')
  fs.writeFileSync(truncated, fs.readFileSync(file).subarray(0, 5000))
  const err = catchError(() => BYOL.load(truncated))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.true(err.message.startsWith(truncated))
  t.regex(err.message, /not a valid safetensors file/)
})

test('BYOL.load of a foreign file is an error naming the file', (t) => {
  const file = path.join(tmpdir('load'), 'foreign.safetensors')
  fs.writeFileSync(file, 'PK\u0003\u0004 this is a zip, not safetensors')
  const err = catchError(() => BYOL.load(file))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.true(err.message.startsWith(file))
})

test('loadStateDict with a missing key names it and changes nothing', (t) => {
  const model = smallModel()
  const dict = model.stateDict()
  const before = dict['backbone.0.weight'].toFloat32Array()
  const partial = { ...smallModel().stateDict() }
  delete partial['prediction_head.layers.3.bias']
  const err = catchError(() => model.loadStateDict(partial))
  t.is(err.code, 'ERR_BYOL_STATE_DICT')
  t.regex(err.message, /missing keys: 'prediction_head\.layers\.3\.bias'/)
  t.deepEqual(model.stateDict()['backbone.0.weight'].toFloat32Array(), before)
})

test('loadStateDict with a wrong shape names the key', (t) => {
  const model = smallModel()
  const err = catchError(() => model.loadStateDict({ ...model.stateDict(), 'backbone.0.weight': randn([1, 3, 7, 7]) }))
  t.regex(err.message, /'backbone\.0\.weight' has shape \[1, 3, 7, 7\] in the dict but \[64, 3, 7, 7\] in the model/)
})

test('forward with the wrong rank or channel count names x and the expected shape', (t) => {
  const model = smallModel()
  for (const shape of [[4, 3, 16], [4, 1, 16, 16]]) {
    const err = catchError(() => model.forward(randn(shape)))
    t.true(err instanceof TypeError)
    t.regex(err.message, /^x: expected images of shape \[N, 3, H, W\], got shape/)
  }
})

test('forward with non-float data is a TypeError naming x', (t) => {
  const x = Tensor.fromTypedArray(new Uint8Array(2 * 3 * 8 * 8), [2, 3, 8, 8])
  const err = catchError(() => smallModel().forward(x))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^x: expected a floating-point tensor, got dtype uint8/)
})

test('a batch of 1 in training mode is a RangeError, and the process lives on', (t) => {
  const model = smallModel()
  const err = catchError(() => model.trainingStep([randn([1, 3, 16, 16]), randn([1, 3, 16, 16])], 0))
  t.true(err instanceof RangeError)
  t.regex(err.message, /BatchNorm needs more than one value per channel/)
  t.true(Number.isFinite(model.trainingStep(views(), 0).item()))
})

test('a disposed tensor throws when used', (t) => {
  const x = randn([2, 2])
  x.dispose()
  t.true(x.disposed)
  const err = catchError(() => x.shape)
  t.is(err.code, 'ERR_BYOL_DISPOSED')
})

test('views of different shapes are a TypeError naming batch[1]', (t) => {
  const err = catchError(() => smallModel().trainingStep([randn([4, 3, 16, 16]), randn([4, 3, 8, 8])], 0))
  t.regex(err.message, /^batch\[1\]: expected the shape of batch\[0\]/)
})

test('schedule <= 0 is a RangeError naming schedule', (t) => {
  for (const schedule of [0, -5]) {
    const err = catchError(() => new BYOL({ schedule }))
    t.true(err instanceof RangeError)
    t.regex(err.message, /^schedule: expected a number >= 1/)
  }
})

test('learningRate <= 0 or NaN is a RangeError naming learningRate', (t) => {
  for (const learningRate of [0, -0.1, NaN]) {
    const err = catchError(() => new BYOL({ learningRate }))
    t.true(err instanceof RangeError)
    t.regex(err.message, /^learningRate: expected/)
  }
})

test('a device that does not exist fails when the model is made', (t) => {
  const err = catchError(() => new BYOL({ device: `cuda:${cudaDeviceCount()}` }))
  t.is(err.code, 'ERR_BYOL_DEVICE')
})

test('RSS stays flat over 2000 training steps of a small model', (t) => {
  const dir = tmpdir('rss')
  const inputs = path.join(dir, 'x.safetensors')
  saveSafetensors({ x: randn([2, 3, 16, 16], { seed: 0 }) }, inputs)
  const module = path.join(dir, 'small.pt')
  reference(['torchscript', '--out', module, '--inputs', inputs, '--features', path.join(dir, 'y.safetensors')])
  const out = execFileSync(process.execPath, [path.join(__dirname, 'fixtures', 'rss-loop.cjs'), module, '2000'], { encoding: 'utf8' })
  const { before, after } = JSON.parse(out.trim().split('\n').pop() as string)
  t.log(`RSS after 200 warm-up steps ${before.toFixed(1)} MiB, after 2000 steps ${after.toFixed(1)} MiB (growth ${(after - before).toFixed(1)} MiB)`)
  t.true(after - before < 10, `RSS grew by ${(after - before).toFixed(1)} MiB`)
})
