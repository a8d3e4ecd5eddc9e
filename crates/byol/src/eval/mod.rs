//! Evaluation of learned features: embeddings of a dataset, the weighted kNN
//! classifier and a linear probe. Builds on `loader` and `optim`.
pub mod embed;
pub mod knn;
pub mod probe;

pub use embed::{embed, embed_backbone, Embedding};
pub use knn::{knn_accuracy, KnnConfig};
pub use probe::{linear_probe, ProbeConfig, ProbeResult};
