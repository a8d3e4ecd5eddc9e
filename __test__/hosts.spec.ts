/**
 * Data-parallel training across hosts: two network namespaces made for the
 * test, joined by a veth pair with addresses that exist only inside them,
 * stand for two machines. A 2-host x 1-process job (through the launcher's
 * plain variables, and through torchrun --nnodes 2) must train as a 1-host
 * x 2-process job does; and when the link between the hosts is cut, every
 * rank must leave within its collective timeout plus 10 s, saying which
 * operation failed and which peer it lost.
 */
import test from 'ava'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { loadSafetensors, Tensor } from '../src/index'
import { maxDiff, python, root, tmpdir, writeDdpImages } from './helpers'

const dir = tmpdir('hosts')
const images = path.join(dir, 'images.safetensors')
const worker = path.join(__dirname, 'fixtures', 'ddp-worker.cjs')
// Names and a subnet of this run's own, so that parallel runs do not meet.
const tag = String(process.pid % 10000)
const subnet = `10.251.${process.pid % 250}`
const hosts = [0, 1].map((i) => ({ ns: `byolh${tag}n${i}`, dev: `byolh${tag}v${i}`, addr: `${subnet}.${i + 1}` }))
const PORT = 29700 + (process.pid % 200)

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
}

function makeHosts(): void {
  removeHosts()
  for (const h of hosts) ip('netns', 'add', h.ns)
  ip('link', 'add', hosts[0].dev, 'type', 'veth', 'peer', 'name', hosts[1].dev)
  for (const h of hosts) {
    ip('link', 'set', h.dev, 'netns', h.ns)
    ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.dev)
    ip('-n', h.ns, 'link', 'set', h.dev, 'up')
    ip('-n', h.ns, 'link', 'set', 'lo', 'up')
  }
}

function removeHosts(): void {
  for (const h of hosts) spawnSync('ip', ['netns', 'del', h.ns])
}

test.before(() => {
  writeDdpImages(images)
  makeHosts()
})

test.after.always(removeHosts)

interface Run {
  child: ChildProcess
  stdout: string
  stderr: string
  exit: Promise<{ code: number | null; at: number }>
}

/** `cmd` inside host `i`'s namespace, Gloo on its veth (hostname lookup would give loopback). */
function onHost(i: number, cmd: string[], env: Record<string, string>): Run {
  const vars = Object.entries({ GLOO_SOCKET_IFNAME: hosts[i].dev, ...env }).map(([k, v]) => `${k}=${v}`)
  const child = spawn('ip', ['netns', 'exec', hosts[i].ns, 'env', ...vars, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] })
  const r: Run = { child, stdout: '', stderr: '', exit: Promise.resolve({ code: 0, at: 0 }) }
  child.stdout?.on('data', (d) => (r.stdout += d))
  child.stderr?.on('data', (d) => (r.stderr += d))
  r.exit = new Promise((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })))
  return r
}

const plainEnv = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1', MASTER_ADDR: hosts[0].addr, MASTER_PORT: String(PORT) })
const job = (extra: object = {}) => JSON.stringify({ batch: 4, steps: 5, lr: 1e-3, ...extra })

function result(r: Run) {
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null')
}

/** The worst difference of the tensors of `a` from `b`, relative to each one's scale. */
function worst(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  let w = 0
  for (const [k, v] of Object.entries(b)) {
    if (k.endsWith('num_batches_tracked')) continue
    const { diff, scale } = maxDiff(a[k], v)
    w = Math.max(w, diff / Math.max(scale, 1e-2))
  }
  return w
}

/** The 1-host x 2-process job the 2-host ones are compared with. */
async function oneHost(out: string): Promise<void> {
  fs.mkdirSync(out, { recursive: true })
  const ranks = [0, 1].map((rank) =>
    spawn(process.execPath, [worker, path.join(root, 'dist'), images, out, job()], {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(PORT + 1) },
      stdio: 'ignore',
    }),
  )
  const codes = await Promise.all(ranks.map((c) => new Promise<number | null>((resolve) => c.on('exit', resolve))))
  if (codes.some((c) => c !== 0)) throw new Error(`the 1-host job failed: ${codes.join(', ')}`)
}

