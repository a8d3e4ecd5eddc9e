/**
 * `--nproc-per-node N`: what `torchrun --nproc-per-node N` does on one host.
 * Starts N copies of this command with a launcher's environment (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), writes
 * their output with the rank in front, passes stop signals on, and when one
 * fails stops the others and says which one it was.
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
    const child = spawnRank(rank, nproc, addr, port, args)
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
