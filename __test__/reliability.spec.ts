/**
 * Training as a server or a batch job meets it: other work in the same
 * process, preemption by a scheduler, many threads at once, disks that fill
 * up or refuse writes, and images that cannot be read.
 */
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  BYOL,
  BYOLPredictionHead,
  BYOLProjectionHead,
  DataLoader,
  ImageFolder,
  loadSafetensors,
  randn,
  resnet18,
  saveImage,
  Tensor,
  TensorDataset,
  Trainer,
  TrainingEvent,
} from '../src/index'
import { root, tmpdir } from './helpers'

const fixture = (name: string) => path.join(root, '__test__', 'fixtures', name)
const cli = path.join(root, 'dist', 'cli', 'index.js')

function tiny(seed = 1) {
  const backbone = resnet18({ width: 8, smallInputs: true, seed })
  return new BYOL({ backbone, projectionHead: new BYOLProjectionHead(backbone.featureDim, 32, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })
}

const randomLoader = () => new DataLoader(new TensorDataset(randn([32, 3, 16, 16], { seed: 2 })), { batchSize: 8, numWorkers: 1, seed: 3 })

/** Two class folders of random 40x40 PNGs; with `broken`, one file that is not a PNG at all. */
function imageFolder(name: string, broken: boolean): string {
  const dir = tmpdir(name)
  let s = 7
  for (const cls of ['a', 'b']) {
    fs.mkdirSync(path.join(dir, cls))
    for (let i = 0; i < 12; i++) {
      const pixels = new Uint8Array(3 * 40 * 40).map(() => (s = (s * 1103515245 + 12345) % 2147483648) % 256)
      saveImage(Tensor.fromTypedArray(pixels, [3, 40, 40]), path.join(dir, cls, `${i}.png`))
    }
  }
  if (broken) fs.writeFileSync(path.join(dir, 'b', 'broken.png'), 'not a png')
  return dir
}

let images: string
let withBroken: string
test.before(() => {
  images = imageFolder('images', false)
  withBroken = imageFolder('broken', true)
})

// --- Long work off libuv's pool -------------------------------------------------

for (const pool of [undefined, '1']) {
  // Served, reads take about 20 ms at worst here; behind a fit holding libuv's
  // pool they would wait for it to end, seconds. The bound sits between, clear
  // of this shared host's scheduling stalls (one CI run saw 122 ms).
  test.serial(`four concurrent fits leave fs calls answering within 500 ms (UV_THREADPOOL_SIZE=${pool ?? 'default'})`, (t) => {
    const env = { ...process.env, UV_THREADPOOL_SIZE: pool }
    const r = spawnSync(process.execPath, [fixture('concurrent-fits.cjs'), path.join(root, 'dist')], { encoding: 'utf8', env })
    t.is(r.status, 0, r.stderr)
    const { worst, reads, steps } = JSON.parse(r.stdout.trim())
    t.log(`worst fs.promises.readFile latency over ${reads} reads during four fits: ${worst.toFixed(1)} ms`)
    t.deepEqual(steps, [60, 60, 60, 60])
    t.true(worst < 500, `${worst} ms`)
  })
}

// --- Exiting while training runs ----------------------------------------------

for (const [how, status] of [['process.exit(3)', 3], ['an uncaught exception', 1]] as const) {
  test.serial(`${how} during fit ends the process with exit code ${status}, after a checkpoint of the step it was in`, (t) => {
    // Three times: before, two runs in three ended in SIGSEGV, the exit's static destructors pulling libtorch from under the training thread.
    for (let run = 0; run < 3; run++) {
      const dir = tmpdir('exit-during-fit')
      const r = spawnSync(process.execPath, [fixture('exit-during-fit.cjs'), path.join(root, 'dist'), dir, how.startsWith('process') ? 'exit' : 'throw'], {
        encoding: 'utf8',
      })
      t.is(r.signal, null, r.stderr)
      t.is(r.status, status, r.stderr)
      const at = Number(fs.readdirSync(dir)[0]?.slice('step-'.length))
      t.true(at >= 2, `a checkpoint at step ${at}`)
    }
  })
}

test.serial("a worker thread's exit does not stop training on the main thread", (t) => {
  const r = spawnSync(process.execPath, [fixture('worker-exit-during-fit.cjs'), path.join(root, 'dist')], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout.trim()), { globalStep: 6 })
})

