/** `byol-torch eval`: kNN accuracy and a linear probe of a trained backbone. */
import { int, modelCommand, num } from './options'

export function evalCommand() {
  return modelCommand('eval', 'kNN accuracy and a linear probe of a trained backbone on the held-out split')
    .option('--k <n>', 'kNN neighbours', int(1), 200)
    .option('--temperature <t>', 'kNN temperature', num(0, true), 0.1)
    .option('--probe-epochs <n>', 'linear probe epochs', int(1), 20)
    .action(async (f, command) => {
      const lib = await import('../index')
      const rt = await import('./runtime')
      const { model, data } = rt.openModel(f, (flag) => command.getOptionValueSource(flag) === 'cli')
      const t = rt.augmentations(data, undefined, 0)
      const a = await model.embed(rt.evalLoader(data.train, data.imageSize, f.workers, t))
      const b = await model.embed(rt.evalLoader(data.val, data.imageSize, f.workers, t))
      const knn = await lib.knnAccuracy(a, a.labels, b, b.labels, { k: f.k, temperature: f.temperature })
      const { native } = await import('../native')
      const k = native.knnNeighbours({ k: f.k }, a.shape[0]).used
      const probe = await lib.linearProbe(a, a.labels, b, b.labels, { epochs: f.probeEpochs, seed: f.seed })
      console.log(JSON.stringify({ model: f.model, data: data.name, heldOut: data.val.length, knnAccuracy: knn, k, linearProbe: probe }))
    })
}
