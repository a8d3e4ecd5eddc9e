/**
 * Flag parsers and the flags every data-reading command shares. Nothing here
 * loads the addon, so that `--help` and `doctor` work without libtorch.
 */
import { Command, InvalidArgumentError } from '@commander-js/extra-typings'
import * as os from 'node:os'
import type { DeviceName } from '../tensor'

export const int = (min: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${v}'`)
  return n
}

export const num = (min: number, exclusive = false) => (v: string): number => {
  const n = Number(v)
  if (!Number.isFinite(n) || (exclusive ? n <= min : n < min)) throw new InvalidArgumentError(`expected a number ${exclusive ? '>' : '>='} ${min}, got '${v}'`)
  return n
}

export const fraction = (v: string): number => {
  const n = Number(v)
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`expected a number between 0 and 1, got '${v}'`)
  return n
}

/** The loggers `train` writes besides metrics.jsonl. */
export type Logger = 'tensorboard'

export function loggers(v: string): Logger[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s && s !== 'jsonl')
  if (names.length === 1 && names[0] === 'none') return []
  for (const n of names) if (n !== 'tensorboard') throw new InvalidArgumentError(`expected a list of loggers (jsonl, tensorboard) or none, got '${n}'`)
  return names as Logger[]
}

export function device(v: string): DeviceName {
  if (v === 'cpu' || v === 'cuda' || v === 'auto') return v
  const m = /^cuda:(\d+)$/.exec(v)
  if (m) return `cuda:${Number(m[1])}`
  throw new InvalidArgumentError(`expected cpu, cuda, cuda:N or auto, got '${v}'`)
}

export function pair(v: string): [number, number] {
  const parts = v.split(',').map(Number)
  if (parts.length !== 2 || parts.some((p) => !Number.isFinite(p))) throw new InvalidArgumentError(`expected two numbers 'a,b', got '${v}'`)
  return [parts[0], parts[1]]
}

/** An optimiser by its PyTorch class name, in any case (`sgd`, `LARS`, `adamw`). */
export function optimizerName(v: string): 'SGD' | 'LARS' | 'AdamW' {
  const names = { sgd: 'SGD', lars: 'LARS', adamw: 'AdamW' } as const
  const name = names[v.toLowerCase() as keyof typeof names]
  if (!name) throw new InvalidArgumentError(`expected sgd, lars or adamw, got '${v}'`)
  return name
}

/** A comma-separated list of signal names, e.g. `SIGTERM,SIGUSR1`. */
export function signals(v: string): NodeJS.Signals[] {
  const names = v.split(',').map((s) => s.trim().toUpperCase())
  const known = os.constants.signals as Record<string, number>
  const bad = names.filter((n) => known[n] === undefined || n === 'SIGKILL' || n === 'SIGSTOP')
  if (bad.length) throw new InvalidArgumentError(`expected signal names such as SIGTERM,SIGUSR1 (not SIGKILL or SIGSTOP), got '${bad.join(',')}'`)
  return names.filter((n): n is NodeJS.Signals => n in known)
}

/** Data worker threads by default: the cores but one (for libtorch), 1 to 3. */
export const defaultWorkers = Math.max(1, Math.min(4, os.availableParallelism?.() ?? 2) - 1)

/** What `withDataOptions` parses. */
export interface DataFlags {
  data: string
  imageSize?: number
  valFraction: number
  seed: number
  workers: number
  threads?: number
}

/** A command that reads a dataset, with the flags all such commands share. */
export function dataCommand(name: string, description: string) {
  return new Command(name)
    .description(description)
    .option('--data <mnist|folder>', "'mnist' (built in) or an image folder (class sub-folders); eval and embed: the model's own by default", 'mnist')
    .option('--image-size <n>', 'side images are resized to (default 28 for MNIST, 224 otherwise)', int(8))
    .option('--val-fraction <f>', 'share held out for kNN evaluation', fraction, 0.2)
    .option('--seed <n>', 'seed of the split, order, augmentations and weights', int(0), 0)
    .option('--workers <n>', 'data worker threads', int(1), defaultWorkers)
    .option('--threads <n>', 'libtorch threads (default: the cores the data workers leave free)', int(1))
}

/** A command that reads a trained model and a dataset: `--model`, `--device` and the data flags. */
export function modelCommand(name: string, description: string) {
  return dataCommand(name, description)
    .requiredOption('--model <file>', 'a model.safetensors written by train (or BYOL.save)')
    .option('--device <d>', 'cpu | cuda | cuda:N | auto', device, 'cpu' as const)
}
