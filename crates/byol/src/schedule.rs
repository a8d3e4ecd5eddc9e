//! Cosine schedules.
use crate::error::{Error, Result};

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
