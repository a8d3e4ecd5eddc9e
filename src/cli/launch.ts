/**
 * `--nproc-per-node N`: what `torchrun --nproc-per-node N` does on one host.
 * Starts N copies of this command with a launcher's environment (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), writes
 * their output with the rank in front, passes stop signals on, and when one
 * fails stops the others and says which one it was.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import * as net from 'node:net'
import * as os from 'node:os'
import * as readline from 'node:readline'

/** How long the other ranks get to stop after SIGTERM before SIGKILL. */
const GRACE_MS = 15_000

/** A TCP port free on this host now, for rank 0's rendezvous. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function prefixLines(stream: NodeJS.ReadableStream, out: NodeJS.WritableStream, prefix: string): void {
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`))
}

function describe(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`
}

/**
 * Runs `args` (this program's arguments without `--nproc-per-node`) in
 * `nproc` processes; resolves to the exit code for this process: 0 when all
 * succeeded, else the first failing rank's code (1 when a signal ended it).
 */
export async function launch(nproc: number, args: string[], signals: NodeJS.Signals[]): Promise<number> {
  const port = process.env.MASTER_PORT ?? String(await freePort())
  const addr = process.env.MASTER_ADDR ?? '127.0.0.1'
  const children: ChildProcess[] = []
  let failed: { rank: number; code: number } | undefined
  const stopOthers = (except: number) => {
    for (const [rank, child] of children.entries()) {
      if (rank === except || child.exitCode !== null || child.signalCode !== null) continue
      child.kill('SIGTERM')
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), GRACE_MS).unref()
    }
  }
  const forward = (signal: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null) child.kill(signal)
  }
  for (const s of signals) process.on(s, forward)
  const exits = Array.from({ length: nproc }, (_, rank) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(nproc),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(nproc),
        MASTER_ADDR: addr,
        MASTER_PORT: port,
      },
    })
    children.push(child)
    if (child.stdout) prefixLines(child.stdout, process.stdout, `[rank ${rank}] `)
    if (child.stderr) prefixLines(child.stderr, process.stderr, `[rank ${rank}] `)
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code: code || 1 }
          console.error(`byol-torch: rank ${rank} ${describe(code, signal)}; stopping the other ${nproc - 1} process(es)`)
          stopOthers(rank)
        }
        resolve()
      })
    })
  })
  try {
    await Promise.all(exits)
  } finally {
    for (const s of signals) process.removeListener(s, forward)
  }
  return failed?.code ?? 0
}

/** The libtorch threads each of this host's processes gets by default. */
export function coresPerProcess(): number {
  const local = Number(process.env.LOCAL_WORLD_SIZE ?? 1)
  return Math.max(1, Math.floor((os.availableParallelism?.() ?? 2) / Math.max(1, local)))
}
