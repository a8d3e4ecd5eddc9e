//! The momentum (EMA) schedule: lightly's `cosine_schedule`, and what it follows.
use crate::error::{Error, Result};

/// What drives the momentum schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentumSchedule {
    /// The global step over `schedule` steps, as the BYOL paper and minerva's docs say.
    Step,
    /// The epoch number over `schedule`, as minerva's code does (its defect 2).
    Epoch,
}

impl MomentumSchedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "step" => Ok(Self::Step),
            "epoch" => Ok(Self::Epoch),
            other => Err(Error::invalid("momentumSchedule", "'step' or 'epoch'", format!("'{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Epoch => "epoch",
        }
    }
}

/// Result of `cosine_schedule`, with the warning lightly raises past the end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scheduled {
    pub value: f64,
    /// Set when `step > max_steps` without a period: the caller should warn.
    pub past_end: bool,
}

/// lightly's `cosine_schedule`, which minerva documents: from `start_value` at
/// step 0 to `end_value` at `max_steps - 1`, held there afterwards (minerva's
/// copy drops that clamp; see the README, "Differences from minerva").
pub fn cosine_schedule(step: i64, max_steps: i64, start_value: f64, end_value: f64, period: Option<i64>) -> Result<Scheduled> {
    if step < 0 {
        return Err(Error::range("step", "a step number >= 0", step));
    }
    if max_steps < 1 {
        return Err(Error::range("maxSteps", "a total step number >= 1", max_steps));
    }
    if let Some(period) = period {
        if period <= 0 {
            return Err(Error::range("period", "a period >= 1", period));
        }
    }
    let past_end = period.is_none() && step > max_steps;
    let pi = std::f64::consts::PI;
    let value = if let Some(period) = period {
        end_value - (end_value - start_value) * ((2.0 * pi * step as f64 / period as f64).cos() + 1.0) / 2.0
    } else if max_steps <= 1 || step >= max_steps - 1 {
        end_value
    } else {
        end_value - (end_value - start_value) * ((pi * step as f64 / (max_steps - 1) as f64).cos() + 1.0) / 2.0
    };
    Ok(Scheduled { value, past_end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_from_start_to_end_at_the_last_step_and_holds() {
        let at = |s| cosine_schedule(s, 11, 0.996, 1.0, None).unwrap().value;
        assert_eq!(at(0), 0.996);
        assert!((at(5) - 0.998).abs() < 1e-12, "halfway at k = (K - 1) / 2");
        assert_eq!(at(10), 1.0);
        assert_eq!(at(50), 1.0);
    }

    #[test]
    fn past_the_end_is_flagged_for_a_warning() {
        assert!(!cosine_schedule(11, 11, 0.0, 1.0, None).unwrap().past_end);
        assert!(cosine_schedule(12, 11, 0.0, 1.0, None).unwrap().past_end);
    }

    #[test]
    fn a_period_makes_it_periodic() {
        let at = |s| cosine_schedule(s, 10, 0.0, 1.0, Some(4)).unwrap().value;
        assert!((at(0) - 0.0).abs() < 1e-12 && (at(2) - 1.0).abs() < 1e-12 && (at(4) - 0.0).abs() < 1e-12);
    }

    #[test]
    fn bad_arguments_are_range_errors() {
        assert!(cosine_schedule(-1, 10, 0.0, 1.0, None).is_err());
        assert!(cosine_schedule(0, 0, 0.0, 1.0, None).is_err());
        assert!(cosine_schedule(0, 10, 0.0, 1.0, Some(0)).is_err());
    }
}
