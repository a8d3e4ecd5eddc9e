//! The string-valued options, as `#[napi(string_enum)]`s (a union of string
//! literals in TypeScript) with their conversions into the core's enums.
use byol::tch::Kind;
use napi_derive::napi;

/// A string enum mirroring a core enum variant for variant, both ways. Its
/// doc is written `#[doc = "..."]`: napi-derive would keep the `r"` of the
/// raw string a `///` comment becomes inside a macro.
macro_rules! string_enum {
    ($(#[$meta:meta])* $js:ident <=> $core:path { $($variant:ident = $value:literal => $core_variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[napi(string_enum)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $js {
            $(#[napi(value = $value)] $variant),+
        }

        impl From<$js> for $core {
            fn from(v: $js) -> Self {
                match v {
                    $($js::$variant => <$core>::$core_variant),+
                }
            }
        }

        impl From<$core> for $js {
            fn from(v: $core) -> Self {
                match v {
                    $(<$core>::$core_variant => $js::$variant),+
                }
            }
        }
    };
}

string_enum! {
    #[doc = "Lightning's precision names: float32, bfloat16 autocast, or float16 autocast with loss scaling."]
    Precision <=> byol::tensor::Precision { Full = "32" => Full, Bf16Mixed = "bf16-mixed" => Bf16Mixed, Fp16Mixed = "16-mixed" => Fp16Mixed }
}

string_enum! {
    #[doc = "minerva's plain SGD, or the BYOL paper's LARS recipe."]
    Recipe <=> byol::train::Recipe { Minerva = "minerva" => Minerva, Paper = "paper" => Paper }
}

string_enum! {
    #[doc = "An optimiser, as PyTorch's class names it."]
    OptimizerName <=> byol::optim::OptimizerKind { Sgd = "SGD" => Sgd, Lars = "LARS" => Lars, AdamW = "AdamW" => AdamW }
}

string_enum! {
    #[doc = "Constant, or linear warm-up then cosine decay to 0."]
    LrSchedule <=> byol::optim::LrSchedule { Constant = "constant" => Constant, Cosine = "cosine" => WarmupCosine }
}

string_enum! {
    #[doc = "A logger of the trainer: `metrics.jsonl` (what the HTML report reads), or TensorBoard's event files."]
    Logger <=> byol::train::LoggerKind { Jsonl = "jsonl" => Jsonl, TensorBoard = "tensorboard" => TensorBoard }
}

string_enum! {
    #[doc = "minerva's `0.5 * (-cos(p0, z1) - cos(p1, z0))`, or the paper's `(2 - 2cos) + (2 - 2cos)`."]
    Loss <=> byol::model::LossForm { Minerva = "minerva" => Minerva, Paper = "paper" => Paper }
}

string_enum! {
    #[doc = "What the momentum schedule follows: the global step, or the epoch (minerva's code)."]
    MomentumSchedule <=> byol::model::MomentumSchedule { Step = "step" => Step, Epoch = "epoch" => Epoch }
}

string_enum! {
    #[doc = "A ResNet trunk."]
    ResNetName <=> byol::nn::ResNetKind { ResNet18 = "resnet18" => ResNet18, ResNet34 = "resnet34" => ResNet34, ResNet50 = "resnet50" => ResNet50 }
}

string_enum! {
    #[doc = "The activation of a head block."]
    NonLinearity <=> byol::nn::NonLinearity { Relu = "relu" => Relu, Gelu = "gelu" => Gelu, Tanh = "tanh" => Tanh }
}

string_enum! {
    #[doc = "What a head does before its MLP: nothing, or pool and flatten (`BYOLProjectionHead`)."]
    Preprocess <=> byol::nn::Preprocess { Identity = "identity" => Identity, AvgPool = "avgpool" => AvgPoolFlatten }
}

string_enum! {
    #[doc = "The networks of a BYOL model, by their PyTorch attribute names."]
    PartName <=> byol::model::Part {
        Backbone = "backbone" => Backbone,
        ProjectionHead = "projection_head" => ProjectionHead,
        PredictionHead = "prediction_head" => PredictionHead,
        BackboneMomentum = "backbone_momentum" => BackboneMomentum,
        ProjectionHeadMomentum = "projection_head_momentum" => ProjectionHeadMomentum,
    }
}

/// The memory layout of images given to `TensorDataset`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    #[napi(value = "nchw")]
    Nchw,
    #[napi(value = "nhwc")]
    Nhwc,
}

/// The element types a tensor can be made from.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    #[napi(value = "float32")]
    Float32,
    #[napi(value = "float64")]
    Float64,
    #[napi(value = "int32")]
    Int32,
    #[napi(value = "int64")]
    Int64,
    #[napi(value = "int16")]
    Int16,
    #[napi(value = "int8")]
    Int8,
    #[napi(value = "uint8")]
    Uint8,
}

impl From<Dtype> for Kind {
    fn from(d: Dtype) -> Self {
        match d {
            Dtype::Float32 => Kind::Float,
            Dtype::Float64 => Kind::Double,
            Dtype::Int32 => Kind::Int,
            Dtype::Int64 => Kind::Int64,
            Dtype::Int16 => Kind::Int16,
            Dtype::Int8 => Kind::Int8,
            Dtype::Uint8 => Kind::Uint8,
        }
    }
}

/// One of the colour adjustments of `transforms`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjustment {
    #[napi(value = "brightness")]
    Brightness,
    #[napi(value = "contrast")]
    Contrast,
    #[napi(value = "saturation")]
    Saturation,
    #[napi(value = "hue")]
    Hue,
}

string_enum! {
    #[doc = "When to train data-parallel: `'auto'` when a launcher set `WORLD_SIZE`, `'single'` never, `'ddp'` always (the launcher's environment is required)."]
    Strategy <=> byol::dist::Strategy { Auto = "auto" => Auto, Single = "single" => Single, Ddp = "ddp" => Ddp }
}

string_enum! {
    #[doc = "What carries data-parallel collectives: `'auto'` NCCL when training on CUDA and Gloo on the CPU (as `init_process_group(backend=None)`), `'gloo'` Gloo for every tensor, `'nccl'` NCCL for CUDA tensors (needs CUDA)."]
    Backend <=> byol::dist::DistBackend { Auto = "auto" => Auto, Gloo = "gloo" => Gloo, Nccl = "nccl" => Nccl }
}