// --- Preemption: the CLI stops on SIGTERM/SIGUSR1 and resumes bit-equal -------

interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
}

/** Runs `byol-torch train`; `onStep` sees each step number as it is printed, and may signal the process. */
function train(args: string[], onStep?: (step: number, kill: (s: NodeJS.Signals) => void) => void): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString()
      stdout += text
      for (const m of text.matchAll(/^step (\d+)\//gm)) onStep?.(Number(m[1]), (s) => p.kill(s))
    })
    p.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    p.on('error', reject)
    p.on('exit', (code, signal) => (code === 1 ? reject(new Error(`train failed:\n${stdout}\n${stderr}`)) : resolve({ code, signal, stdout })))
  })
}

const small = ['--data', '', '--image-size', '32', '--batch-size', '8', '--width', '8', '--small-inputs', '--hidden-dim', '32', '--output-dim', '16',
  '--workers', '1', '--threads', '1', '--log-every-n-steps', '1', '--no-compare-random', '--k', '5']

function smallRun(out: string, steps: number, extra: string[] = []): string[] {
  const args = [...small, '--max-steps', String(steps), '--out', out, ...extra]
  args[1] = images
  return args
}

function sameParameters(t: import('ava').ExecutionContext, a: string, b: string) {
  const x = loadSafetensors(a)
  const y = loadSafetensors(b)
  t.deepEqual(Object.keys(x).sort(), Object.keys(y).sort())
  let worst = 0
  for (const [k, v] of Object.entries(x)) {
    const p = v.toFloat32Array()
    const q = y[k].toFloat32Array()
    for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i] - q[i]))
  }
  t.is(worst, 0, 'bit-equal parameters')
}

let uninterrupted: string
test.serial.before(async () => {
  uninterrupted = path.join(tmpdir('whole'), 'run')
  const r = await train(smallRun(uninterrupted, 12))
  if (r.code !== 0) throw new Error(`the uninterrupted run ended with ${r.code}`)
})

for (const [signal, code] of [['SIGTERM', 143], ['SIGUSR1', 138]] as const) {
  test.serial(`${signal} stops the CLI at the next step with a checkpoint and exit code ${code}; --resume ends bit-equal to an uninterrupted run`, async (t) => {
    const dir = tmpdir(signal)
    const first = path.join(dir, 'first')
    let sent = false
    const stopped = await train(smallRun(first, 12), (step, kill) => {
      if (step >= 3 && !sent) {
        sent = true
        kill(signal)
      }
    })
    t.is(stopped.code, code)
    t.regex(stopped.stdout, new RegExp(`${signal}: stopping at the next step`))
    t.regex(stopped.stdout, /resume with: npx byol-torch train .* --resume /)
    const checkpoints = fs.readdirSync(path.join(first, 'checkpoints'))
    t.is(checkpoints.length, 1)
    const at = Number(checkpoints[0].slice(5))
    t.true(at >= 3 && at < 12, `stopped at step ${at}`)

    const second = path.join(dir, 'second')
    const resumed = await train(smallRun(second, 12, ['--resume', path.join(first, 'checkpoints')]))
    t.is(resumed.code, 0)
    t.log(`${signal} at step 3: checkpoint at step ${at}, resumed to 12`)
    sameParameters(t, path.join(second, 'model.safetensors'), path.join(uninterrupted, 'model.safetensors'))
  })
}

