// Writes pairs of BYOL views as PNG files, to look at what the model learns from.
//   node examples/views.mjs [imageFolder] [--out views] [--count 4] [--size 96]
// Without a folder it uses the built-in MNIST digits.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BYOLTransform, DataLoader, ImageFolder, mnist, saveImage, Tensor } from '../dist/index.js'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string', default: 'views' },
    count: { type: 'string', default: '4' },
    size: { type: 'string', default: '96' },
    seed: { type: 'string', default: '0' },
  },
})
const dataset = positionals[0] ? new ImageFolder(positionals[0]) : mnist()
const count = Number(values.count)
// normalize: null keeps the views in [0, 1], as pictures.
const transform = new BYOLTransform({ inputSize: Number(values.size), normalize: null, seed: Number(values.seed) })
const loader = new DataLoader(dataset, { batchSize: count, seed: Number(values.seed), transform })
mkdirSync(values.out, { recursive: true })
for await (const [x0, x1, labels] of loader) {
  for (let i = 0; i < labels.length; i++) {
    for (const [name, views] of /** @type {const} */ ([['a', x0], ['b', x1]])) {
      const per = views.shape[1] * views.shape[2] * views.shape[3]
      const one = views.toFloat32Array().slice(i * per, (i + 1) * per)
      const file = join(values.out, `${i}-label${labels[i]}-${name}.png`)
      saveImage(Tensor.fromTypedArray(one, views.shape.slice(1)), file)
      console.log(file)
    }
  }
  break
}
