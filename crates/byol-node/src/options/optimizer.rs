//! An optimiser's settings, to and from JS: what `configureOptimizers()`
//! returns and what `Trainer`'s `optimizer` option takes.
use crate::enums::OptimizerName;
use crate::options::pair;
use byol::optim::{OptimizerConfig as CoreOptimizerConfig, OptimizerOptions};
use napi_derive::napi;

/// `torch.optim` settings. Returned, only those the optimiser has are
/// present; given, each one left out takes the recipe's, else the optimiser's
/// default, and the learning rate the model's.
#[napi(object)]
#[derive(Clone)]
pub struct OptimizerConfig {
    /// `'SGD'`, `'LARS'` or `'AdamW'`. Default: the recipe's (`'SGD'` for minerva).
    pub name: Option<OptimizerName>,
    /// Peak learning rate. Default: the recipe's, else the model's `learningRate`.
    pub lr: Option<f64>,
    /// SGD and LARS momentum. Default: the recipe's (0 for minerva's SGD, 0.9 for LARS).
    pub momentum: Option<f64>,
    /// SGD and LARS. Default `0`.
    pub dampening: Option<f64>,
    /// Default: the recipe's (0 for SGD and LARS, 0.01 for AdamW, 1.5e-6 in the paper recipe).
    pub weight_decay: Option<f64>,
    /// Nesterov momentum (SGD). Default `false`.
    pub nesterov: Option<bool>,
    /// LARS: η in `η·‖w‖ / (‖g‖ + wd·‖w‖)`. Default `0.001`.
    pub trust_coefficient: Option<f64>,
    /// AdamW. Default `[0.9, 0.999]`.
    #[napi(ts_type = "[number, number]")]
    pub betas: Option<Vec<f64>>,
    /// AdamW epsilon. Default `1e-8`.
    pub eps: Option<f64>,
    /// Leave biases and normalisation parameters (every one-dimensional tensor) out of weight decay and of LARS's adaptation. Default: `true` for LARS (the paper), `false` otherwise.
    pub exclude_bias_and_norm: Option<bool>,
}

impl From<CoreOptimizerConfig> for OptimizerConfig {
    fn from(c: CoreOptimizerConfig) -> Self {
        let s = c.settings();
        Self {
            name: Some(c.kind.into()),
            lr: s.lr,
            momentum: s.momentum,
            dampening: s.dampening,
            weight_decay: s.weight_decay,
            nesterov: s.nesterov,
            trust_coefficient: s.trust_coefficient,
            betas: s.betas.map(|(a, b)| vec![a, b]),
            eps: s.eps,
            exclude_bias_and_norm: s.exclude_bias_and_norm,
        }
    }
}

impl TryFrom<OptimizerConfig> for OptimizerOptions {
    type Error = byol::Error;

    fn try_from(c: OptimizerConfig) -> byol::Result<Self> {
        Ok(OptimizerOptions {
            kind: c.name.map(Into::into),
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            trust_coefficient: c.trust_coefficient,
            betas: c.betas.as_deref().map(|b| pair(b, "betas")).transpose()?,
            eps: c.eps,
            exclude_bias_and_norm: c.exclude_bias_and_norm,
        })
    }
}
