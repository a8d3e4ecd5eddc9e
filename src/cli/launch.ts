/**
 * `--nproc-per-node N`: what `torchrun --nproc-per-node N` does on one host.
 * Starts N copies of this command with a launcher's environment (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), writes
 * their output with the rank in front, passes stop signals on, and when one
 * fails stops the others and says which one it was; then, as torchrun's
 * `--max-restarts`, starts them all again, up to `maxRestarts` times, with
 * TORCHELASTIC_RESTART_COUNT counting, so that they go on from the last
 * checkpoint (`--resume auto` is the default under a launcher).
 */
import type { ChildProcess } from 'node:child_process'
import * as os from 'node:os'
import { describeExit, freePort, spawnRank } from '../launch'

/** How long the other ranks get to stop after SIGTERM before SIGKILL. */
const GRACE_MS = 15_000

/**
 * Runs `args` (this program's arguments without `--nproc-per-node`) in
 * `nproc` processes; resolves to the exit code for this process: 0 when all
 * succeeded, else the first failing rank's code (1 when a signal ended it).
 */
export async function launch(nproc: number, args: string[], signals: NodeJS.Signals[], maxRestarts = 0): Promise<number> {
  let stopping = false
  const stop = () => (stopping = true)
  for (const s of signals) process.once(s, stop)
  try {
    for (let attempt = 0; ; attempt++) {
      const code = await attemptOnce(nproc, args, signals, attempt)
      if (code === 0 || stopping || attempt >= maxRestarts) return code
      console.error(`byol-torch: restarting all ${nproc} processes (restart ${attempt + 1} of ${maxRestarts}); they go on from the last checkpoint`)
    }
  } finally {
    for (const s of signals) process.removeListener(s, stop)
  }
}

async function attemptOnce(nproc: number, args: string[], signals: NodeJS.Signals[], attempt: number): Promise<number> {
  // A new rendezvous for each attempt, as torchrun's agent keeps its restarts apart.
  const port = process.env.MASTER_PORT && attempt === 0 ? process.env.MASTER_PORT : String(await freePort())
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
    const child = spawnRank(rank, nproc, addr, port, args, { TORCHELASTIC_RESTART_COUNT: String(attempt) })
    children.push(child)
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code: code || 1 }
          console.error(`byol-torch: rank ${rank} ${describeExit(code, signal)}; stopping the other ${nproc - 1} process(es)`)
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
