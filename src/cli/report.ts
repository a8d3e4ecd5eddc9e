/** `byol-torch report`: redraws report.html from a run's metrics.jsonl. */
import { Command } from '@commander-js/extra-typings'
import * as path from 'node:path'
import { readMetrics, renderReport, writeAtomically } from './html-report'

export function reportCommand() {
  return new Command('report')
    .description('redraw report.html from a metrics.jsonl')
    .argument('<metrics>', 'metrics.jsonl of a run')
    .option('--out <file>', 'report to write (default: report.html beside the metrics)')
    .action((metrics, f) => {
      const out = f.out ?? path.join(path.dirname(metrics), 'report.html')
      writeAtomically(out, renderReport(readMetrics(metrics)))
      console.log(`wrote ${out}`)
    })
}
