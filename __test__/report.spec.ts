/**
 * The HTML report, drawn from metrics records alone: axes a reader can
 * read, the kNN baseline as a line, and the same file whoever draws it.
 */
import test from 'ava'
import { renderReport, type MetricsRecord } from '../src/cli/html-report'

/** A run of 2,500 steps whose τ barely moves: 0.99 to 0.99001. */
function records(): MetricsRecord[] {
  const out: MetricsRecord[] = []
  for (let step = 25; step <= 2500; step += 25) {
    out.push({ kind: 'step', step, loss: -0.9 + step / 1e4, learningRate: 0.05, momentum: 0.99 + (1e-5 * step) / 2500, projectionStd: 0.06 })
  }
  out.push({ kind: 'knn', step: 0, accuracy: 0.41 })
  for (let epoch = 0; epoch < 5; epoch++) out.push({ kind: 'knn', step: 500 * (epoch + 1), epoch, accuracy: 0.5 + epoch / 20 })
  out.push({ kind: 'session', seconds: 100 }, { kind: 'session', seconds: 50 })
  out.push({ kind: 'summary', rows: { data: 'mnist', backbone: 'resnet18, width 16, small-input stem' } })
  return out
}

/** Each chart's tick labels, y axis and x axis apart. */
function axes(html: string): { title: string; y: string[]; x: string[] }[] {
  return [...html.matchAll(/<figcaption>([^<]*)<\/figcaption><svg[^>]*>(.*?)<\/svg>/gs)].map(([, title, svg]) => ({
    title,
    y: [...svg.matchAll(/text-anchor="end">([^<]*)</g)].map((m) => m[1]),
    x: [...svg.matchAll(/y="\d+(?:\.\d+)?" text-anchor="middle">([^<]*)</g)].map((m) => m[1]).slice(0, -1),
  }))
}

test('no axis of the report repeats a tick label, even for a τ that moves by 1e-5', (t) => {
  for (const a of axes(renderReport(records()))) {
    t.is(new Set(a.y).size, a.y.length, `${a.title}: y ${a.y.join(' ')}`)
    t.is(new Set(a.x).size, a.x.length, `${a.title}: x ${a.x.join(' ')}`)
    t.true(a.y.length >= 3, `${a.title} has y ticks`)
  }
})

test('step axes are labelled with round numbers, epoch axes with whole ones', (t) => {
  const charts = axes(renderReport(records()))
  const loss = charts.find((c) => c.title === 'train_loss')
  t.deepEqual(loss?.x, ['0', '500', '1000', '1500', '2000', '2500'])
  const knn = charts.find((c) => c.title === 'kNN accuracy')
  t.deepEqual(knn?.x, ['1', '2', '3', '4', '5'])
  t.deepEqual(knn?.y, ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0'])
})

test('the random-initialisation kNN accuracy is a dashed line, and the legend swatches have the line colours', (t) => {
  const html = renderReport(records())
  t.regex(html, /<line [^>]*stroke="#7f7f7f"[^>]*stroke-dasharray="6 4"\/>/)
  t.regex(html, /<rect [^>]*fill="#ff7f0e"\/><text [^>]*>BYOL backbone</)
  t.regex(html, /kNN accuracy, random initialisation<\/th><td>41\.0%/)
})

test('training time adds up every session of a resumed run', (t) => {
  t.regex(renderReport(records()), /training time<\/th><td>2m30s \(2 sessions\)/)
})
