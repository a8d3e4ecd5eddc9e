/** `byol-torch embed`: backbone features of a dataset, written to safetensors or NumPy's .npy. */
import { Option } from '@commander-js/extra-typings'
import { modelCommand } from './options'

export function embedCommand() {
  return modelCommand('embed', 'write backbone features (and labels) of a dataset to safetensors or .npy')
    .requiredOption('--out <file>', 'features.safetensors (features, labels), or features.npy: then also features.labels.npy and, for image folders, features.paths.txt (one file per line, in order)')
    .addOption(new Option('--split <s>', 'which images').choices(['all', 'train', 'val'] as const).default('all' as const))
    .action(async (f, command) => {
      const lib = await import('../index')
      const rt = await import('./runtime')
      const { writeAtomically } = await import('./html-report')
      const { model, data } = rt.openModel(f, (flag) => command.getOptionValueSource(flag) === 'cli')
      const ds = f.split === 'all' ? data.all : f.split === 'train' ? data.train : data.val
      const loader = rt.evalLoader(ds, data.imageSize, f.workers, rt.augmentations(data, undefined, 0))
      const e = await model.embed(loader)
      const features = lib.Tensor.fromTypedArray(e.data, [...e.shape])
      const labels = lib.Tensor.fromTypedArray(BigInt64Array.from(e.labels.map(BigInt)), [e.labels.length])
      if (f.out.endsWith('.npy')) {
        const stem = f.out.slice(0, -'.npy'.length)
        lib.saveNpy(features, f.out)
        lib.saveNpy(labels, `${stem}.labels.npy`)
        // The files embedded, in order: those that could not be read have no row.
        const unreadable = new Set(loader.skipped.map((s) => s.replace(/ \(.*\)$/s, '')))
        const paths = ds.paths?.filter((p) => !unreadable.has(p))
        if (paths) writeAtomically(`${stem}.paths.txt`, paths.map((p) => `${p}\n`).join(''))
        console.log(`wrote ${e.shape[0]} x ${e.shape[1]} features to ${f.out}, labels to ${stem}.labels.npy${paths ? `, files to ${stem}.paths.txt` : ''}`)
        return
      }
      lib.saveSafetensors({ features, labels }, f.out)
      console.log(`wrote ${e.shape[0]} x ${e.shape[1]} features and their labels to ${f.out}`)
    })
}
