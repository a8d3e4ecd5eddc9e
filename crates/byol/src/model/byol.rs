//! The BYOL model: minerva's `BYOL` LightningModule, its five networks and
//! the settings its training step reads (the step itself is in `step.rs`,
//! state dicts and files in `state.rs`).
use crate::error::{Error, Result};
use crate::model::schedule::{cosine_schedule, MomentumSchedule};
use crate::nn::{Arch, Head, HeadDims, Network, Preprocess, ResNetKind, ResNetOptions, Role};
use crate::optim::{check_learning_rate, Optimizer, OptimizerConfig};
use crate::tensor::device_name;
use std::path::PathBuf;
use tch::{Device, Tensor};

/// minerva's defaults.
pub const DEFAULT_LEARNING_RATE: f64 = 0.025;
pub const DEFAULT_SCHEDULE: i64 = 90_000;
/// The momentum goes from this value to 1 over the schedule (BYOL paper).
pub const BASE_MOMENTUM: f64 = 0.996;

pub enum BackboneSpec {
    ResNet(ResNetKind, ResNetOptions),
    TorchScript(PathBuf),
    Network(Network),
}

pub struct ByolConfig {
    pub backbone: BackboneSpec,
    pub projection_head: Option<Network>,
    pub prediction_head: Option<Network>,
    pub learning_rate: f64,
    pub schedule: i64,
    pub momentum_schedule: MomentumSchedule,
    pub device: Device,
    pub seed: Option<i64>,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            backbone: BackboneSpec::ResNet(ResNetKind::ResNet18, ResNetOptions::default()),
            projection_head: None,
            prediction_head: None,
            learning_rate: DEFAULT_LEARNING_RATE,
            schedule: DEFAULT_SCHEDULE,
            momentum_schedule: MomentumSchedule::Step,
            device: Device::Cpu,
            seed: None,
        }
    }
}

/// The networks of a BYOL model, in the order PyTorch registers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Backbone,
    ProjectionHead,
    PredictionHead,
    BackboneMomentum,
    ProjectionHeadMomentum,
}

impl Part {
    pub const ALL: [Part; 5] =
        [Part::Backbone, Part::ProjectionHead, Part::PredictionHead, Part::BackboneMomentum, Part::ProjectionHeadMomentum];

    pub fn prefix(self) -> &'static str {
        match self {
            Part::Backbone => "backbone",
            Part::ProjectionHead => "projection_head",
            Part::PredictionHead => "prediction_head",
            Part::BackboneMomentum => "backbone_momentum",
            Part::ProjectionHeadMomentum => "projection_head_momentum",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.prefix() == name).ok_or_else(|| {
            Error::invalid(
                "name",
                "backbone, projection_head, prediction_head, backbone_momentum or projection_head_momentum",
                format!("'{name}'"),
            )
        })
    }
}

pub struct Byol {
    pub backbone: Network,
    pub projection_head: Network,
    pub prediction_head: Network,
    pub backbone_momentum: Network,
    pub projection_head_momentum: Network,
    pub(crate) learning_rate: f64,
    pub(crate) schedule_length: i64,
    pub momentum_schedule: MomentumSchedule,
    /// τ at the start of the schedule (minerva and the paper: 0.996; short runs
    /// learn faster with less, e.g. 0.99).
    pub(crate) base_momentum: f64,
    /// `nn.Module.training`.
    pub training: bool,
    /// Lightning's `global_step`: optimiser steps taken.
    pub(crate) global_step: i64,
    /// Lightning's `current_epoch`.
    pub(crate) current_epoch: i64,
    pub(crate) optimizer: Option<Optimizer>,
    device: Device,
    /// The global step whose momentum update is already done: a step that
    /// failed after it (a NaN loss) must not apply it twice when retried.
    pub(crate) momentum_updated_at: Option<i64>,
    /// Gradients summed over the micro-batches of an accumulation window
    /// not yet closed by an optimiser step.
    pub(crate) accumulated: Option<Vec<Tensor>>,
    /// Set while `Trainer::fit` trains the model: other training calls fail
    /// with `Error::Busy` rather than interleave with it.
    pub(crate) fitting: bool,
}

