//! What a running `fit` reports, one kind of event at a time, each with only
//! its own fields.

/// Every `log_every_n_steps` steps (and the last).
#[derive(Clone, Debug, PartialEq)]
pub struct StepEvent {
    /// `global_step` after the step.
    pub step: i64,
    pub total_steps: i64,
    /// `current_epoch` (0-based) of the step.
    pub epoch: i64,
    /// Batches of this epoch done.
    pub batch: i64,
    pub batches_per_epoch: i64,
    /// `train_loss` of the step.
    pub loss: f64,
    pub learning_rate: f64,
    /// The EMA momentum τ the step used.
    pub momentum: f64,
    pub images_per_second: f64,
    /// Seconds left at the present rate; `None` until there is a rate.
    pub eta_seconds: Option<f64>,
    /// The collapse monitor: std over the batch of the l2-normalised projections.
    pub projection_std: f64,
    /// The fp16 loss scale (`16-mixed` only).
    pub loss_scale: Option<f64>,
    /// The share of the time since the last step event spent waiting for the
    /// loader's next batch: near 0 when data keeps up, near 1 when the
    /// device starves (more workers, or cheaper data, would help).
    pub data_wait_fraction: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Step(StepEvent),
    /// At the end of each epoch: the mean `train_loss` over it.
    Epoch {
        step: i64,
        epoch: i64,
        loss: f64,
    },
    /// A checkpoint folder was written.
    Checkpoint {
        step: i64,
        epoch: i64,
        path: String,
    },
    /// kNN accuracy of the backbone on held-out data, after `epoch`, or at
    /// random initialisation before training (`epoch` is `None`).
    Knn {
        step: i64,
        epoch: Option<i64>,
        accuracy: f64,
    },
    /// Something the user should know that does not stop the run.
    Warning {
        message: String,
    },
}