test.serial('a second stop signal exits at once, without waiting for the checkpoint', async (t) => {
  const out = path.join(tmpdir('twice'), 'run')
  // Larger steps, so that the first signal's stop cannot finish in the 20 ms before the second.
  const args = smallRun(out, 200, ['--width', '32', '--image-size', '64'])
  let sent = false
  const r = await train(args, (step, kill) => {
    if (step >= 2 && !sent) {
      sent = true
      kill('SIGTERM')
      setTimeout(() => kill('SIGINT'), 20)
    }
  })
  t.is(r.code, 130, 'the exit code of the second signal, SIGINT')
  t.false(fs.existsSync(path.join(out, 'model.safetensors')), 'it did not go on to write the model')
})

test.serial('--stop-signals names the signals that stop a run; an unknown one is refused', (t) => {
  const r = spawnSync(process.execPath, [cli, 'train', '--stop-signals', 'SIGTERM,SIGNOPE'], { encoding: 'utf8' })
  t.is(r.status, 1)
  t.regex(r.stderr, /--stop-signals.*SIGNOPE/)
})

// --- Load -------------------------------------------------------------------------

test.serial('9 threads building, training, aborting, saving and loading models for 60 s: no error, no deadlock, RSS bounded', (t) => {
  const r = spawnSync(process.execPath, [fixture('stress.cjs'), '60'], { encoding: 'utf8', timeout: 180_000 })
  t.is(r.status, 0, r.stderr)
  const s = JSON.parse(r.stdout.trim())
  t.log(`${s.threads} threads, ${s.rounds} rounds, ${s.aborts} aborted by AbortController; RSS every 10 s: ${s.rssMiB.join(', ')} MiB; peak ${s.peakRssMiB} MiB`)
  t.deepEqual(s.errors, [])
  t.true(s.rounds > 100 && s.aborts > 0)
  t.true(s.peakRssMiB < 2048, `peak RSS ${s.peakRssMiB} MiB`)
})

// --- Disk and file faults --------------------------------------------------------

