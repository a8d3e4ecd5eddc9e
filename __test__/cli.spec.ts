/**
 * The `byol-torch` command as a user runs it (the built dist/cli/index.js).
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { randn, readModelMetadata, saveSafetensors } from '../src/index'
import { reference, root, tmpdir } from './helpers'

const cli = path.join(root, 'dist', 'cli', 'index.js')
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })

let images: string
let out: string
test.before(() => {
  images = tmpdir('cli-images')
  reference(['bench-images', '--out', images, '--count', '24', '--size', '40'])
  out = tmpdir('cli-run')
})

test.serial('every subcommand has --help listing its flags', (t) => {
  const top = run(['--help'])
  t.is(top.status, 0)
  for (const c of ['train', 'embed', 'eval', 'export', 'report', 'doctor']) t.regex(top.stdout, new RegExp(c))
  const train = run(['train', '--help']).stdout
  for (const flag of ['--max-epochs', '--max-steps', '--device', '--precision', '--log-every-n-steps', '--checkpoint-dir', '--checkpoint-every-n-steps', '--seed', '--recipe', '--optimizer', '--lr', '--weight-decay', '--nesterov', '--warmup-epochs', '--lr-schedule', '--knn-every-n-epochs', '--resume']) {
    t.true(train.includes(flag), flag)
  }
  t.regex(run(['eval', '--help']).stdout, /--model/)
  t.regex(run(['embed', '--help']).stdout, /--out/)
})

test.serial('train writes the model, the backbone, metrics.jsonl, a report with plots and checkpoints', (t) => {
  const r = run(['train', '--data', images, '--image-size', '32', '--batch-size', '8', '--max-steps', '3', '--log-every-n-steps', '1',
    '--hidden-dim', '32', '--output-dim', '16', '--workers', '1', '--k', '5', '--out', out])
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /step 3\/3 .*loss .* img\/s {2}data wait \d+% {2}ETA/, 'plain progress lines when stdout is not a terminal')
  t.regex(r.stdout, /kNN accuracy on 5 held-out images/)
  t.regex(r.stdout, /the same backbone at random initialisation: \d+\.\d%/)
  for (const f of ['model.safetensors', 'backbone.safetensors', 'metrics.jsonl', 'report.html', 'checkpoints/step-00000003/trainer.json']) {
    t.true(fs.existsSync(path.join(out, f)), f)
  }
  const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.deepEqual(records.filter((r) => r.kind === 'step').map((r) => r.step), [1, 2, 3])
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8')
  t.is((html.match(/<svg /g) ?? []).length, 5, 'loss, learning rate, momentum, collapse monitor, kNN accuracy')
  t.false(/<script|https?:\/\//.test(html), 'self-contained: no scripts, nothing fetched')
})

test.serial('byol-torch report draws the same report as training did: summary, settings, view pairs and curves', (t) => {
  const again = path.join(out, 'again.html')
  const r = run(['report', path.join(out, 'metrics.jsonl'), '--out', again])
  t.is(r.status, 0, r.stderr)
  const original = fs.readFileSync(path.join(out, 'report.html'), 'utf8')
  t.is(fs.readFileSync(again, 'utf8'), original)
  t.regex(original, /<th>backbone<\/th><td>resnet18, width 64, ImageNet stem/)
  t.regex(original, /<th>hiddenDim<\/th><td>32<\/td>/, 'the settings table')
  t.regex(original, /<img alt="augmented view pairs" src="data:image\/png;base64,/)
})

test.serial('train writes TensorBoard event files: the scalars of metrics.jsonl under Lightning\'s names, the hyperparameters and the view pairs', (t) => {
  const tb = reference(['tb-read', '--dir', out])
  const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  const steps = metrics.filter((m) => m.kind === 'step')
  t.deepEqual(Object.keys(tb.scalars).sort(), ['data_wait_fraction', 'images_per_second', 'knn_accuracy', 'knn_accuracy_random_init', 'lr', 'momentum', 'projection_std', 'train_loss', 'train_loss_epoch'])
  t.deepEqual(tb.scalars.train_loss.map(([s]: number[]) => s), steps.map((m) => m.step))
  tb.scalars.train_loss.forEach(([, v]: number[], i: number) => t.true(Math.abs(v - steps[i].loss) <= 1e-6 * Math.max(1, Math.abs(steps[i].loss)), `step ${steps[i].step}`))
  tb.scalars.lr.forEach(([, v]: number[], i: number) => t.true(Math.abs(v - steps[i].learningRate) <= 1e-6 * steps[i].learningRate))
  t.regex(tb.texts.hparams, /\| batchSize \| 8 \|/)
  // The HParams dashboard: the command's settings and the run's own.
  t.like(tb.hparams, { batchSize: 8, hiddenDim: 32, optimizer: 'SGD', worldSize: 1, precision: '32', momentumSchedule: 'step' })
  t.deepEqual(Object.keys(tb.images), ['augmented_view_pairs'])
})

test.serial('eval and embed read the trained model', (t) => {
  const model = path.join(out, 'model.safetensors')
  const e = run(['eval', '--model', model, '--data', images, '--image-size', '32', '--k', '5', '--probe-epochs', '2', '--workers', '1'])
  t.is(e.status, 0, e.stderr)
  const result = JSON.parse(e.stdout.trim())
  t.true(result.knnAccuracy >= 0 && result.knnAccuracy <= 1)
  t.true(result.linearProbe.testAccuracy >= 0)
  const features = path.join(out, 'features.safetensors')
  const m = run(['embed', '--model', model, '--data', images, '--image-size', '32', '--out', features, '--workers', '1'])
  t.is(m.status, 0, m.stderr)
  t.regex(m.stdout, /wrote 24 x 512 features/)
})

test.serial('embed --out x.npy writes what numpy reads: the same features and labels as the safetensors, and the files in order', (t) => {
  const model = path.join(out, 'model.safetensors')
  const npy = path.join(out, 'features.npy')
  const m = run(['embed', '--model', model, '--data', images, '--image-size', '32', '--out', npy, '--workers', '1'])
  t.is(m.status, 0, m.stderr)
  t.regex(m.stdout, /wrote 24 x 512 features to .*features\.npy, labels to .*features\.labels\.npy, files to .*features\.paths\.txt/)
  const check = reference(['npy-check', '--npy', npy, '--safetensors', path.join(out, 'features.safetensors')])
  t.deepEqual(check.shape, [24, 512])
  t.is(check.dtype, 'float32')
  t.is(check.max_diff, 0)
  t.true(check.labels_equal)
  const paths = fs.readFileSync(path.join(out, 'features.paths.txt'), 'utf8').trim().split('\n')
  t.is(paths.length, 24)
  t.true(paths.every((p) => p.startsWith(images) && /\.(jpg|png)$/.test(p)))
})

test.serial('export --format torchscript writes a module torch.jit.load runs on the run\'s image size', (t) => {
  const pt = path.join(out, 'backbone.pt')
  const r = run(['export', '--model', path.join(out, 'model.safetensors'), '--format', 'torchscript', '--image-size', '32', '--out', pt])
  t.is(r.status, 0, r.stderr)
  const inputs = path.join(out, 'jit-x.safetensors')
  saveSafetensors({ x: randn([2, 3, 32, 32], { seed: 1 }) }, inputs)
  t.deepEqual(reference(['jit-check', '--module', pt, '--inputs', inputs, '--out', path.join(out, 'jit-y.safetensors')]).shape, [2, 512, 1, 1])
})

test.serial('the model and backbone files describe themselves: architecture and provenance in their metadata', (t) => {
  for (const file of ['model.safetensors', 'backbone.safetensors']) {
    const meta = readModelMetadata(path.join(out, file))
    t.like(meta.architecture, { backbone: 'resnet18', width: 64, stem: 'imagenet (7x7 conv, max-pool)', dtype: 'float32' }, file)
    t.like(meta.provenance, { data: images, imageSize: 32, seed: 0, valFraction: 0.2, recipe: 'minerva', steps: 3 }, file)
  }
  t.like(readModelMetadata(path.join(out, 'model.safetensors')).architecture, { projection_head: { input_dim: 512, output_dim: 16 }, prediction_head: { input_dim: 16, output_dim: 16 } })
})

test.serial("eval without --data evaluates on the model's own data and held-out split, and warns when a flag changes that split", (t) => {
  const model = path.join(out, 'model.safetensors')
  const e = run(['eval', '--model', model, '--k', '5', '--probe-epochs', '1', '--workers', '1'])
  t.is(e.status, 0, e.stderr)
  const result = JSON.parse(e.stdout.trim())
  t.is(result.data, images)
  t.is(result.heldOut, 5)
  const other = run(['eval', '--model', model, '--k', '5', '--probe-epochs', '1', '--workers', '1', '--seed', '3'])
  t.is(other.status, 0, other.stderr)
  t.regex(other.stderr, /--seed 3 differs from the model's training \(0\): the held-out images are not those training left out/)
})

test.serial('a bad flag is refused with a message naming it', (t) => {
  const r = run(['train', '--max-steps', '0'])
  t.is(r.status, 1)
  t.regex(r.stderr, /--max-steps.*expected an integer >= 1, got '0'/)
  const p = run(['train', '--precision', 'fp8'])
  t.not(p.status, 0)
  t.regex(p.stderr, /--precision/)
})
