//! Optimisers and what drives them: SGD, LARS and AdamW stepping parameters
//! with given gradients, their settings, learning-rate schedules, and the fp16
//! loss scaler. Builds on `tensor` and `nn`.
pub mod config;
pub mod lr_schedule;
pub mod optimizer;
pub mod scaler;

pub use config::{check_learning_rate, OptimizerConfig, OptimizerKind, OptimizerOptions};
pub use lr_schedule::{learning_rate_at, LrSchedule};
pub use optimizer::Optimizer;
pub use scaler::GradScaler;
