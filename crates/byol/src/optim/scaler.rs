//! The dynamic loss scaler fp16 needs (`torch.amp.GradScaler`'s rule).
use crate::error::Result;
use tch::{Kind, Tensor};

/// `torch.amp.GradScaler` with its defaults: the loss is multiplied by `scale`;
/// a step whose gradients hold inf/NaN is skipped and halves the scale; 2000
/// good steps in a row double it.
#[derive(Clone, Debug, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    pub growth_tracker: i64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self { scale: 65536.0, growth_tracker: 0, growth_factor: 2.0, backoff_factor: 0.5, growth_interval: 2000 }
    }
}

impl GradScaler {
    /// Unscales `grads` in place; returns false (and backs off) when any is not finite.
    pub fn unscale(&mut self, grads: &mut [Tensor]) -> Result<bool> {
        let _guard = tch::no_grad_guard();
        let inv = 1.0 / self.scale;
        let mut bad: Option<Tensor> = None;
        for g in grads.iter_mut().filter(|g| g.defined()) {
            let _ = g.f_mul_scalar_(inv)?;
            let b = g.f_isfinite()?.f_logical_not()?.f_any()?;
            bad = Some(match bad {
                None => b,
                Some(acc) => acc.f_logical_or(&b)?,
            });
        }
        let found_inf = match bad {
            Some(b) => b.f_to_kind(Kind::Int64)?.f_int64_value(&[])? != 0,
            None => false,
        };
        self.update(found_inf);
        Ok(!found_inf)
    }

    fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.backoff_factor;
            self.growth_tracker = 0;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= self.growth_factor;
                self.growth_tracker = 0;
            }
        }
    }
}
