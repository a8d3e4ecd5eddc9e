//! Momentum (EMA) encoders.
use crate::error::{Error, Result};
use crate::network::Network;
use tch::Tensor;

/// lightly's `update_momentum`: `ema = ema * m + online * (1 - m)` over
/// parameters (not BatchNorm buffers).
pub fn update_momentum(model: &Network, model_ema: &Network, m: f64) -> Result<()> {
    let online: Vec<&Tensor> = model.params.parameters().collect();
    let ema: Vec<&Tensor> = model_ema.params.parameters().collect();
    update_momentum_tensors(&online, &ema, m)
}

/// `update_momentum` over parameter lists, for callers that cannot hold both
/// networks at once (two parts of one model behind one lock).
pub fn update_momentum_tensors(online: &[&Tensor], ema: &[&Tensor], m: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&m) {
        return Err(Error::range("m", "a momentum in [0, 1]", m));
    }
    if online.len() != ema.len() || online.iter().zip(ema).any(|(a, b)| a.size() != b.size()) {
        return Err(Error::invalid("modelEma", "a copy of model with the same parameters and shapes", "a module of another layout"));
    }
    crate::params::ema_update(ema, online, m)
}

/// `deactivate_requires_grad`: freezes every parameter of `model`.
pub fn deactivate_requires_grad(model: &mut Network) -> Result<()> {
    model.params.set_requires_grad(false)
}
