//! ResNet trunks laid out as minerva builds them:
//! `nn.Sequential(*list(resnet.children())[:-1])`, so parameters are named
//! `0.weight` (conv1), `1.*` (bn1), `4.*`..`7.*` (layer1..layer4), and the
//! output is `[N, C, 1, 1]`. Weights and names follow torchvision.
use crate::error::{Error, Result};
use crate::nn::layers::{BatchNorm, Conv2d};
use crate::nn::params::{join, Params};
use tch::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetKind {
    ResNet18,
    ResNet34,
    ResNet50,
}

impl ResNetKind {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "resnet18" => Ok(Self::ResNet18),
            "resnet34" => Ok(Self::ResNet34),
            "resnet50" => Ok(Self::ResNet50),
            other => Err(Error::invalid("backbone", "'resnet18', 'resnet34' or 'resnet50'", format!("'{other}'"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ResNet18 => "resnet18",
            Self::ResNet34 => "resnet34",
            Self::ResNet50 => "resnet50",
        }
    }

    fn layers(self) -> [i64; 4] {
        match self {
            Self::ResNet18 => [2, 2, 2, 2],
            Self::ResNet34 | Self::ResNet50 => [3, 4, 6, 3],
        }
    }

    fn bottleneck(self) -> bool {
        matches!(self, Self::ResNet50)
    }

    /// Channels of the trunk's output: what the projection head takes in.
    pub fn feature_dim(self) -> i64 {
        if self.bottleneck() {
            2048
        } else {
            512
        }
    }
}

#[derive(Clone, Debug)]
struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

#[derive(Clone, Debug)]
struct Block {
    convs: Vec<(Conv2d, BatchNorm)>,
    downsample: Option<Downsample>,
}

impl Block {
    fn forward(&self, p: &Params, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        let mut out = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            out = bn.forward(p, &conv.forward(p, &out, views)?, train, views)?;
            if i != last {
                out = out.f_relu_()?;
            }
        }
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(p, &d.conv.forward(p, x, views)?, train, views)?,
            None => x.shallow_clone(),
        };
        out = out.f_add_(&identity)?;
        Ok(out.f_relu_()?)
    }
}

/// Variants of the trunk for small images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetOptions {
    /// Channels of the first stage (torchvision: 64); later stages double it.
    pub width: i64,
    /// The stem of CIFAR-scale SSL benchmarks (solo-learn, lightly): a 3x3
    /// stride-1 `conv1` and no max-pool, so 32x32 inputs keep their detail.
    pub small_inputs: bool,
}

impl Default for ResNetOptions {
    fn default() -> Self {
        Self { width: 64, small_inputs: false }
    }
}

#[derive(Clone, Debug)]
pub struct ResNet {
    pub kind: ResNetKind,
    pub options: ResNetOptions,
    conv1: Conv2d,
    bn1: BatchNorm,
    stages: Vec<Vec<Block>>,
}

/// Index of each torchvision child in minerva's `Sequential`.
const CONV1: &str = "0";
const BN1: &str = "1";
const FIRST_STAGE: usize = 4;

