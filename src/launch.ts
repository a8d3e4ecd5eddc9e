/**
 * Starting the processes of data-parallel training on this host, as
 * torchrun does: each gets a launcher's environment (RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and its output
 * comes back line by line with its rank in front.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import * as net from 'node:net'
import * as readline from 'node:readline'

/** A TCP port free on this host now, for rank 0's rendezvous. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))))
    })
  })
}

/** The variables of rank `rank` of `world` processes, all on this host. */
export function rankEnv(rank: number, world: number, addr: string, port: string): Record<string, string> {
  return { RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: addr, MASTER_PORT: port }
}

/** Runs this program again (`args` after the script) as rank `rank`, its output prefixed `[rank N] `. */
export function spawnRank(rank: number, world: number, addr: string, port: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...rankEnv(rank, world, addr, port), ...env },
  })
  const prefix = (stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream) => {
    if (stream) readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`[rank ${rank}] ${line}\n`))
  }
  prefix(child.stdout, process.stdout)
  prefix(child.stderr, process.stderr)
  return child
}

/** How a child ended, in words. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`
}
