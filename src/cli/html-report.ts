/**
 * The HTML report of a run: one self-contained file (inline SVG, no scripts,
 * nothing fetched when it is opened) with the loss, learning-rate, momentum,
 * collapse-monitor and kNN-accuracy curves read from the metrics JSONL.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/** One line of `metrics.jsonl`: a training event plus the wall-clock time. */
export interface MetricsRecord {
  kind: string
  step?: number
  epoch?: number
  time?: string
  [key: string]: unknown
}

/** Reads a metrics JSONL file; a torn last line (a killed run) is skipped. */
export function readMetrics(file: string): MetricsRecord[] {
  const out: MetricsRecord[] = []
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      out.push(JSON.parse(line) as MetricsRecord)
    } catch {
      // Only the line a killed process was writing can be torn.
    }
  }
  return out
}

type Point = [number, number]

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string)
}

function ticks(lo: number, hi: number, n = 4): number[] {
  if (hi === lo) return [lo]
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n)
}

function fmt(v: number): string {
  const a = Math.abs(v)
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1)
  return Number(v.toPrecision(4)).toString()
}

/** A line chart as an SVG element. */
export function lineChart(title: string, xLabel: string, series: { name: string; points: Point[]; color: string }[]): string {
  const W = 560
  const H = 260
  const m = { l: 64, r: 16, t: 28, b: 40 }
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  if (all.length === 0) return `<figure><figcaption>${escape(title)}</figcaption><p class="empty">no data</p></figure>`
  const xs = all.map((p) => p[0])
  const ys = all.map((p) => p[1])
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)]
  if (x0 === x1) x1 = x0 + 1
  if (y0 === y1) [y0, y1] = [y0 - 0.5 * (Math.abs(y0) || 1), y1 + 0.5 * (Math.abs(y1) || 1)]
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r)
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b)
  const grid = ticks(y0, y1)
    .map((v) => `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(v)}" y2="${sy(v)}" class="grid"/><text x="${m.l - 6}" y="${sy(v) + 4}" text-anchor="end">${fmt(v)}</text>`)
    .join('')
  const xt = ticks(x0, x1)
    .map((v) => `<text x="${sx(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(Math.round(v))}</text>`)
    .join('')
  const lines = series
    .map((s) => {
      const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('')
      const dots = pts.length <= 30 ? pts.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('') : ''
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>${dots}`
    })
    .join('')
  const legend = series
    .map((s, i) => `<text x="${m.l + 8 + i * 150}" y="${m.t - 10}" fill="${s.color}">&#9632; ${escape(s.name)}</text>`)
    .join('')
  return `<figure><figcaption>${escape(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escape(title)}">${grid}${xt}<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">${escape(xLabel)}</text>${lines}${legend}</svg></figure>`
}

/** The whole report. `summary` rows are shown as a table above the charts. */
export function renderReport(records: MetricsRecord[], summary: Record<string, string | number>, title = 'byol-torch training report'): string {
  const steps = records.filter((r) => r.kind === 'step')
  const epochs = records.filter((r) => r.kind === 'epoch')
  const knn = records.filter((r) => r.kind === 'knn')
  const pick = (rs: MetricsRecord[], x: string, y: string): Point[] => rs.map((r) => [Number(r[x]), Number(r[y])])
  const charts = [
    lineChart('train_loss', 'step', [
      { name: 'step loss', points: pick(steps, 'step', 'loss'), color: '#1f77b4' },
      { name: 'epoch mean', points: pick(epochs, 'step', 'loss'), color: '#d62728' },
    ]),
    lineChart('learning rate', 'step', [{ name: 'lr', points: pick(steps, 'step', 'learningRate'), color: '#2ca02c' }]),
    lineChart('EMA momentum τ', 'step', [{ name: 'τ', points: pick(steps, 'step', 'momentum'), color: '#9467bd' }]),
    lineChart('collapse monitor: std of l2-normalised projections', 'step', [
      { name: 'std', points: pick(steps, 'step', 'projectionStd'), color: '#8c564b' },
    ]),
    lineChart('kNN accuracy', 'epochs trained', [{ name: 'top-1', points: knn.map((r) => [r.epoch === undefined ? 0 : Number(r.epoch) + 1, Number(r.accuracy)]), color: '#ff7f0e' }]),
  ]
  const rows = Object.entries(summary)
    .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(String(v))}</td></tr>`)
    .join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin-bottom:16px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f6f6f6}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:8px}figcaption{font-weight:600}
svg text{font-size:11px;fill:#444}.grid{stroke:#eee}.empty{color:#888}
</style></head><body>
<h1>${escape(title)}</h1>
<table>${rows}</table>
<div class="charts">${charts.join('\n')}</div>
</body></html>
`
}

/** Writes `text` to `file` through a temporary name and a rename. */
export function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}
