//! The BYOL model: its networks, momentum (EMA) encoders and schedule, the
//! loss, the training step, and its state in files. Builds on `nn`, `optim`
//! and `tensor`.
pub mod byol;
pub mod export;
pub mod loss;
pub mod momentum;
pub mod schedule;
pub mod state;
pub mod step;

pub use byol::{BackboneSpec, Byol, ByolConfig, Part, BASE_MOMENTUM, DEFAULT_LEARNING_RATE, DEFAULT_SCHEDULE};
pub use export::TorchScriptOptions;
pub use loss::{negative_cosine_similarity, LossForm};
pub use momentum::{deactivate_requires_grad, update_momentum, update_momentum_tensors};
pub use schedule::{cosine_schedule, MomentumSchedule, Scheduled};
pub use step::{StepOptions, StepOutput};
