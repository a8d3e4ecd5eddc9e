//! Projection and prediction heads, as lightly's `ProjectionHead` and minerva's
//! variant of it (a `preprocess_step` before the MLP).
use crate::error::{Error, Result};
use crate::nn::layers::{BatchNorm, Linear};
use crate::nn::params::Params;
use tch::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonLinearity {
    Relu,
    Gelu,
    Tanh,
}

impl NonLinearity {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "relu" => Ok(Self::Relu),
            "gelu" => Ok(Self::Gelu),
            "tanh" => Ok(Self::Tanh),
            other => Err(Error::invalid("nonLinearity", "'relu', 'gelu', 'tanh' or null", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::Gelu => "gelu",
            Self::Tanh => "tanh",
        }
    }

    fn apply(self, x: Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Relu => x.f_relu()?,
            Self::Gelu => x.f_gelu("none")?,
            Self::Tanh => x.f_tanh()?,
        })
    }
}

/// One `(input_dim, output_dim, batch_norm, non_linearity, use_bias?)` tuple.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    pub input_dim: i64,
    pub output_dim: i64,
    pub batch_norm: bool,
    pub non_linearity: Option<NonLinearity>,
    /// `None` means lightly's default: a bias only without batch norm.
    pub bias: Option<bool>,
}

impl BlockSpec {
    pub fn new(input_dim: i64, output_dim: i64, batch_norm: bool, non_linearity: Option<NonLinearity>) -> Self {
        Self { input_dim, output_dim, batch_norm, non_linearity, bias: None }
    }

    pub fn use_bias(&self) -> bool {
        self.bias.unwrap_or(!self.batch_norm)
    }
}

/// The sizes of a BYOL head's two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadDims {
    pub input_dim: i64,
    pub hidden_dim: i64,
    pub output_dim: i64,
}

impl HeadDims {
    /// minerva's `BYOLProjectionHead(input_dim=2048, hidden_dim=4096, output_dim=256)`.
    pub const PROJECTION: Self = Self { input_dim: 2048, hidden_dim: 4096, output_dim: 256 };
    /// minerva's `BYOLPredictionHead(input_dim=256, hidden_dim=4096, output_dim=256)`.
    pub const PREDICTION: Self = Self { input_dim: 256, hidden_dim: 4096, output_dim: 256 };
}

/// What a head does to its input before the MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preprocess {
    /// `ProjectionHead.preprocess_step`: the input as it is.
    Identity,
    /// `BYOLProjectionHead.preprocess_step`: `AdaptiveAvgPool2d((1, 1))` then flatten.
    AvgPoolFlatten,
}

/// A layer of the head's `layers` Sequential, in order, as PyTorch names them.
#[derive(Clone, Debug)]
pub enum Layer {
    Linear(Linear),
    BatchNorm1d(BatchNorm, i64),
    Act(NonLinearity),
}

impl Layer {
    /// `repr()`-like description, for `head.layers` in JS.
    pub fn describe(&self) -> String {
        match self {
            Layer::Linear(l) => format!(
                "Linear(in_features={}, out_features={}, bias={})",
                l.in_features,
                l.out_features,
                if l.bias.is_some() { "True" } else { "False" }
            ),
            Layer::BatchNorm1d(_, n) => format!("BatchNorm1d({n}, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"),
            Layer::Act(NonLinearity::Relu) => "ReLU()".into(),
            Layer::Act(NonLinearity::Gelu) => "GELU(approximate='none')".into(),
            Layer::Act(NonLinearity::Tanh) => "Tanh()".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Head {
    pub blocks: Vec<BlockSpec>,
    pub layers: Vec<Layer>,
    pub preprocess: Preprocess,
}

impl Head {
    pub fn new(blocks: &[BlockSpec], preprocess: Preprocess, p: &mut Params, device: Device) -> Result<Self> {
        if blocks.is_empty() {
            return Err(Error::invalid("blocks", "at least one block", "an empty list"));
        }
        let mut layers = Vec::new();
        let mut previous: Option<i64> = None;
        for (i, b) in blocks.iter().enumerate() {
            if b.input_dim < 1 || b.output_dim < 1 {
                return Err(Error::range(
                    format!("blocks[{i}]"),
                    "input and output dimensions >= 1",
                    format!("({}, {})", b.input_dim, b.output_dim),
                ));
            }
            if let Some(prev) = previous {
                if prev != b.input_dim {
                    return Err(Error::invalid(
                        format!("blocks[{i}][0]"),
                        format!("the previous block's output dimension {prev}"),
                        b.input_dim,
                    ));
                }
            }
            previous = Some(b.output_dim);
            let name = format!("layers.{}", layers.len());
            layers.push(Layer::Linear(Linear::new(p, &name, b.input_dim, b.output_dim, b.use_bias(), device)?));
            if b.batch_norm {
                let name = format!("layers.{}", layers.len());
                layers.push(Layer::BatchNorm1d(BatchNorm::new(p, &name, b.output_dim, device)?, b.output_dim));
            }
            if let Some(act) = b.non_linearity {
                layers.push(Layer::Act(act));
            }
        }
        Ok(Self { blocks: blocks.to_vec(), layers, preprocess })
    }

    /// lightly's `BYOLProjectionHead` / `BYOLPredictionHead` blocks.
    pub fn byol_blocks(input_dim: i64, hidden_dim: i64, output_dim: i64) -> Vec<BlockSpec> {
        vec![BlockSpec::new(input_dim, hidden_dim, true, Some(NonLinearity::Relu)), BlockSpec::new(hidden_dim, output_dim, false, None)]
    }

    pub fn input_dim(&self) -> i64 {
        self.blocks[0].input_dim
    }

    pub fn output_dim(&self) -> i64 {
        self.blocks[self.blocks.len() - 1].output_dim
    }

    pub fn preprocess_step(&self, x: &Tensor) -> Result<Tensor> {
        match self.preprocess {
            Preprocess::Identity => Ok(x.shallow_clone()),
            Preprocess::AvgPoolFlatten => {
                if x.dim() < 3 {
                    return Err(Error::invalid("x", "a [N, C, H, W] or [N, C, L] tensor to pool", format!("shape {:?}", x.size())));
                }
                let pooled = if x.dim() == 4 { x.f_adaptive_avg_pool2d([1, 1])? } else { x.shallow_clone() };
                Ok(pooled.f_flatten(1, -1)?)
            }
        }
    }

    /// `views`: see `BatchNorm::forward`.
    pub fn forward(&self, p: &Params, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        let mut h = self.preprocess_step(x)?;
        let size = h.size();
        if size.len() != 2 || size[1] != self.input_dim() {
            return Err(Error::invalid(
                "x",
                format!("[N, {}] features (after preprocess_step)", self.input_dim()),
                format!("shape {size:?}"),
            ));
        }
        if train && size[0] / views.max(1) < 2 && self.layers.iter().any(|l| matches!(l, Layer::BatchNorm1d(..))) {
            return Err(Error::range(
                "x",
                "a batch of more than 1 sample in training mode (BatchNorm needs more than one value per channel)",
                format!("batch size {}", size[0] / views.max(1)),
            ));
        }
        for layer in &self.layers {
            h = match layer {
                Layer::Linear(l) => l.forward(p, &h, views)?,
                Layer::BatchNorm1d(bn, _) => bn.forward(p, &h, train, views)?,
                Layer::Act(a) => a.apply(h)?,
            };
        }
        Ok(h)
    }
}
