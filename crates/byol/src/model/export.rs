//! The trained backbone as TorchScript: traced from the core's own forward
//! in evaluation mode, so that `torch.jit.load` in PyTorch (and libtorch in
//! C++, and `torch.onnx.export` from there) runs it with no Python class.
use crate::error::{Error, Result};
use crate::model::byol::Byol;
use crate::tensor::replace_atomically;
use std::path::Path;
use tch::{CModule, Kind, Tensor};

/// What `export_torchscript` writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct TorchScriptOptions {
    /// The backbone then the projection head (the features BYOL's loss
    /// sees), rather than the backbone alone.
    pub projection_head: bool,
}

impl Byol {
    /// Traces `backbone` (with `projection_head`, `backbone` then the
    /// projection head) on an example batch of `example` shape
    /// `[N, C, H, W]`, and writes it to `path` atomically. The traced module
    /// takes a float batch of that layout (other batch sizes and sides work
    /// where the network allows them) and returns its features.
    pub fn export_torchscript(&self, path: &Path, example: &[i64], options: TorchScriptOptions) -> Result<()> {
        let projection_head = options.projection_head;
        if example.len() != 4 || example.iter().any(|d| *d < 1) {
            return Err(Error::invalid("example", "a batch shape [N, C, H, W] of sizes >= 1", format!("{example:?}")));
        }
        let _guard = tch::no_grad_guard();
        // The tracer stores the weights as constants, which must not require grad.
        let mut backbone = self.backbone.deep_copy()?;
        backbone.params.set_requires_grad(false)?;
        let mut head = self.projection_head.deep_copy()?;
        head.params.set_requires_grad(false)?;
        let x = Tensor::f_zeros(example, (Kind::Float, self.device()))?;
        let mut failure = None;
        let mut forward = |inputs: &[Tensor]| -> Vec<Tensor> {
            let result = backbone.forward(&inputs[0], false).and_then(|y| if projection_head { head.forward(&y, false) } else { Ok(y) });
            match result {
                Ok(y) => vec![y],
                Err(e) => {
                    failure = Some(e);
                    vec![inputs[0].shallow_clone()]
                }
            }
        };
        let traced = CModule::create_by_tracing("ByolBackbone", "forward", &[x], &mut forward);
        // The forward's own error, if any, says more than the tracer's.
        if let Some(e) = failure {
            return Err(e);
        }
        let module = traced?;
        replace_atomically(path, |tmp| Ok(module.save(tmp)?))
    }
}
