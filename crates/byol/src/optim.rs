//! Optimisers, stepping parameters with gradients handed in (no `.grad`
//! accumulation, so no `zero_grad`).
use crate::error::{Error, Result};
use tch::Tensor;

/// `torch.optim.SGD`, with the same update rule and defaults.
#[derive(Debug)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    buffers: Vec<Option<Tensor>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl SgdConfig {
    pub fn plain(lr: f64) -> Self {
        Self { lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

pub fn check_learning_rate(lr: f64, arg: &str) -> Result<()> {
    if !lr.is_finite() || lr <= 0.0 {
        return Err(Error::range(arg, "a finite number > 0", lr));
    }
    Ok(())
}

impl Sgd {
    pub fn new(c: SgdConfig) -> Result<Self> {
        check_learning_rate(c.lr, "lr")?;
        if !(c.momentum.is_finite() && c.momentum >= 0.0) {
            return Err(Error::range("momentum", "a number >= 0", c.momentum));
        }
        if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
            return Err(Error::range("weightDecay", "a number >= 0", c.weight_decay));
        }
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::range("nesterov", "momentum > 0 and dampening 0 with Nesterov momentum", "nesterov: true"));
        }
        Ok(Self {
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            buffers: Vec::new(),
        })
    }

    pub fn config(&self) -> SgdConfig {
        SgdConfig { lr: self.lr, momentum: self.momentum, dampening: self.dampening, weight_decay: self.weight_decay, nesterov: self.nesterov }
    }

    /// One step. `grads` are consumed: they become the update in place.
    pub fn step<'a>(&mut self, params: impl Iterator<Item = &'a Tensor>, grads: Vec<Tensor>) -> Result<()> {
        let _guard = tch::no_grad_guard();
        if self.buffers.len() < grads.len() {
            self.buffers.resize_with(grads.len(), || None);
        }
        for (i, (p, mut d)) in params.zip(grads).enumerate() {
            if !d.defined() {
                continue;
            }
            if self.weight_decay != 0.0 {
                d = d.f_add(&p.f_mul_scalar(self.weight_decay)?)?;
            }
            let update = if self.momentum != 0.0 {
                let buf = match self.buffers[i].take() {
                    None => crate::params::fresh_copy(&d)?,
                    Some(mut b) => {
                        let _ = b.f_mul_scalar_(self.momentum)?;
                        let _ = b.f_add_(&d.f_mul_scalar(1.0 - self.dampening)?)?;
                        b
                    }
                };
                let direction = if self.nesterov { d.f_add(&buf.f_mul_scalar(self.momentum)?)? } else { buf.shallow_clone() };
                self.buffers[i] = Some(buf);
                // Out of place: `direction` may be the buffer kept for the next step.
                direction.f_mul_scalar(-self.lr)?
            } else {
                // The gradient (or its decayed copy) is ours alone: scale it in place.
                let _ = d.f_mul_scalar_(-self.lr)?;
                d
            };
            let mut p = p.shallow_clone();
            let _ = p.f_add_(&update)?;
        }
        Ok(())
    }
}