fn check_schedule(schedule: i64) -> Result<()> {
    if schedule < 1 {
        return Err(Error::range("schedule", "a number of steps >= 1", schedule));
    }
    Ok(())
}

impl Byol {
    pub fn new(config: ByolConfig) -> Result<Self> {
        check_learning_rate(config.learning_rate, "learningRate")?;
        check_schedule(config.schedule)?;
        if let Some(seed) = config.seed {
            tch::manual_seed(seed);
        }
        let device = config.device;
        let mut backbone = match config.backbone {
            BackboneSpec::ResNet(kind, options) => Network::resnet_with(kind, options, device)?,
            BackboneSpec::TorchScript(path) => Network::torchscript(&path, device)?,
            BackboneSpec::Network(n) => n,
        };
        move_to(&mut backbone, device, "backbone")?;
        let projection_head = match config.projection_head {
            Some(mut head) => {
                move_to(&mut head, device, "projectionHead")?;
                // A TorchScript trunk says its feature count only through a forward, which may not suit every module.
                if let (Ok(features), Some(input)) = (backbone.probe_feature_dim(64), head_dims(&head).map(|d| d.0)) {
                    if input != features {
                        return Err(Error::invalid(
                            "projectionHead",
                            format!("a head taking the backbone's {features} features"),
                            format!("a head taking {input}"),
                        ));
                    }
                }
                head
            }
            None => {
                // minerva hard-codes 2048 inputs, which breaks its default ResNet18
                // trunk (512 features); the backbone says what it outputs.
                let d = HeadDims::PROJECTION;
                let features = backbone.probe_feature_dim(64)?;
                Network::head(&Head::byol_blocks(features, d.hidden_dim, d.output_dim), Preprocess::AvgPoolFlatten, device)?
            }
        };
        let projected = head_dims(&projection_head).map(|d| d.1);
        let prediction_head = match config.prediction_head {
            Some(mut head) => {
                move_to(&mut head, device, "predictionHead")?;
                if let (Some(projected), Some(input)) = (projected, head_dims(&head).map(|d| d.0)) {
                    if input != projected {
                        return Err(Error::invalid(
                            "predictionHead",
                            format!("a head taking the projection head's {projected} outputs"),
                            format!("a head taking {input}"),
                        ));
                    }
                }
                head
            }
            None => {
                let d = HeadDims::PREDICTION;
                let dim = projected.unwrap_or(d.output_dim);
                Network::head(&Head::byol_blocks(dim, d.hidden_dim, dim), Preprocess::Identity, device)?
            }
        };
        let mut backbone_momentum = backbone.deep_copy()?;
        let mut projection_head_momentum = projection_head.deep_copy()?;
        backbone_momentum.params.set_requires_grad(false)?;
        projection_head_momentum.params.set_requires_grad(false)?;
        Ok(Self {
            backbone,
            projection_head,
            prediction_head,
            backbone_momentum,
            projection_head_momentum,
            learning_rate: config.learning_rate,
            schedule_length: config.schedule,
            momentum_schedule: config.momentum_schedule,
            base_momentum: BASE_MOMENTUM,
            training: true,
            global_step: 0,
            current_epoch: 0,
            optimizer: None,
            device,
            momentum_updated_at: None,
            accumulated: None,
            fitting: false,
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn part(&self, part: Part) -> &Network {
        match part {
            Part::Backbone => &self.backbone,
            Part::ProjectionHead => &self.projection_head,
            Part::PredictionHead => &self.prediction_head,
            Part::BackboneMomentum => &self.backbone_momentum,
            Part::ProjectionHeadMomentum => &self.projection_head_momentum,
        }
    }

    pub fn part_mut(&mut self, part: Part) -> &mut Network {
        match part {
            Part::Backbone => &mut self.backbone,
            Part::ProjectionHead => &mut self.projection_head,
            Part::PredictionHead => &mut self.prediction_head,
            Part::BackboneMomentum => &mut self.backbone_momentum,
            Part::ProjectionHeadMomentum => &mut self.projection_head_momentum,
        }
    }

    /// Fails with `Error::Busy` while `fit` trains the model.
    pub fn check_idle(&self, what: &str) -> Result<()> {
        if self.fitting {
            return Err(Error::Busy { what: what.to_string() });
        }
        Ok(())
    }

    /// Whether `fit` is training the model.
    pub fn fitting(&self) -> bool {
        self.fitting
    }

    /// `p = prediction_head(projection_head(backbone(x)))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, self.training)
    }

    pub(crate) fn forward_with(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_parts(x, train)?.1)
    }

    /// `(z, p)`: the online projection and prediction.
    pub(crate) fn forward_parts(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        self.forward_views(x, train, 1)
    }

    /// `(z, p)` of `views` equal batches stacked along dimension 0, each as if
    /// by itself (see `Network::forward_views`).
    pub(crate) fn forward_views(&self, x: &Tensor, train: bool, views: i64) -> Result<(Tensor, Tensor)> {
        let y = self.backbone.forward_views(x, train, views)?;
        let z = self.projection_head.forward_views(&y, train, views)?;
        let p = self.prediction_head.forward_views(&z, train, views)?;
        Ok((z, p))
    }

    /// `z = projection_head_momentum(backbone_momentum(x)).detach()`.
    pub fn forward_momentum(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_momentum_with(x, self.training)
    }

    pub(crate) fn forward_momentum_with(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_momentum_views(x, train, 1)
    }

    /// The momentum projection of `views` stacked batches, as `forward_views`.
    pub(crate) fn forward_momentum_views(&self, x: &Tensor, train: bool, views: i64) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let y = self.backbone_momentum.forward_views(x, train, views)?;
        Ok(self.projection_head_momentum.forward_views(&y, train, views)?.f_detach()?)
    }

