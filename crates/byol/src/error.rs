//! The one error type of the crate. Each variant maps to a stable `code()` that
//! the Node binding passes on as `error.code`, so callers can branch on it.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
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

    /// An error raised inside libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// Stable machine-readable code, in the style of Node's `ERR_*` codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "ERR_INVALID_ARG_TYPE",
            Error::OutOfRange { .. } => "ERR_OUT_OF_RANGE",
            Error::StateDict(_) => "ERR_BYOL_STATE_DICT",
            Error::File { .. } => "ERR_BYOL_FILE",
            Error::Device(_) => "ERR_BYOL_DEVICE",
            Error::NonFinite { .. } => "ERR_BYOL_NON_FINITE_LOSS",
            Error::Checkpoint(_) => "ERR_BYOL_CHECKPOINT",
            Error::State(_) => "ERR_BYOL_STATE",
            Error::Torch(_) => "ERR_BYOL_TORCH",
        }
    }
}
