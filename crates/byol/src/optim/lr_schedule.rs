//! Learning-rate schedules: constant (minerva) or linear warm-up then cosine
//! decay (the BYOL paper), per step.
use crate::error::{Error, Result};

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrSchedule {
    /// The optimiser's rate throughout (minerva).
    Constant,
    /// Linear warm-up, then cosine decay to 0 at the last step (BYOL paper).
    WarmupCosine,
}

impl LrSchedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Self::Constant),
            "cosine" | "warmup-cosine" => Ok(Self::WarmupCosine),
            other => Err(Error::invalid("lrSchedule", "'constant' or 'cosine'", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::WarmupCosine => "cosine",
        }
    }
}

/// The learning rate of step `step` (0-based) of `total`.
pub fn learning_rate_at(schedule: LrSchedule, base: f64, step: i64, warmup: i64, total: i64) -> f64 {
    match schedule {
        LrSchedule::Constant => base,
        LrSchedule::WarmupCosine => {
            if step < warmup {
                base * (step + 1) as f64 / warmup as f64
            } else {
                let span = (total - warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_to_the_base_rate() {
        let at = |s| learning_rate_at(LrSchedule::WarmupCosine, 1.0, s, 4, 20);
        assert_eq!([at(0), at(1), at(3)], [0.25, 0.5, 1.0]);
    }

    #[test]
    fn cosine_decays_from_the_base_rate_to_zero_at_the_end() {
        let at = |s| learning_rate_at(LrSchedule::WarmupCosine, 2.0, s, 0, 10);
        assert_eq!(at(0), 2.0);
        assert!((at(5) - 1.0).abs() < 1e-12);
        assert!(at(10).abs() < 1e-12);
        assert!(at(25).abs() < 1e-12, "held at 0 after the end");
    }

    #[test]
    fn constant_is_the_base_rate_everywhere() {
        assert_eq!(learning_rate_at(LrSchedule::Constant, 0.3, 1000, 10, 20), 0.3);
    }
}