    /// minerva's `configure_optimizers`: plain SGD at `learning_rate`. It
    /// replaces the optimiser `training_step` uses.
    pub fn configure_optimizers(&mut self) -> Result<OptimizerConfig> {
        self.set_optimizer(OptimizerConfig::plain(self.learning_rate))
    }

    pub fn set_optimizer(&mut self, config: OptimizerConfig) -> Result<OptimizerConfig> {
        self.check_idle("setOptimizer")?;
        self.install_optimizer(config)
    }

    /// `set_optimizer` without the busy check: `fit`'s own.
    pub(crate) fn install_optimizer(&mut self, config: OptimizerConfig) -> Result<OptimizerConfig> {
        let o = Optimizer::new(config)?;
        let c = o.config();
        self.optimizer = Some(o);
        Ok(c)
    }

    pub fn optimizer_config(&self) -> Option<OptimizerConfig> {
        self.optimizer.as_ref().map(Optimizer::config)
    }

    pub fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.optimizer.as_mut()
    }

    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.optimizer.as_ref()
    }

    /// The momentum `training_step` uses at the current position.
    pub fn current_momentum(&self) -> Result<f64> {
        let position = match self.momentum_schedule {
            MomentumSchedule::Step => self.global_step,
            MomentumSchedule::Epoch => self.current_epoch,
        };
        Ok(cosine_schedule(position, self.schedule_length, self.base_momentum, 1.0, None)?.value)
    }

    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// Used by the next `configure_optimizers`.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_learning_rate(lr, "learningRate")?;
        self.learning_rate = lr;
        Ok(())
    }

    pub fn schedule_length(&self) -> i64 {
        self.schedule_length
    }

    pub fn set_schedule_length(&mut self, n: i64) -> Result<()> {
        check_schedule(n)?;
        self.schedule_length = n;
        Ok(())
    }

    pub fn base_momentum(&self) -> f64 {
        self.base_momentum
    }

    pub fn set_base_momentum(&mut self, m: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&m) {
            return Err(Error::range("baseMomentum", "a number in [0, 1]", m));
        }
        self.base_momentum = m;
        Ok(())
    }

    pub fn global_step(&self) -> i64 {
        self.global_step
    }

    pub fn set_global_step(&mut self, n: i64) -> Result<()> {
        if n < 0 {
            return Err(Error::range("globalStep", "a step >= 0", n));
        }
        self.global_step = n;
        Ok(())
    }

    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    pub fn set_current_epoch(&mut self, n: i64) -> Result<()> {
        if n < 0 {
            return Err(Error::range("currentEpoch", "an epoch >= 0", n));
        }
        self.current_epoch = n;
        Ok(())
    }

    /// Moves every network and the optimiser's state to `device`.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        if device == self.device {
            return Ok(());
        }
        let state: Vec<(String, Tensor)> = self.optimizer.as_ref().map(Optimizer::state_tensors).unwrap_or_default();
        for part in Part::ALL {
            move_to(self.part_mut(part), device, part.prefix())?;
        }
        self.device = device;
        let params: Vec<Tensor> = self.trainable().map(Tensor::shallow_clone).collect();
        if let Some(o) = self.optimizer.as_mut() {
            o.load_state_tensors(&state, &params)?;
        }
        Ok(())
    }

    /// Re-lays the convolution weights out as channels_last (for low-precision
    /// convolutions on a GPU).
    pub fn to_channels_last(&mut self) -> Result<()> {
        for part in Part::ALL {
            self.part_mut(part).params.to_channels_last()?;
        }
        // Optimiser buffers may keep the old layout: every update is elementwise.
        Ok(())
    }

    /// The bytes of its five networks and its optimiser's state.
    pub fn nbytes(&self) -> i64 {
        let networks: i64 = Part::ALL.into_iter().map(|p| self.part(p).nbytes()).sum();
        let state: i64 = self.optimizer().map_or(0, |o| o.state_tensors().iter().map(|(_, t)| crate::tensor::nbytes(t)).sum());
        networks + state
    }

    /// Parameters the optimiser steps: the online networks'.
    /// Every parameter and buffer of every part, in `state_dict` order.
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        Part::ALL.iter().flat_map(|&p| self.part(p).params.entries().iter().map(|e| &e.tensor))
    }

    /// The BatchNorm running statistics of every part.
    pub fn buffers(&self) -> impl Iterator<Item = &Tensor> {
        Part::ALL.iter().flat_map(|&p| self.part(p).params.entries().iter().filter(|e| e.role == Role::Buffer).map(|e| &e.tensor))
    }

    pub fn trainable(&self) -> impl Iterator<Item = &Tensor> {
        [&self.backbone, &self.projection_head, &self.prediction_head]
            .into_iter()
            .flat_map(|n| n.params.parameters())
            .filter(|t| t.requires_grad())
    }
}

pub(crate) fn move_to(n: &mut Network, device: Device, arg: &str) -> Result<()> {
    if n.device() == device {
        return Ok(());
    }
    if matches!(&*n.arch, Arch::TorchScript(_)) {
        return Err(Error::invalid(
            arg,
            format!("a module on {}", device_name(device)),
            format!("a TorchScript module on {} (load it with the same device)", device_name(n.device())),
        ));
    }
    n.params.to_device(device)
}

/// `(input, output)` dimensions of a head.
fn head_dims(n: &Network) -> Option<(i64, i64)> {
    match &*n.arch {
        Arch::Head(h) => Some((h.input_dim(), h.output_dim())),
        _ => None,
    }
}
