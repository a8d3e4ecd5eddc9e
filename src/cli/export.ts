/** `byol-torch export`: a trained backbone for other tools, as TorchScript or with torchvision's keys. */
import { Command, Option } from '@commander-js/extra-typings'
import { int } from './options'

export function exportCommand() {
  return new Command('export')
    .description('write the trained backbone for other tools: TorchScript (torch.jit.load, C++ libtorch, then ONNX) or safetensors with torchvision keys')
    .requiredOption('--model <file>', 'model.safetensors of a run')
    .requiredOption('--out <file>', 'file to write (backbone.pt, backbone.safetensors)')
    .addOption(new Option('--format <f>', 'torchscript: a traced module that needs no Python class; safetensors: torchvision resnet keys').choices(['torchscript', 'safetensors'] as const).default('torchscript' as const))
    .option('--image-size <n>', 'torchscript: side of the example batch the trace is made with (other sides work where the network allows)', int(1), 224)
    .option('--projection-head', 'torchscript: the backbone then the projection head (the features BYOL\'s loss sees)')
    .action(async (f) => {
      const lib = await import('../index')
      const model = lib.BYOL.load(f.model)
      if (f.format === 'safetensors') {
        model.exportBackbone(f.out)
      } else {
        model.eval()
        model.exportTorchScript(f.out, { example: [1, 3, f.imageSize, f.imageSize], projectionHead: Boolean(f.projectionHead) })
      }
      console.log(`wrote ${f.out} (${f.format}${f.projectionHead ? ', backbone and projection head' : ''})`)
    })
}
