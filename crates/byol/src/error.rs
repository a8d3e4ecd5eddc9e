//! The one error type of the crate. Each variant has a stable `code()`, which
//! the Node binding sets as `error.code`, so callers can branch on it; the
//! fields a caller may want (the argument, the path, the step) stay fields.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(name(ErrorKind), derive(strum::EnumIter))]
pub enum Error {
    /// An argument of the wrong type or form (a JS `TypeError`).
    #[error("{arg}: expected {expected}, got {got}")]
    InvalidArgument { arg: String, expected: String, got: String },

    /// An argument of the right type outside its allowed range (a JS `RangeError`).
    #[error("{arg}: expected {expected}, got {got}")]
    OutOfRange { arg: String, expected: String, got: String },

    /// A state dict that does not fit the model: missing, unexpected or misshapen keys.
    #[error("state dict does not match the model: {0}")]
    StateDict(String),

    /// A file that cannot be read or written, or is not what it should be.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    /// A device that does not exist on this machine.
    #[error("device: {0}")]
    Device(String),

    /// Training produced a loss that is NaN or infinite.
    #[error("the loss became {value} at step {step}; the parameters were left as they were after step {last_good}{saved}")]
    NonFinite { step: i64, value: f64, last_good: i64, saved: String },

    /// A checkpoint that cannot be used.
    #[error("checkpoint: {0}")]
    Checkpoint(String),

    /// An operation that cannot run in the object's present state.
    #[error("{0}")]
    State(String),

    /// The model is being trained by `fit` and cannot be used meanwhile.
    #[error("{what}: the model is being trained by Trainer.fit; wait for fit to finish (or abort it) before using it")]
    Busy { what: String },

    /// An object whose native memory was released with `dispose()`.
    #[error("{what}: this {what} was disposed and holds no data")]
    Disposed { what: String },

    /// A collective of data-parallel training that failed: another rank
    /// stopped, timed out, or the rendezvous could not be made.
    #[error("rank {rank}: {op} failed: {message}")]
    Distributed { rank: usize, op: String, message: String },

    /// An error raised inside libtorch.
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tch::TchError> for Error {
    /// libtorch's message without the C++ stack trace it carries (useful to
    /// libtorch's developers, noise in a JS error).
    fn from(e: tch::TchError) -> Self {
        match e {
            tch::TchError::Torch(message) => {
                let message = message.split("\nException raised from").next().unwrap_or_default().trim_end().to_string();
                Error::Torch(tch::TchError::Torch(message))
            }
            other => Error::Torch(other),
        }
    }
}

impl ErrorKind {
    /// Stable machine-readable code, in the style of Node's `ERR_*` codes.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "ERR_INVALID_ARG_TYPE",
            ErrorKind::OutOfRange => "ERR_OUT_OF_RANGE",
            ErrorKind::StateDict => "ERR_BYOL_STATE_DICT",
            ErrorKind::File => "ERR_BYOL_FILE",
            ErrorKind::Device => "ERR_BYOL_DEVICE",
            ErrorKind::NonFinite => "ERR_BYOL_NON_FINITE_LOSS",
            ErrorKind::Checkpoint => "ERR_BYOL_CHECKPOINT",
            ErrorKind::State => "ERR_BYOL_STATE",
            ErrorKind::Busy => "ERR_BYOL_BUSY",
            ErrorKind::Disposed => "ERR_BYOL_DISPOSED",
            ErrorKind::Distributed => "ERR_BYOL_DISTRIBUTED",
            ErrorKind::Torch => "ERR_BYOL_TORCH",
        }
    }

    /// Every code an error of this crate can carry.
    pub fn all_codes() -> Vec<&'static str> {
        <ErrorKind as strum::IntoEnumIterator>::iter().map(ErrorKind::code).collect()
    }
}

impl Error {
    pub fn invalid(arg: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::InvalidArgument { arg: arg.into(), expected: expected.into(), got: got.to_string() }
    }

    pub fn range(arg: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::OutOfRange { arg: arg.into(), expected: expected.into(), got: got.to_string() }
    }

    pub fn file(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Error::File { path: path.into(), message: message.to_string() }
    }

    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from(self)
    }

    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The argument an `InvalidArgument` or `OutOfRange` error is about.
    pub fn argument(&self) -> Option<&str> {
        match self {
            Error::InvalidArgument { arg, .. } | Error::OutOfRange { arg, .. } => Some(arg),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let codes = ErrorKind::all_codes();
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
        assert!(codes.iter().all(|c| c.starts_with("ERR_")));
    }
}
