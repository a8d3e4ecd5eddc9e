import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  Backbone,
  BYOLPredictionHead,
  BYOLProjectionHead,
  ProjectionHead,
  randn,
  resnet18,
  resnet50,
  Tensor,
} from '../src/index'
import { catchError, tmpdir } from './helpers'

function stats(x: Tensor): { mean: number; std: number } {
  const v = x.toFloat32Array()
  const mean = v.reduce((a, b) => a + b, 0) / v.length
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length
  return { mean, std: Math.sqrt(variance) }
}

test('resnet18 outputs [N, 512, 1, 1] like minerva\'s children()[:-1] trunk', (t) => {
  const net = resnet18({ seed: 0 }).eval()
  t.deepEqual(net.forward(randn([2, 3, 64, 64], { seed: 1 })).shape, [2, 512, 1, 1])
  t.is(net.featureDim, 512)
  t.is(net.kind, 'resnet18')
})

test('resnet50 outputs [N, 2048, 1, 1]', (t) => {
  const net = resnet50({ seed: 0 }).eval()
  t.deepEqual(net.forward(randn([1, 3, 32, 32], { seed: 1 })).shape, [1, 2048, 1, 1])
  t.is(net.featureDim, 2048)
})

test('resnet18 names its tensors as the Sequential trunk of torchvision\'s resnet18', (t) => {
  const keys = Object.keys(resnet18().stateDict())
  t.is(keys.length, 120)
  t.deepEqual(keys.slice(0, 6), ['0.weight', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked'])
  t.true(keys.includes('4.0.conv1.weight'))
  t.true(keys.includes('5.0.downsample.0.weight'))
  t.true(keys.includes('7.1.bn2.running_var'))
  t.is(resnet18().numParameters, 11176512)
})

test('resnet18 initialises like torchvision: Kaiming normal (fan_out) convolutions, BatchNorm 1 and 0', (t) => {
  const sd = resnet18({ seed: 3 }).stateDict()
  const w = stats(sd['4.0.conv1.weight'])
  t.true(Math.abs(w.std - Math.sqrt(2 / (64 * 9))) < 0.003, `std ${w.std}`)
  t.deepEqual(new Set(sd['1.weight'].toFloat32Array()), new Set([1]))
  t.deepEqual(new Set(sd['1.bias'].toFloat32Array()), new Set([0]))
})

test('torchvisionStateDict renames the trunk to torchvision\'s keys', (t) => {
  const keys = Object.keys(resnet18().torchvisionStateDict())
  t.is(keys[0], 'conv1.weight')
  t.true(keys.includes('layer4.1.bn2.running_mean'))
  t.false(keys.some((k) => /^\d/.test(k)))
})

test('ProjectionHead builds Linear, BatchNorm1d and activation layers from minerva\'s block tuples', (t) => {
  const head = new ProjectionHead([
    [8, 16, true, 'relu'],
    [16, 4, null, null],
  ])
  t.deepEqual(head.layers, [
    'Linear(in_features=8, out_features=16, bias=False)',
    'BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
    'ReLU()',
    'Linear(in_features=16, out_features=4, bias=True)',
  ])
  t.deepEqual(Object.keys(head.stateDict()), [
    'layers.0.weight',
    'layers.1.weight',
    'layers.1.bias',
    'layers.1.running_mean',
    'layers.1.running_var',
    'layers.1.num_batches_tracked',
    'layers.3.weight',
    'layers.3.bias',
  ])
  t.deepEqual(head.forward(randn([3, 8])).shape, [3, 4])
})

test('a block\'s fifth element sets the bias explicitly', (t) => {
  const head = new ProjectionHead([[4, 4, true, null, true]])
  t.deepEqual(head.layers[0], 'Linear(in_features=4, out_features=4, bias=True)')
})

test('ProjectionHead.preprocessStep is the identity', (t) => {
  const head = new ProjectionHead([[4, 2, null, null]])
  const x = randn([3, 4], { seed: 2 })
  t.deepEqual(head.preprocessStep(x).toFloat32Array(), x.toFloat32Array())
})

test('BYOLProjectionHead pools and flattens the trunk output before its MLP', (t) => {
  const head = new BYOLProjectionHead(512, 64, 16, { seed: 0 })
  t.is(head.avgpool, 'AdaptiveAvgPool2d(output_size=(1, 1))')
  const y = head.preprocessStep(randn([2, 512, 3, 3]))
  t.deepEqual(y.shape, [2, 512])
  t.deepEqual(head.forward(randn([2, 512, 1, 1])).shape, [2, 16])
})

test('BYOLProjectionHead and BYOLPredictionHead default to 2048-4096-256 and 256-4096-256', (t) => {
  t.is(new BYOLProjectionHead().layers[0], 'Linear(in_features=2048, out_features=4096, bias=False)')
  t.is(new BYOLPredictionHead().layers[0], 'Linear(in_features=256, out_features=4096, bias=False)')
  t.is(new BYOLPredictionHead().layers[3], 'Linear(in_features=4096, out_features=256, bias=True)')
})

test('blocks that do not chain are a TypeError naming the block', (t) => {
  const err = catchError(() => new ProjectionHead([[4, 8, null, null], [6, 2, null, null]]))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^blocks\[1\]\[0\]: expected the previous block's output dimension 8, got 6/)
})

test('a head given the wrong feature count names x and the expected shape', (t) => {
  const err = catchError(() => new ProjectionHead([[4, 2, null, null]]).forward(randn([3, 5])))
  t.true(err instanceof TypeError)
  t.regex(err.message, /^x: expected \[N, 4\] features/)
})

test('a missing TorchScript file is an error naming the path', (t) => {
  const file = path.join(tmpdir('ts'), 'missing.pt')
  const err = catchError(() => Backbone.fromTorchScript(file))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.true(err.message.startsWith(file))
})

test('a file that is not TorchScript is an error naming the path', (t) => {
  const file = path.join(tmpdir('ts'), 'foreign.pt')
  fs.writeFileSync(file, 'not a module')
  const err = catchError(() => Backbone.fromTorchScript(file))
  t.is(err.code, 'ERR_BYOL_FILE')
  t.regex(err.message, /not a loadable TorchScript module/)
})

test('loadStateDict rejects an unknown key and leaves the module as it was', (t) => {
  const head = new ProjectionHead([[4, 2, null, null]], { seed: 1 })
  const before = head.stateDict()['layers.0.weight'].toFloat32Array()
  const dict = { ...head.stateDict(), 'layers.9.weight': randn([1]) }
  const err = catchError(() => head.loadStateDict(dict))
  t.is(err.code, 'ERR_BYOL_STATE_DICT')
  t.regex(err.message, /unexpected keys: 'layers\.9\.weight'/)
  t.deepEqual(head.stateDict()['layers.0.weight'].toFloat32Array(), before)
})

test('loadStateDict rejects a wrong shape, naming the key and both shapes', (t) => {
  const head = new ProjectionHead([[4, 2, null, null]])
  const err = catchError(() => head.loadStateDict({ ...head.stateDict(), 'layers.0.weight': randn([2, 5]) }))
  t.regex(err.message, /'layers\.0\.weight' has shape \[2, 5\] in the dict but \[2, 4\] in the model/)
})

test('resnet18 takes a width and the small-image stem, and checks them', (t) => {
  const narrow = resnet18({ width: 16, smallInputs: true, seed: 0 })
  t.deepEqual(narrow.forward(randn([2, 3, 28, 28], { seed: 1 })).shape, [2, 128, 1, 1])
  t.deepEqual(narrow.stateDict()['0.weight'].shape, [16, 3, 3, 3])
  t.is(t.throws(() => resnet18({ width: 0 }), { instanceOf: RangeError })?.message, 'options.width: expected a number >= 1, got 0')
  t.is(t.throws(() => resnet18({ smallInputs: 'yes' as never }), { instanceOf: TypeError })?.message, "options.smallInputs: expected a boolean, got 'yes'")
})
