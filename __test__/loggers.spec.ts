/**
 * The trainer's loggers (Lightning's `logger`): metrics.jsonl and TensorBoard
 * event files, read back as TensorBoard reads them.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { BYOL, BYOLPredictionHead, BYOLProjectionHead, BYOLTransform, DataLoader, Tensor, TensorDataset, Trainer, TrainingEvent } from '../src/index'
import { catchError, reference, root, tmpdir } from './helpers'

function images(n: number, side = 16): Tensor {
  let s = 7
  const pixels = new Uint8Array(n * 3 * side * side).map(() => {
    s = (s * 1103515245 + 12345) % 2147483648
    return s % 256
  })
  return Tensor.fromTypedArray(pixels, [n, 3, side, side])
}

const loader = () =>
  new DataLoader(new TensorDataset(images(16), Array.from({ length: 16 }, (_, i) => i % 2)), {
    batchSize: 8,
    numWorkers: 1,
    seed: 3,
    transform: new BYOLTransform({ inputSize: 16, seed: 1 }),
  })

const small = () => new BYOL({ seed: 0, projectionHead: new BYOLProjectionHead(512, 32, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })

async function train(logDir: string, logger: Array<'jsonl' | 'tensorboard'>) {
  const events: TrainingEvent[] = []
  const result = await new Trainer({ maxSteps: 4, logEveryNSteps: 1, logger, logDir }).fit(small(), loader(), {
    onProgress: (e) => events.push(e),
    hparams: { note: 'a run of the tests', dataset: 'random pixels' },
  })
  return { events, result }
}

test.serial('the tensorboard logger writes what TensorBoard reads: the scalars under Lightning\'s names, the HParams dashboard and the view pairs', async (t) => {
  const dir = path.join(tmpdir('tb'), 'logs')
  const { events, result } = await train(dir, ['tensorboard'])
  t.is(result.logDir, dir)
  const tb = reference(['tb-read', '--dir', dir])
  const steps = events.filter((e) => e.kind === 'step')
  t.deepEqual(Object.keys(tb.scalars).sort(), ['data_wait_fraction', 'images_per_second', 'lr', 'momentum', 'projection_std', 'train_loss', 'train_loss_epoch'])
  t.deepEqual(tb.scalars.train_loss.map(([s]: number[]) => s), [1, 2, 3, 4])
  tb.scalars.train_loss.forEach(([, v]: number[], i: number) => t.true(Math.abs(v - steps[i].loss) <= 1e-6 * Math.max(1, Math.abs(steps[i].loss))))
  t.like(tb.hparams, { backbone: 'resnet18', width: 64, optimizer: 'SGD', precision: '32', worldSize: 1, batchSize: 8, note: 'a run of the tests', dataset: 'random pixels' })
  t.is(tb.hparam_types.batchSize, 'DATA_TYPE_FLOAT64')
  t.is(tb.hparam_types.note, 'DATA_TYPE_STRING')
  t.deepEqual(tb.hparam_metrics, ['train_loss', 'knn_accuracy'])
  // 8 pairs of 16x16 views, 2 white pixels apart.
  t.deepEqual(tb.images, { augmented_view_pairs: [8 * 18 - 2, 2 * 18 - 2] })
})

test.serial('the jsonl logger appends the settings, the view pairs and every progress event, each with its time', async (t) => {
  const dir = tmpdir('jsonl')
  const { events } = await train(dir, ['jsonl'])
  const records = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.deepEqual(records.map((r) => r.kind).slice(0, 2), ['settings', 'views'])
  t.is(records[0].options.note, 'a run of the tests')
  t.true(Buffer.from(records[1].png, 'base64').subarray(1, 4).toString() === 'PNG')
  const logged = records.slice(2).map(({ time, ...rest }) => {
    t.false(Number.isNaN(Date.parse(time)), String(time))
    return rest
  })
  // What onProgress received, with the absent optional fields as null.
  const received = events.map((e) => (e.kind === 'step' ? { etaSeconds: null, lossScale: null, ...e } : e))
  t.deepEqual(logged, JSON.parse(JSON.stringify(received)))
  t.false(fs.readdirSync(dir).some((f) => f.startsWith('events.out.tfevents')), 'no TensorBoard files unless asked for')
})

test.serial('without logDir the loggers write in the next free byol_logs/version_N of the working directory', (t) => {
  const cwd = tmpdir('cwd')
  fs.mkdirSync(path.join(cwd, 'byol_logs', 'version_0'), { recursive: true })
  const script = `
    const b = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))})
    const ds = new b.TensorDataset(b.Tensor.fromTypedArray(new Uint8Array(4 * 3 * 64).map((_, i) => (i * 37) % 256), [4, 3, 8, 8]), [0, 1, 0, 1])
    const loader = new b.DataLoader(ds, { batchSize: 2, numWorkers: 1, transform: new b.BYOLTransform({ inputSize: 8 }) })
    const model = new b.BYOL({ projectionHead: new b.BYOLProjectionHead(512, 8, 4), predictionHead: new b.BYOLPredictionHead(4, 8, 4) })
    new b.Trainer({ maxSteps: 1, logger: ['jsonl'] }).fit(model, loader).then((r) => console.log(r.logDir))`
  const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout.trim(), path.join('byol_logs', 'version_1'))
  t.true(fs.existsSync(path.join(cwd, 'byol_logs', 'version_1', 'metrics.jsonl')))
})

test('a logger outside the list is a TypeError naming its place in logger', (t) => {
  const e = catchError(() => new Trainer({ maxSteps: 1, logger: ['jsonl', 'wandb' as 'jsonl'] }))
  t.true(e instanceof TypeError)
  t.regex(e.message, /logger\[1\].*'jsonl' \| 'tensorboard'.*wandb/)
})

test('a logDir that cannot be made fails before training, naming it', async (t) => {
  const file = path.join(tmpdir('notdir'), 'file')
  fs.writeFileSync(file, 'x')
  const model = small()
  const e = await t.throwsAsync(new Trainer({ maxSteps: 1, logger: ['jsonl'], logDir: path.join(file, 'logs') }).fit(model, loader()))
  t.regex(e?.message ?? '', /logDir cannot be created/)
  t.is(model.globalStep, 0)
})
