/**
 * `byol-torch doctor`: what a bug report needs, and whether everything needed
 * is there. Loads the addon itself, inside a try, so that it can also say why
 * it does not load.
 */
import { Command } from '@commander-js/extra-typings'
import * as fs from 'node:fs'
import * as os from 'node:os'

export interface Diagnosis {
  package: string
  node: string
  platform: string
  glibc: string | null
  libtorch: { libDir: string; source: string; version: string | null } | null
  addon: { path: string; version: string } | null
  cuda: { available: boolean; devices: string[] } | null
  threads: { libtorch: number; cores: number } | null
  cpu: { model: string | null; capability: string | null; avx512Bf16: boolean; amxBf16: boolean }
  /** Why byol-torch cannot train here; empty when it can. */
  problems: string[]
}

function cpuInfo(): { model: string | null; flags: Set<string> } {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8')
    const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? null
    const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').split(/\s+/))
    return { model, flags }
  } catch {
    return { model: null, flags: new Set() }
  }
}

export async function diagnose(): Promise<Diagnosis> {
  const { VERSION, findLibtorch } = await import('../locate')
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  const { model, flags } = cpuInfo()
  const d: Diagnosis = {
    package: VERSION,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    glibc: report?.header?.glibcVersionRuntime ?? null,
    libtorch: null,
    addon: null,
    cuda: null,
    threads: null,
    cpu: { model, capability: null, avx512Bf16: flags.has('avx512_bf16'), amxBf16: flags.has('amx_bf16') },
    problems: [],
  }
  try {
    d.libtorch = findLibtorch()
  } catch (e) {
    d.problems.push(e instanceof Error ? e.message : String(e))
    return d
  }
  try {
    const { native, addonPath } = await import('../native')
    d.addon = { path: addonPath, version: native.version() }
    if (d.addon.version !== VERSION) d.problems.push(`the addon is version ${d.addon.version} but the package is ${VERSION}: reinstall byol-torch`)
    d.cuda = { available: native.cudaIsAvailable(), devices: native.cudaDeviceNames() }
    if (d.cuda.available && d.cuda.devices.length === 0) d.cuda.devices = Array.from({ length: native.cudaDeviceCount() }, () => 'unnamed device')
    d.threads = { libtorch: native.getNumThreads(), cores: os.availableParallelism?.() ?? os.cpus().length }
    d.cpu.capability = native.cpuCapability() ?? null
  } catch (e) {
    d.problems.push(e instanceof Error ? e.message : String(e))
  }
  return d
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no')

export function describe(d: Diagnosis): string {
  const sources: Record<string, string> = { BYOL_TORCH_LIBTORCH: 'BYOL_TORCH_LIBTORCH', cache: 'the per-user cache', python3: "the python3 on PATH's torch" }
  const rows: [string, string][] = [
    ['node', `${d.node} (${d.platform}, ${d.glibc ? `glibc ${d.glibc}` : 'no glibc'})`],
    ['addon', d.addon ? `${d.addon.version}  ${d.addon.path}` : 'not loaded'],
    ['libtorch', d.libtorch ? `PyTorch ${d.libtorch.version ?? '(version unknown)'} from ${sources[d.libtorch.source] ?? d.libtorch.source}: ${d.libtorch.libDir}` : 'not found'],
    [
      'CUDA',
      d.cuda === null
        ? 'unknown (the addon did not load)'
        : d.cuda.available
          ? `${d.cuda.devices.length} device(s): ${d.cuda.devices.map((n, i) => `cuda:${i} ${n}`).join(', ')}`
          : 'not available (no CUDA device or driver)',
    ],
    ['threads', d.threads ? `libtorch uses ${d.threads.libtorch} intra-op thread(s) on ${d.threads.cores} core(s)` : 'unknown'],
    ['CPU', `${d.cpu.model ?? 'unknown model'}; libtorch kernels: ${d.cpu.capability ?? 'unknown'}; AVX-512 BF16: ${yesNo(d.cpu.avx512Bf16)}; AMX BF16: ${yesNo(d.cpu.amxBf16)}`],
  ]
  const lines = [`byol-torch ${d.package}`, ...rows.map(([k, v]) => `  ${k.padEnd(9)} ${v}`)]
  if (d.problems.length) lines.push('', 'problems:', ...d.problems.map((p) => `  - ${p.replace(/\n/g, '\n    ')}`))
  else lines.push('', 'everything byol-torch needs is here')
  return lines.join('\n')
}

export function doctorCommand() {
  return new Command('doctor')
    .description('print versions, where libtorch was found, CUDA devices and CPU capabilities for a bug report; exit 1 when something is missing')
    .option('--json', 'print one JSON object instead')
    .action(async (f) => {
      const d = await diagnose()
      console.log(f.json ? JSON.stringify(d, null, 2) : describe(d))
      if (d.problems.length) process.exitCode = 1
    })
}
