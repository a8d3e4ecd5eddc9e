//! Momentum (EMA) encoders: lightly's `update_momentum` and
//! `deactivate_requires_grad`.
use crate::error::{Error, Result};
use crate::nn::{Network, Params};
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
    ema_update(ema, online, m)
}

/// `deactivate_requires_grad`: freezes every parameter of `model`.
pub fn deactivate_requires_grad(model: &mut Network) -> Result<()> {
    model.params.set_requires_grad(false)
}

/// `ema = ema * m + online * (1 - m)` over the parameters of two stores of the
/// same layout (BatchNorm buffers keep their own running statistics).
pub fn update_momentum_params(online: &Params, ema: &Params, m: f64) -> Result<()> {
    let online: Vec<&Tensor> = online.parameters().collect();
    let ema: Vec<&Tensor> = ema.parameters().collect();
    ema_update(&ema, &online, m)
}

/// `ema = ema * m + online * (1 - m)`, each product and the sum rounded to
/// float32 as lightly's `update_momentum` rounds them, so that the result is
/// bit-identical (a fused `lerp_` rounds differently, and BYOL's dynamics
/// amplify such differences); one pass without temporaries on the CPU.
pub fn ema_update(ema: &[&Tensor], online: &[&Tensor], m: f64) -> Result<()> {
    crate::tensor::shim::ema_update_(ema, online, m)
}