impl ResNet {
    pub fn new(kind: ResNetKind, options: ResNetOptions, p: &mut Params, device: Device) -> Result<Self> {
        let w = options.width;
        if !(1..=4096).contains(&w) {
            return Err(Error::range("width", "1 to 4096 channels", w));
        }
        let conv1 = if options.small_inputs {
            Conv2d::new(p, CONV1, (3, w, 3), 1, 1, device)?
        } else {
            Conv2d::new(p, CONV1, (3, w, 7), 2, 3, device)?
        };
        let bn1 = BatchNorm::new(p, BN1, w, device)?;
        let expansion = if kind.bottleneck() { 4 } else { 1 };
        let mut inplanes = w;
        let mut stages = Vec::new();
        for (s, &blocks) in kind.layers().iter().enumerate() {
            let planes = w << s;
            let stage_stride = if s == 0 { 1 } else { 2 };
            let mut stage = Vec::new();
            for b in 0..blocks {
                let name = format!("{}.{b}", FIRST_STAGE + s);
                let stride = if b == 0 { stage_stride } else { 1 };
                let mut convs = Vec::new();
                let mut conv_bn = |i: usize, shape: (i64, i64, i64), stride: i64, pad: i64| -> Result<()> {
                    let c = Conv2d::new(p, &join(&name, &format!("conv{i}")), shape, stride, pad, device)?;
                    let n = BatchNorm::new(p, &join(&name, &format!("bn{i}")), shape.1, device)?;
                    convs.push((c, n));
                    Ok(())
                };
                if kind.bottleneck() {
                    // torchvision's ResNet v1.5: the stride sits on the 3x3 convolution.
                    conv_bn(1, (inplanes, planes, 1), 1, 0)?;
                    conv_bn(2, (planes, planes, 3), stride, 1)?;
                    conv_bn(3, (planes, planes * expansion, 1), 1, 0)?;
                } else {
                    conv_bn(1, (inplanes, planes, 3), stride, 1)?;
                    conv_bn(2, (planes, planes, 3), 1, 1)?;
                }
                let downsample = if stride != 1 || inplanes != planes * expansion {
                    Some(Downsample {
                        conv: Conv2d::new(p, &join(&name, "downsample.0"), (inplanes, planes * expansion, 1), stride, 0, device)?,
                        bn: BatchNorm::new(p, &join(&name, "downsample.1"), planes * expansion, device)?,
                    })
                } else {
                    None
                };
                inplanes = planes * expansion;
                stage.push(Block { convs, downsample });
            }
            stages.push(stage);
        }
        Ok(Self { kind, options, conv1, bn1, stages })
    }

    /// Channels of the output.
    pub fn feature_dim(&self) -> i64 {
        self.kind.feature_dim() / 64 * self.options.width
    }

    /// `views`: see `BatchNorm::forward`.
    pub fn forward(&self, p: &Params, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        let mut h = self.bn1.forward(p, &self.conv1.forward(p, x, views)?, train, views)?.f_relu_()?;
        if !self.options.small_inputs {
            h = crate::tensor::shim::max_pool2d(&h, 3, 2, 1)?;
        }
        for stage in &self.stages {
            for block in stage {
                h = block.forward(p, &h, train, views)?;
            }
        }
        Ok(h.f_adaptive_avg_pool2d([1, 1])?)
    }
}

/// Translates a torchvision `resnet*` state-dict key (`layer1.0.conv1.weight`)
/// to minerva's trunk key (`4.0.conv1.weight`); `None` for `fc.*`.
pub fn from_torchvision_key(key: &str) -> Option<String> {
    let (head, rest) = key.split_once('.')?;
    let index = match head {
        "conv1" => 0,
        "bn1" => 1,
        "layer1" => 4,
        "layer2" => 5,
        "layer3" => 6,
        "layer4" => 7,
        _ => return None,
    };
    Some(format!("{index}.{rest}"))
}

/// The inverse of `from_torchvision_key`.
pub fn to_torchvision_key(key: &str) -> Option<String> {
    let (head, rest) = key.split_once('.')?;
    let name = match head {
        "0" => "conv1",
        "1" => "bn1",
        "4" => "layer1",
        "5" => "layer2",
        "6" => "layer3",
        "7" => "layer4",
        _ => return None,
    };
    Some(format!("{name}.{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchvision_keys_map_to_the_trunks_sequential_indices_and_back() {
        for (tv, ours) in [
            ("conv1.weight", "0.weight"),
            ("bn1.running_mean", "1.running_mean"),
            ("layer1.0.conv1.weight", "4.0.conv1.weight"),
            ("layer4.1.downsample.1.bias", "7.1.downsample.1.bias"),
        ] {
            assert_eq!(from_torchvision_key(tv).as_deref(), Some(ours));
            assert_eq!(to_torchvision_key(ours).as_deref(), Some(tv));
        }
    }

    #[test]
    fn the_classifier_and_the_pooling_have_no_counterpart() {
        assert_eq!(from_torchvision_key("fc.weight"), None);
        assert_eq!(from_torchvision_key("conv1"), None);
        // 2 and 3 are the ReLU and the max-pool, 8 the average pool: no parameters.
        assert_eq!(to_torchvision_key("3.weight"), None);
    }
}
