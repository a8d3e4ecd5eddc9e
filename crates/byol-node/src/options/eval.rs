//! The options of `knnAccuracy` and `linearProbe`.
use byol::eval::{KnnConfig, ProbeConfig};
use napi_derive::napi;

/// The weighted kNN classifier's settings.
#[napi(object)]
pub struct KnnOptions {
    /// Neighbours that vote; capped at the number of training features. Default `200` (lightly, solo-learn).
    pub k: Option<i64>,
    /// Softness of the votes `exp(similarity / temperature)`. Default `0.1`.
    pub temperature: Option<f64>,
}

impl From<KnnOptions> for KnnConfig {
    fn from(o: KnnOptions) -> Self {
        let d = KnnConfig::default();
        KnnConfig { k: o.k.unwrap_or(d.k), temperature: o.temperature.unwrap_or(d.temperature) }
    }
}

/// The linear probe's settings.
#[napi(object)]
pub struct LinearProbeOptions {
    /// Passes over the training features. Default `20`.
    pub epochs: Option<i64>,
    /// Default `256`.
    pub batch_size: Option<i64>,
    /// AdamW learning rate. Default `0.01`.
    pub lr: Option<f64>,
    /// Default `0`.
    pub weight_decay: Option<f64>,
    /// Seeds the initial weights and the order. Default `0`.
    pub seed: Option<i64>,
}

impl TryFrom<LinearProbeOptions> for ProbeConfig {
    type Error = byol::Error;

    fn try_from(o: LinearProbeOptions) -> byol::Result<Self> {
        let d = ProbeConfig::default();
        Ok(ProbeConfig {
            epochs: o.epochs.unwrap_or(d.epochs),
            batch_size: o.batch_size.unwrap_or(d.batch_size),
            lr: o.lr.unwrap_or(d.lr),
            weight_decay: o.weight_decay.unwrap_or(d.weight_decay),
            seed: match o.seed {
                Some(s) => u64::try_from(s).map_err(|_| byol::Error::range("seed", "an integer >= 0", s))?,
                None => d.seed,
            },
        })
    }
}
