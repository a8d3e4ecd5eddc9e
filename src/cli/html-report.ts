/**
 * The HTML report of a run: one self-contained file (inline SVG and PNG, no
 * scripts, nothing fetched when it is opened) with the run's summary and
 * settings, a grid of augmented view pairs, and the loss, learning-rate,
 * momentum, collapse-monitor and kNN-accuracy curves, all read from the
 * metrics JSONL.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { scaleLinear } from 'd3-scale'

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

/** A series of a chart: a line through points, or a horizontal reference line at `level`. */
export interface Series {
  name: string
  color: string
  points?: Point[]
  level?: number
}

/**
 * A line chart as an SVG element. Both axes are d3-scale linear scales made
 * "nice" (round ends), with its tick values and formats: round numbers, and
 * as many digits as tell neighbouring ticks apart. `integerX`: only whole
 * numbers on the x axis (steps, epochs). `yDomain`: a fixed range (accuracy: 0 to 1).
 */
export function lineChart(title: string, xLabel: string, series: Series[], options: { integerX?: boolean; yDomain?: [number, number] } = {}): string {
  const integerX = options.integerX ?? true
  const W = 560
  const H = 260
  const m = { l: 48, r: 16, t: 28, b: 40 }
  const finite = ([x, y]: Point) => Number.isFinite(x) && Number.isFinite(y)
  const all = series.flatMap((s) => (s.points ?? []).filter(finite))
  if (all.length === 0) return `<figure><figcaption>${escape(title)}</figcaption><p class="empty">no data</p></figure>`
  const xs = all.map((p) => p[0])
  const ys = all.map((p) => p[1]).concat(series.flatMap((s) => (s.level !== undefined && Number.isFinite(s.level) ? [s.level] : [])))
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)]
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1]
  if (options.yDomain) [y0, y1] = [Math.min(y0, options.yDomain[0]), Math.max(y1, options.yDomain[1])]
  if (y0 === y1) [y0, y1] = [y0 - 0.5 * (Math.abs(y0) || 1), y1 + 0.5 * (Math.abs(y1) || 1)]
  const sy = scaleLinear().domain([y0, y1]).nice(5).range([H - m.b, m.t])
  const yTicks = sy.ticks(5)
  const yFormat = sy.tickFormat(5)
  // Room for the longest y label: a τ close to 1 needs many digits to tell its ticks apart.
  m.l = Math.max(m.l, 12 + 6.5 * Math.max(...yTicks.map((v) => yFormat(v).length)))
  const sx = scaleLinear().domain([x0, x1]).nice(6).range([m.l, W - m.r])
  let xTicks = sx.ticks(6)
  if (integerX) xTicks = xTicks.filter(Number.isInteger)
  const xFormat = sx.tickFormat(6, integerX ? 'd' : undefined)
  const grid = yTicks
    .map((v) => `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(v)}" y2="${sy(v)}" class="grid"/><text x="${m.l - 6}" y="${sy(v) + 4}" text-anchor="end">${yFormat(v)}</text>`)
    .join('')
  const xt = xTicks.map((v) => `<text x="${sx(v)}" y="${H - m.b + 16}" text-anchor="middle">${xFormat(v)}</text>`).join('')
  const lines = series
    .map((s) => {
      if (s.level !== undefined) {
        return Number.isFinite(s.level) ? `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(s.level)}" y2="${sy(s.level)}" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="6 4"/>` : ''
      }
      const pts = (s.points ?? []).filter(finite)
      const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('')
      const dots = pts.length <= 30 ? pts.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('') : ''
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>${dots}`
    })
    .join('')
  // The swatch is a shape: the stylesheet colours every text grey.
  const legend = series
    .map((s, i) => {
      const x = m.l + 8 + i * 170
      const swatch = s.level !== undefined ? `<line x1="${x}" x2="${x + 14}" y1="${m.t - 14}" y2="${m.t - 14}" stroke="${s.color}" stroke-width="2" stroke-dasharray="4 2"/>` : `<rect x="${x}" y="${m.t - 19}" width="10" height="10" fill="${s.color}"/>`
      return `${swatch}<text x="${x + 18}" y="${m.t - 10}">${escape(s.name)}</text>`
    })
    .join('')
  return `<figure><figcaption>${escape(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escape(title)}">${grid}${xt}<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">${escape(xLabel)}</text>${lines}${legend}</svg></figure>`
}

function table(rows: Record<string, unknown>): string {
  return `<table>${Object.entries(rows)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(typeof v === 'object' ? JSON.stringify(v) : String(v))}</td></tr>`)
    .join('')}</table>`
}

/** `1h05m`, `3m07s`; `?` when not known. */
export const duration = (s: number): string =>
  Number.isFinite(s)
    ? s >= 3600
      ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
      : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
    : '?'

/**
 * The whole report, from the records alone, so that training and
 * `byol-torch report` draw the same file: the newest `summary` record's rows
 * (training time summed over every session, resumed ones included), the
 * `settings` record's options, the view pairs, then the charts.
 */
export function renderReport(records: MetricsRecord[], title = 'byol-torch training report'): string {
  const steps = records.filter((r) => r.kind === 'step')
  const epochs = records.filter((r) => r.kind === 'epoch')
  const knn = records.filter((r) => r.kind === 'knn')
  const sessions = records.filter((r) => r.kind === 'session')
  const summary = records.filter((r) => r.kind === 'summary').pop()
  const settings = records.filter((r) => r.kind === 'settings').pop()
  const views = records.filter((r) => r.kind === 'views').pop()
  const pick = (rs: MetricsRecord[], x: string, y: string): Point[] => rs.map((r) => [Number(r[x]), Number(r[y])])
  const baseline = knn.find((r) => r.epoch === undefined || r.epoch === null)
  const trained = knn.filter((r) => r !== baseline && r.epoch !== undefined && r.epoch !== null)
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
    lineChart('kNN accuracy', 'epochs trained', [
      { name: 'BYOL backbone', points: trained.map((r) => [Number(r.epoch) + 1, Number(r.accuracy)]), color: '#ff7f0e' },
      ...(baseline ? [{ name: 'random initialisation', level: Number(baseline.accuracy), color: '#7f7f7f' }] : []),
    ], { yDomain: [0, 1] }),
  ]
  const rows: Record<string, unknown> = { ...((summary?.rows as Record<string, unknown>) ?? {}) }
  // A resumed session does not evaluate the random initialisation again: its first session did.
  if (baseline && !Object.keys(rows).some((k) => k.includes('random init'))) {
    rows['kNN accuracy, random initialisation'] = `${(100 * Number(baseline.accuracy)).toFixed(1)}%`
  }
  if (sessions.length) {
    rows['training time'] = duration(sessions.reduce((sum, r) => sum + Number(r.seconds ?? 0), 0)) + (sessions.length > 1 ? ` (${sessions.length} sessions)` : '')
  }
  const thumbnails =
    typeof views?.png === 'string'
      ? `<figure><figcaption>augmented view pairs (each column: view 1 above view 2)</figcaption><img alt="augmented view pairs" src="data:image/png;base64,${views.png}"/></figure>`
      : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0 16px 16px 0;vertical-align:top;display:inline-table}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f6f6f6}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:8px}figcaption{font-weight:600}
img{image-rendering:pixelated;width:100%;min-width:420px}
details{margin:0 0 16px}summary{cursor:pointer;font-weight:600;margin-bottom:8px}
svg text{font-size:11px;fill:#444}.grid{stroke:#eee}.empty{color:#888}h2{font-size:16px}
</style></head><body>
<h1>${escape(title)}</h1>
<div>${table(rows)}</div>
${settings ? `<details><summary>every setting (${Object.keys((settings.options as Record<string, unknown>) ?? {}).length})</summary>${table((settings.options as Record<string, unknown>) ?? {})}</details>` : ''}
<div class="charts">${thumbnails}${charts.join('\n')}</div>
</body></html>
`
}

/** Writes `text` to `file` through a temporary name and a rename. */
export function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}