test.serial('2 hosts x 1 process through RANK, WORLD_SIZE and MASTER_ADDR train as 1 host x 2 processes', async (t) => {
  await oneHost(path.join(dir, 'one-host'))
  const out = path.join(dir, 'plain')
  fs.mkdirSync(out, { recursive: true })
  const runs = [0, 1].map((rank) => onHost(rank, [process.execPath, worker, path.join(root, 'dist'), images, out, job()], plainEnv(rank)))
  const exits = await Promise.all(runs.map((r) => r.exit))
  t.deepEqual(exits.map((e) => e.code), [0, 0], runs.map((r) => r.stderr).join('\n'))
  t.deepEqual(runs.map((r) => [result(r).rank, result(r).worldSize]), [[0, 2], [1, 2]])
  const w = worst(loadSafetensors(path.join(out, 'final.safetensors')), loadSafetensors(path.join(dir, 'one-host', 'final.safetensors')))
  t.log(`worst difference from the 1-host job: ${w}`)
  t.is(w, 0)
})

test.serial('2 hosts x 1 process through torchrun --nnodes 2 train as 1 host x 2 processes', async (t) => {
  const out = path.join(dir, 'torchrun')
  fs.mkdirSync(out, { recursive: true })
  const runs = [0, 1].map((node) =>
    onHost(
      node,
      [python, '-m', 'torch.distributed.run', '--nnodes', '2', '--node-rank', String(node), '--nproc-per-node', '1', '--master-addr', hosts[0].addr, '--master-port', String(PORT + 2),
        '--no-python', process.execPath, worker, path.join(root, 'dist'), images, out, job()],
      {},
    ),
  )
  const exits = await Promise.all(runs.map((r) => r.exit))
  t.deepEqual(exits.map((e) => e.code), [0, 0], runs.map((r) => r.stderr.slice(-2000)).join('\n'))
  const w = worst(loadSafetensors(path.join(out, 'final.safetensors')), loadSafetensors(path.join(dir, 'one-host', 'final.safetensors')))
  t.log(`worst difference from the 1-host job: ${w}`)
  t.is(w, 0)
})

test.serial('a link cut between the hosts mid-run makes every rank exit within the collective timeout + 10 s, naming the operation and the peer', async (t) => {
  const timeout = 10
  const out = path.join(dir, 'cut')
  fs.mkdirSync(out, { recursive: true })
  const long = job({ steps: 100000, progress: true, trainer: { collectiveTimeout: timeout } })
  const runs = [0, 1].map((rank) => onHost(rank, [process.execPath, worker, path.join(root, 'dist'), images, out, long], plainEnv(rank)))
  await new Promise<void>((resolve, reject) => {
    const check = () => /step 3\n/.test(runs[0].stdout) && resolve()
    runs[0].child.stdout?.on('data', check)
    runs[0].child.on('exit', () => reject(new Error(`rank 0 exited before the cut: ${runs[0].stderr}`)))
  })
  const cut = Date.now()
  ip('-n', hosts[1].ns, 'link', 'set', hosts[1].dev, 'down')
  const limit = (timeout + 10) * 1000
  const kill = setTimeout(() => runs.forEach((r) => r.child.kill('SIGKILL')), limit + 20_000)
  const exits = await Promise.all(runs.map((r) => r.exit))
  clearTimeout(kill)
  ip('-n', hosts[1].ns, 'link', 'set', hosts[1].dev, 'up')
  exits.forEach((e, rank) => {
    const seconds = (e.at - cut) / 1000
    const said = runs[rank].stderr.trim().split('\n').pop() ?? ''
    t.log(`rank ${rank} exited ${seconds.toFixed(1)} s after the cut: ${said}`)
    t.is(e.code, 1, `rank ${rank}`)
    t.true(seconds <= timeout + 10, `rank ${rank} took ${seconds} s`)
    t.regex(said, new RegExp(`^ERR_BYOL_DISTRIBUTED rank ${rank}: (all-reduce|broadcast|barrier) failed: `))
  })
  t.regex(runs[0].stderr, /lost rank 1/)
  t.regex(runs[1].stderr, /host of rank 0, which serves the rendezvous store, no longer answers/)
})
