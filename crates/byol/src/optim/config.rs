//! Which optimiser, with which settings: as a run uses them (`OptimizerConfig`)
//! and as a user gives them, each setting optional (`OptimizerOptions`).
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// `torch.optim.SGD`.
    #[serde(rename = "SGD")]
    Sgd,
    /// Layer-wise adaptive rate scaling (You et al. 2017) as the BYOL paper uses
    /// it and `lightly.utils.lars.LARS` implements it.
    #[serde(rename = "LARS")]
    Lars,
    /// `torch.optim.AdamW`.
    AdamW,
}

impl OptimizerKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "SGD" | "sgd" => Ok(Self::Sgd),
            "LARS" | "lars" => Ok(Self::Lars),
            "AdamW" | "adamw" => Ok(Self::AdamW),
            other => Err(Error::invalid("optimizer", "'sgd', 'lars' or 'adamw'", format!("'{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "SGD",
            Self::Lars => "LARS",
            Self::AdamW => "AdamW",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD and LARS.
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// LARS: η in `η·‖w‖ / (‖g‖ + wd·‖w‖)`.
    pub trust_coefficient: f64,
    /// AdamW.
    pub betas: (f64, f64),
    pub eps: f64,
    /// Leave biases and normalisation parameters (every tensor of one dimension)
    /// out of weight decay and of LARS's adaptation, as the BYOL paper does.
    pub exclude_bias_and_norm: bool,
}

impl OptimizerConfig {
    /// minerva's `configure_optimizers`: `SGD(params, lr)`.
    pub fn plain(lr: f64) -> Self {
        Self::sgd(lr, 0.0, 0.0, false)
    }

    pub fn sgd(lr: f64, momentum: f64, weight_decay: f64, nesterov: bool) -> Self {
        Self {
            kind: OptimizerKind::Sgd,
            lr,
            momentum,
            dampening: 0.0,
            weight_decay,
            nesterov,
            trust_coefficient: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            exclude_bias_and_norm: false,
        }
    }

    /// LARS with the BYOL paper's momentum and trust coefficient.
    pub fn lars(lr: f64, weight_decay: f64) -> Self {
        Self { kind: OptimizerKind::Lars, momentum: 0.9, exclude_bias_and_norm: true, ..Self::sgd(lr, 0.9, weight_decay, false) }
    }

    /// `torch.optim.AdamW` defaults except the learning rate.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self { kind: OptimizerKind::AdamW, momentum: 0.0, ..Self::sgd(lr, 0.0, weight_decay, false) }
    }

    pub fn validate(&self) -> Result<()> {
        check_learning_rate(self.lr, "lr")?;
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::range("momentum", "a number in [0, 1)", self.momentum));
        }
        if !(self.dampening.is_finite() && (0.0..=1.0).contains(&self.dampening)) {
            return Err(Error::range("dampening", "a number in [0, 1]", self.dampening));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::range("weightDecay", "a number >= 0", self.weight_decay));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::range("nesterov", "momentum > 0 and dampening 0 with Nesterov momentum", "nesterov: true"));
        }
        if !(self.trust_coefficient.is_finite() && self.trust_coefficient > 0.0) {
            return Err(Error::range("trustCoefficient", "a number > 0", self.trust_coefficient));
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return Err(Error::range("betas", "two numbers in [0, 1)", format!("[{b1}, {b2}]")));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::range("eps", "a number > 0", self.eps));
        }
        Ok(())
    }
}

pub fn check_learning_rate(lr: f64, arg: &str) -> Result<()> {
    if !lr.is_finite() || lr <= 0.0 {
        return Err(Error::range(arg, "a finite number > 0", lr));
    }
    Ok(())
}

/// Optimiser settings as a user gives them. Each one left out falls back to a
/// base configuration of the same kind (a recipe's) or to the kind's defaults
/// (`OptimizerConfig::sgd`, `lars`, `adamw`); the learning rate to the one
/// given to `resolve`. Also what `OptimizerConfig::settings` reports back.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OptimizerOptions {
    pub kind: Option<OptimizerKind>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub dampening: Option<f64>,
    pub weight_decay: Option<f64>,
    pub nesterov: Option<bool>,
    pub trust_coefficient: Option<f64>,
    pub betas: Option<(f64, f64)>,
    pub eps: Option<f64>,
    pub exclude_bias_and_norm: Option<bool>,
}

