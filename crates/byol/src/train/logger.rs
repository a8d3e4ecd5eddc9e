//! Lightning's loggers for a `fit`: the progress events, the hyperparameters
//! and a picture of the augmented views, written by rank 0 as training goes,
//! into a JSON-lines file (`metrics.jsonl`, what the HTML report reads) and
//! TensorBoard event files (the scalars under Lightning's names, the HParams
//! dashboard's records, the view pairs as an image).
use super::progress::Progress;
use super::tensorboard::EventWriter;
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A logger of `TrainerOptions.logger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggerKind {
    /// `metrics.jsonl`: one JSON object per event, with its wall-clock time.
    Jsonl,
    /// `events.out.tfevents.*`, as Lightning's `TensorBoardLogger`.
    TensorBoard,
}

impl LoggerKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(Self::Jsonl),
            "tensorboard" => Ok(Self::TensorBoard),
            other => Err(Error::invalid("logger", "a list of 'jsonl' and 'tensorboard'", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::TensorBoard => "tensorboard",
        }
    }
}

/// The file the JSON-lines logger appends to, in the log folder.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Where the loggers write when no `log_dir` is given: the next free
/// `byol_logs/version_N` of the working directory, as Lightning's
/// `lightning_logs/version_N`.
pub fn default_log_dir() -> PathBuf {
    let root = Path::new("byol_logs");
    let taken = |n: &usize| root.join(format!("version_{n}")).exists();
    let n = (0..).find(|n| !taken(n)).unwrap_or(0);
    root.join(format!("version_{n}"))
}

/// The scalars of an event under Lightning's metric names.
pub fn scalars(p: &Progress) -> Vec<(&'static str, f64, i64)> {
    match p {
        Progress::Step(s) => vec![
            ("train_loss", s.loss, s.step),
            ("lr", s.learning_rate, s.step),
            ("momentum", s.momentum, s.step),
            ("projection_std", s.projection_std, s.step),
            ("images_per_second", s.images_per_second, s.step),
            ("data_wait_fraction", s.data_wait_fraction, s.step),
        ],
        Progress::Epoch { step, loss, .. } => vec![("train_loss_epoch", *loss, *step)],
        Progress::Knn { step, epoch: None, accuracy } => vec![("knn_accuracy_random_init", *accuracy, *step)],
        Progress::Knn { step, accuracy, .. } => vec![("knn_accuracy", *accuracy, *step)],
        Progress::Checkpoint { .. } | Progress::Warning { .. } => Vec::new(),
    }
}

/// An event as one JSON object, with the field names of the Node package's
/// `ProgressEvent` (what `metrics.jsonl` and the report share).
pub fn record(p: &Progress) -> Value {
    match p {
        Progress::Step(s) => json!({
            "kind": "step", "step": s.step, "totalSteps": s.total_steps, "epoch": s.epoch, "batch": s.batch,
            "batchesPerEpoch": s.batches_per_epoch, "loss": s.loss, "learningRate": s.learning_rate, "momentum": s.momentum,
            "imagesPerSecond": s.images_per_second, "etaSeconds": s.eta_seconds, "projectionStd": s.projection_std,
            "lossScale": s.loss_scale, "dataWaitFraction": s.data_wait_fraction,
        }),
        Progress::Epoch { step, epoch, loss } => json!({ "kind": "epoch", "step": step, "epoch": epoch, "loss": loss }),
        Progress::Checkpoint { step, epoch, path } => json!({ "kind": "checkpoint", "step": step, "epoch": epoch, "path": path }),
        Progress::Knn { step, epoch, accuracy } => json!({ "kind": "knn", "step": step, "epoch": epoch, "accuracy": accuracy }),
        Progress::Warning { message } => json!({ "kind": "warning", "message": message }),
    }
}

/// The loggers of one `fit`. A logger that fails to write is turned off for
/// the rest of the run with a warning: losing a log line must not lose the run.
pub struct Loggers {
    dir: PathBuf,
    jsonl: Option<File>,
    tensorboard: Option<EventWriter>,
}

impl Loggers {
    /// Opens the loggers in `dir` (made if missing), failing before training
    /// when it cannot be written.
    pub fn open(dir: &Path, kinds: &[LoggerKind]) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("logDir cannot be created: {e}")))?;
        let jsonl = if kinds.contains(&LoggerKind::Jsonl) {
            let path = dir.join(METRICS_FILE);
            Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::file(&path, format!("cannot be opened: {e}")))?,
            )
        } else {
            None
        };
        let tensorboard = if kinds.contains(&LoggerKind::TensorBoard) { Some(EventWriter::create(dir)?) } else { None };
        Ok(Self { dir: dir.to_path_buf(), jsonl, tensorboard })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs an event; returns a warning for each logger that failed (and is now off).
    pub fn event(&mut self, p: &Progress) -> Vec<String> {
        let mut failed = Vec::new();
        self.write_jsonl(record(p), &mut failed);
        if let Some(tb) = &mut self.tensorboard {
            let result = scalars(p).into_iter().try_for_each(|(tag, value, step)| tb.add_scalar(tag, value, step));
            self.off_tensorboard(result, &mut failed);
        }
        failed
    }

    /// The run's hyperparameters: a `settings` record, and TensorBoard's
    /// HParams dashboard (with `train_loss` and `knn_accuracy` as its metrics)
    /// plus the same table as Markdown in the Text tab.
    pub fn hparams(&mut self, hparams: &Map<String, Value>, step: i64) -> Vec<String> {
        let mut failed = Vec::new();
        self.write_jsonl(json!({ "kind": "settings", "options": hparams }), &mut failed);
        if let Some(tb) = &mut self.tensorboard {
            let result = tb
                .add_hparams(hparams, &["train_loss", "knn_accuracy"], step)
                .and_then(|_| tb.add_text("hparams", &markdown(hparams), step));
            self.off_tensorboard(result, &mut failed);
        }
        failed
    }

    /// The augmented view pairs as a PNG: a `views` record (base64) and a TensorBoard image.
    pub fn views(&mut self, png: &[u8], step: i64) -> Vec<String> {
        let mut failed = Vec::new();
        self.write_jsonl(json!({ "kind": "views", "step": step, "png": base64(png) }), &mut failed);
        if let Some(tb) = &mut self.tensorboard {
            let result = tb.add_png("augmented_view_pairs", png, step);
            self.off_tensorboard(result, &mut failed);
        }
        failed
    }

    fn write_jsonl(&mut self, mut value: Value, failed: &mut Vec<String>) {
        let Some(file) = &mut self.jsonl else { return };
        if let Value::Object(o) = &mut value {
            o.insert("time".into(), Value::String(rfc3339(SystemTime::now())));
        }
        // One write per line, so that a killed run leaves at most a torn last line.
        let line = format!("{value}\n");
        if let Err(e) = file.write_all(line.as_bytes()) {
            self.jsonl = None;
            failed.push(format!("the jsonl logger stopped: {} cannot be written: {e}", self.dir.join(METRICS_FILE).display()));
        }
    }

    fn off_tensorboard(&mut self, result: Result<()>, failed: &mut Vec<String>) {
        if let Err(e) = result {
            self.tensorboard = None;
            failed.push(format!("the tensorboard logger stopped: {e}"));
        }
    }
}

/// The hyperparameters as a Markdown table (TensorBoard's Text tab renders it).
fn markdown(hparams: &Map<String, Value>) -> String {
    let mut out = String::from("| setting | value |\n|---|---|\n");
    for (k, v) in hparams {
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `2026-11-28T17:48:07.123Z`, as JavaScript's `Date.toISOString`.
fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let ms = t.millisecond();
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ms:03}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_javascripts_iso_strings() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_888_087_123);
        assert_eq!(rfc3339(t), "2026-11-28T17:48:07.123Z");
    }

    #[test]
    fn a_logger_name_outside_the_list_is_refused_naming_it() {
        let e = LoggerKind::parse("wandb").unwrap_err().to_string();
        assert!(e.contains("logger") && e.contains("'wandb'"), "{e}");
    }
}
