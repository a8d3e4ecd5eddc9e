//! The trainer: options and recipes, the fit loop, its progress events and
//! checkpoints. The top of the crate: it uses every other module.
pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod logger;
pub mod progress;
pub mod tensorboard;

pub use config::{Recipe, RunOptions, TrainerConfig, TrainerOptions, FAST_DEV_RUN_ENV};
pub use fit::{evaluate_knn, fit, FitOptions, FitResult, Fitting, KnnEval, Stop, RESTART_COUNT_ENV};
pub use logger::{LoggerKind, Loggers};
pub use progress::{Progress, StepEvent};
pub use tensorboard::EventWriter;