test.serial('a disk that fills up during a checkpoint: a clear error, the earlier checkpoints whole, and resume works', (t) => {
  const dir = tmpdir('full')
  const roomy = tmpdir('roomy')
  // A 5 MB tmpfs in a mount namespace of the child's own (no root needed): two checkpoints fit.
  const r = spawnSync('unshare', ['--map-root-user', '--mount', 'sh', '-c', `mount -t tmpfs -o size=5m tmpfs "$0" && exec "$1" "$2" disk-full "$0" "$3"`,
    dir, process.execPath, fixture('checkpoint-faults.cjs'), roomy], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const f = JSON.parse(r.stdout.trim())
  t.log(f.error.message)
  t.is(f.error.code, 'ERR_BYOL_FILE')
  t.regex(f.error.message, /step-\d{8}: the checkpoint could not be written \(.*No space left on device.*\); the checkpoints before it are kept/)
  t.true(f.checkpoints.length >= 1)
  t.deepEqual(f.whole, f.checkpoints, 'every checkpoint left loads')
  t.deepEqual(f.others, [], 'no temporary folder left behind')
  t.is(f.resumedTo, f.last + 2, 'a new run resumes from the newest one')
})

test.serial('a checkpoint folder without write permission fails before the first step, naming it', (t) => {
  const dir = tmpdir('read-only')
  fs.chmodSync(dir, 0o555)
  // root ignores permissions unless it drops the capabilities that let it.
  const asUser = process.getuid?.() === 0 ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search'] : []
  const command = [...asUser, process.execPath, fixture('checkpoint-faults.cjs'), 'read-only', dir]
  const r = spawnSync(command[0], command.slice(1), { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const f = JSON.parse(r.stdout.trim())
  t.is(f.error.code, 'ERR_BYOL_FILE')
  t.is(f.error.path, dir)
  t.regex(f.error.message, /checkpointDir is not writable: Permission denied/)
  t.is(f.globalStep, 0)
  t.deepEqual(f.files, [])
})

test.serial('a checkpoint folder deleted during the run is made again, with a warning', async (t) => {
  const dir = path.join(tmpdir('deleted'), 'ckpt')
  const events: TrainingEvent[] = []
  const result = await new Trainer({ maxSteps: 6, checkpointDir: dir, checkpointEveryNSteps: 1, logEveryNSteps: 1 }).fit(tiny(), randomLoader(), {
    onProgress: (e) => {
      events.push(e)
      if (e.kind === 'checkpoint' && e.step === 2) {
        // Moved away in one step, then deleted: training goes on while this
        // runs, and a recursive delete of the folder itself races with the
        // next checkpoint being written into it (ENOTEMPTY).
        const gone = `${dir}.gone`
        fs.renameSync(dir, gone)
        fs.rmSync(gone, { recursive: true, force: true })
      }
    },
  })
  t.is(result.globalStep, 6)
  const warnings = events.flatMap((e) => (e.kind === 'warning' ? [e.message] : []))
  t.true(warnings.some((w) => w.includes(`the checkpoint folder ${dir} was removed during the run; it is made again`)), warnings.join('\n'))
  t.true(fs.existsSync(path.join(dir, 'step-00000006', 'model.safetensors')))
})

// --- Bad input wherever data flows ---------------------------------------------------

const brokenFile = () => path.join(withBroken, 'b', 'broken.png')

test.serial('Trainer.fit reports an unreadable image once, with its path and why', async (t) => {
  // 25 files in batches of 5: every epoch reads every file.
  const loader = new DataLoader(new ImageFolder(withBroken), { batchSize: 5, imageSize: 32, numWorkers: 1 })
  const warnings: string[] = []
  const result = await new Trainer({ maxEpochs: 2 }).fit(tiny(), loader, { onProgress: (e) => e.kind === 'warning' && warnings.push(e.message) })
  t.is(warnings.length, 1, 'once over two epochs')
  t.true(warnings[0].startsWith(`skipped an unreadable image: ${brokenFile()} (`), warnings[0])
  t.deepEqual(result.warnings, warnings)
})

test.serial('model.embed leaves out an unreadable image and says which', async (t) => {
  const loader = new DataLoader(new ImageFolder(withBroken), { batchSize: 8, imageSize: 32, numWorkers: 1, shuffle: false })
  const e = await tiny().embed(loader)
  t.deepEqual(e.shape, [24, 64])
  t.is(e.skipped.length, 1)
  t.true(e.skipped[0].startsWith(`${brokenFile()} (`))
})

test.serial('the CLI warns of an unreadable image once and does not count it among the training images', async (t) => {
  const out = path.join(tmpdir('cli-broken'), 'run')
  // One whole epoch of the 20 training files (the broken one among them under seed 0) in batches of 4.
  const args = [...small, '--max-steps', '5', '--batch-size', '4', '--out', out]
  args[1] = withBroken
  const r = await train(args)
  t.is(r.code, 0)
  t.is(r.stdout.split(`warning: skipped an unreadable image: ${brokenFile()}`).length - 1, 1)
  t.regex(r.stdout, /20 image files for training/)
  t.regex(r.stdout, /1 image\(s\) could not be read and were left out of training/)
  t.regex(fs.readFileSync(path.join(out, 'report.html'), 'utf8'), /training images.*19 \(1 could not be read\)/s)
})

test.serial("trainer.json's optimizer_steps counts the steps of every optimiser", async (t) => {
  for (const name of ['SGD', 'LARS', 'AdamW'] as const) {
    const dir = tmpdir(`steps-${name}`)
    await new Trainer({ maxSteps: 3, checkpointDir: dir, optimizer: { name } }).fit(tiny(), randomLoader())
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'step-00000003', 'trainer.json'), 'utf8'))
    t.is(state.optimizer_steps, 3, name)
  }
})
