//! The options objects JS passes, each converted into the core's
//! configuration in its own file. Every field is optional: one left out takes
//! the core's default (its `Default` impl), the one place defaults live.
pub mod eval;
pub mod loader;
pub mod model;
pub mod optimizer;
pub mod trainer;
pub mod transform;

/// `[a, b]` as a pair, or an error naming `arg`.
pub(crate) fn pair(v: &[f64], arg: &str) -> byol::Result<(f64, f64)> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => Err(byol::Error::invalid(arg, "a pair [low, high] of numbers", format!("{} numbers", v.len()))),
    }
}