impl OptimizerOptions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The configuration these settings make over `base` (used when it is of
    /// the chosen kind), with `default_lr` when neither sets a learning rate.
    pub fn resolve(&self, base: Option<OptimizerConfig>, default_lr: f64) -> Result<OptimizerConfig> {
        let kind = self.kind.or(base.map(|b| b.kind)).unwrap_or(OptimizerKind::Sgd);
        let base = base.filter(|b| b.kind == kind);
        let lr = self.lr.or(base.map(|b| b.lr)).unwrap_or(default_lr);
        let base = base.unwrap_or(match kind {
            OptimizerKind::Sgd => OptimizerConfig::plain(lr),
            OptimizerKind::Lars => OptimizerConfig::lars(lr, 0.0),
            OptimizerKind::AdamW => OptimizerConfig::adamw(lr, 0.01),
        });
        if kind == OptimizerKind::AdamW && self.momentum.is_some_and(|m| m != 0.0) {
            return Err(Error::range("momentum", "0 or nothing for AdamW, whose momentum is betas[0]", self.momentum.unwrap_or_default()));
        }
        let config = OptimizerConfig {
            kind,
            lr,
            momentum: self.momentum.unwrap_or(base.momentum),
            dampening: self.dampening.unwrap_or(base.dampening),
            weight_decay: self.weight_decay.unwrap_or(base.weight_decay),
            nesterov: self.nesterov.unwrap_or(base.nesterov),
            trust_coefficient: self.trust_coefficient.unwrap_or(base.trust_coefficient),
            betas: self.betas.unwrap_or(base.betas),
            eps: self.eps.unwrap_or(base.eps),
            exclude_bias_and_norm: self.exclude_bias_and_norm.unwrap_or(base.exclude_bias_and_norm),
        };
        config.validate()?;
        Ok(config)
    }
}

impl OptimizerConfig {
    /// The settings this kind of optimiser has, as a user would give them:
    /// `torch.optim.SGD`'s five for SGD, plus the trust coefficient for LARS,
    /// betas and epsilon for AdamW, and whether biases and norms are excluded
    /// where that applies.
    pub fn settings(&self) -> OptimizerOptions {
        let sgd_like = self.kind != OptimizerKind::AdamW;
        OptimizerOptions {
            kind: Some(self.kind),
            lr: Some(self.lr),
            momentum: sgd_like.then_some(self.momentum),
            dampening: sgd_like.then_some(self.dampening),
            weight_decay: Some(self.weight_decay),
            nesterov: sgd_like.then_some(self.nesterov),
            trust_coefficient: (self.kind == OptimizerKind::Lars).then_some(self.trust_coefficient),
            betas: (self.kind == OptimizerKind::AdamW).then_some(self.betas),
            eps: (self.kind == OptimizerKind::AdamW).then_some(self.eps),
            exclude_bias_and_norm: (self.kind != OptimizerKind::Sgd || self.exclude_bias_and_norm).then_some(self.exclude_bias_and_norm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_left_out_fall_back_to_the_kinds_defaults() {
        let c = OptimizerOptions { kind: Some(OptimizerKind::Lars), ..Default::default() }.resolve(None, 0.3).unwrap();
        assert_eq!(c, OptimizerConfig::lars(0.3, 0.0));
        let c = OptimizerOptions::default().resolve(None, 0.025).unwrap();
        assert_eq!(c, OptimizerConfig::plain(0.025));
    }

    #[test]
    fn options_given_win_over_a_base_of_the_same_kind() {
        let base = OptimizerConfig::lars(0.2, 1.5e-6);
        let c = OptimizerOptions { lr: Some(0.1), ..Default::default() }.resolve(Some(base), 0.025).unwrap();
        assert_eq!(c, OptimizerConfig { lr: 0.1, ..base });
    }

    #[test]
    fn a_base_of_another_kind_is_not_used() {
        let base = OptimizerConfig::lars(0.2, 1.5e-6);
        let c = OptimizerOptions { kind: Some(OptimizerKind::Sgd), ..Default::default() }.resolve(Some(base), 0.025).unwrap();
        assert_eq!(c, OptimizerConfig::plain(0.025));
    }

    #[test]
    fn adamw_refuses_a_momentum() {
        let o = OptimizerOptions { kind: Some(OptimizerKind::AdamW), momentum: Some(0.9), ..Default::default() };
        assert!(matches!(o.resolve(None, 1e-3), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn settings_report_what_each_kind_has_and_round_trip() {
        for c in [OptimizerConfig::sgd(0.1, 0.9, 1e-4, true), OptimizerConfig::lars(0.2, 1e-6), OptimizerConfig::adamw(1e-3, 0.01)] {
            let s = c.settings();
            assert_eq!(s.trust_coefficient.is_some(), c.kind == OptimizerKind::Lars);
            assert_eq!(s.betas.is_some(), c.kind == OptimizerKind::AdamW);
            assert_eq!(s.resolve(None, 0.0).unwrap(), c);
        }
    }
}
