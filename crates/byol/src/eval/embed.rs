//! Features of a dataset: the backbone's, in eval mode, one row per image.
use crate::error::{Error, Result};
use crate::loader::DataLoader;
use crate::model::Byol;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Features `[n, d]` (float32, on the CPU) with one label per row.
pub struct Embedding {
    pub features: Tensor,
    pub labels: Vec<i64>,
    /// The images that could not be read, with the reason (they have no row).
    pub skipped: Vec<String>,
}

/// Runs `forward` (a backbone in eval mode) over one pass of `loader`, taking
/// the first view of each batch; 4-D outputs are average-pooled, as the
/// backbone's features are in every BYOL evaluation.
pub fn embed(loader: &DataLoader, device: Device, mut forward: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Embedding> {
    let _guard = tch::no_grad_guard();
    let mut epoch = loader.epoch_at(0, 0);
    let mut chunks = Vec::new();
    let mut labels = Vec::new();
    let mut skipped = Vec::new();
    while let Some(b) = epoch.next_batch()? {
        if crate::stop::requested() {
            return Err(Error::State("stopped: the process is exiting".into()));
        }
        skipped.extend(b.skipped);
        if b.labels.is_empty() {
            continue;
        }
        let y = forward(&b.x0.f_to_device(device)?)?;
        let y = if y.dim() == 4 { y.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)? } else { y.f_flatten(1, -1)? };
        chunks.push(y.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?);
        labels.extend(b.labels);
    }
    if chunks.is_empty() {
        return Err(Error::range("loader", "a loader with at least one readable image", "none"));
    }
    Ok(Embedding { features: Tensor::f_cat(&chunks, 0)?, labels, skipped })
}

/// `embed` with the backbone of `model` in eval mode. The model is locked one
/// batch at a time; it must not be training (`Error::Busy`).
pub fn embed_backbone(model: &Mutex<Byol>, loader: &DataLoader) -> Result<Embedding> {
    let lock = || model.lock().map_err(|_| Error::State("the model was left inconsistent by an earlier panic".into()));
    let device = {
        let m = lock()?;
        m.check_idle("embed")?;
        m.device()
    };
    embed(loader, device, |x| lock()?.backbone.forward(x, false))
}
