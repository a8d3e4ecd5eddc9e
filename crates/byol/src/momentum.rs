//! Momentum (EMA) encoders.
use crate::error::{Error, Result};
use crate::network::Network;

/// lightly's `update_momentum`: `ema = ema * m + online * (1 - m)` over
/// parameters (not BatchNorm buffers).
pub fn update_momentum(model: &Network, model_ema: &Network, m: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&m) {
        return Err(Error::range("m", "a momentum in [0, 1]", m));
    }
    let a: Vec<_> = model.params.named_parameters().collect();
    let b: Vec<_> = model_ema.params.named_parameters().collect();
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.tensor.size() != y.tensor.size()) {
        return Err(Error::invalid("modelEma", "a copy of model with the same parameters and shapes", "a module of another layout"));
    }
    model_ema.params.ema_from(&model.params, m)
}

/// `deactivate_requires_grad`: freezes every parameter of `model`.
pub fn deactivate_requires_grad(model: &mut Network) -> Result<()> {
    model.params.set_requires_grad(false)
}
