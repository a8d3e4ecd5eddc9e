/** `byol-torch embed`: backbone features of a dataset, written to safetensors. */
import { Option } from '@commander-js/extra-typings'
import { modelCommand } from './options'

export function embedCommand() {
  return modelCommand('embed', 'write backbone features (and labels) of a dataset to safetensors')
    .requiredOption('--out <file>', 'features.safetensors to write')
    .addOption(new Option('--split <s>', 'which images').choices(['all', 'train', 'val'] as const).default('all' as const))
    .action(async (f) => {
      const lib = await import('../index')
      const rt = await import('./runtime')
      const { model, data } = rt.openModel(f)
      const ds = f.split === 'all' ? data.all : f.split === 'train' ? data.train : data.val
      const e = await model.embed(rt.evalLoader(ds, data.imageSize, f.workers, rt.augmentations(data, undefined, 0)))
      lib.saveSafetensors(
        {
          features: lib.Tensor.fromTypedArray(e.data, [...e.shape]),
          labels: lib.Tensor.fromTypedArray(BigInt64Array.from(e.labels.map(BigInt)), [e.labels.length]),
        },
        f.out,
      )
      console.log(`wrote ${e.shape[0]} x ${e.shape[1]} features and their labels to ${f.out}`)
    })
}
