// npm run bench: every CPU benchmark of the project, each side by side with
// PyTorch in the same run (same libtorch, same threads, alternating rounds),
// printed as one Markdown table with the peak RSS of each side and the machine
// it ran on. Each benchmark is one of the bench:* scripts, run with --json.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

function run(script, args) {
  const out = execFileSync(process.execPath, [join(here, script), ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = out.trim().split('\n')
  for (const line of lines.slice(0, -1)) process.stderr.write(`  ${line}\n`)
  return JSON.parse(lines[lines.length - 1])
}

function cpuModel() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'))
    if (line) return line.split(':')[1].trim()
  } catch {
    // Not Linux: os.cpus() has the model too.
  }
  return cpus()[0]?.model ?? 'unknown CPU'
}

// [name, script, arguments, the goal for the ratio]
const benchmarks = [
  ['`bench:step --batch 4 --size 16 --threads 1`', 'step.mjs', ['--batch', '4', '--size', '16', '--threads', '1', '--rounds', '3'], 1.3],
  ['`bench:step --batch 8 --size 32`', 'step.mjs', ['--batch', '8', '--size', '32', '--rounds', '3'], 1.2],
  // Best of three rounds for the two long ones too: on a shared machine one
  // slow round of either side moves a best-of-two ratio by 10%.
  ['`bench:step` (batch 32, 64×64)', 'step.mjs', ['--rounds', '3'], 1.15],
  ['`bench:train` (whole loop)', 'train.mjs', ['--rounds', '3'], 1.3],
]
const rows = []
for (const [name, script, args, goal] of benchmarks) {
  process.stderr.write(`${name}\n`)
  rows.push({ name, goal, ...run(script, args) })
}
process.stderr.write('`bench:data`\n')
const data = run('data.mjs', [])
rows.push({ name: '`bench:data`, two-view pipeline, 2 workers', goal: 2.0, ...data.pipeline })
rows.push({ name: '`bench:data`, augmentation alone', goal: 2.5, ...data.augment })

const step = rows[2]
const cores = availableParallelism()
console.log(`\n${cpuModel()}, ${cores} core${cores === 1 ? '' : 's'}; byol-torch vs PyTorch 2.11 eager on the same libtorch, best of each side's rounds\n`)
console.log('| benchmark | byol-torch | PyTorch | ratio | goal | peak RSS byol-torch | peak RSS PyTorch |')
console.log('|---|---|---|---|---|---|---|')
for (const r of rows) {
  const ratio = r.ours / r.torch
  const mark = ratio >= r.goal ? 'met' : 'not met'
  console.log(`| ${r.name} | ${r.ours.toFixed(2)} ${r.unit} | ${r.torch.toFixed(2)} ${r.unit} | **${ratio.toFixed(2)}×** | ≥ ${r.goal}× (${mark}) | ${r.ours_rss_mib.toFixed(0)} MiB | ${r.torch_rss_mib.toFixed(0)} MiB |`)
}
const rss = step.ours_rss_mib / step.torch_rss_mib
console.log(`| peak RSS of the step (batch 32, 64×64), vs the Python process | | | **${rss.toFixed(2)}×** | ≤ 0.75× (${rss <= 0.75 ? 'met' : 'not met'}) | | |`)
