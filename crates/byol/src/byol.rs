//! The BYOL model: minerva's `BYOL` LightningModule, with its training step
//! done entirely here (momentum update, four forwards, loss, backward, step).
use crate::backbones::{ResNetKind, ResNetOptions};
use crate::checkpoint::{load_safetensors, save_safetensors};
use crate::error::{Error, Result};
use crate::heads::{Head, Preprocess};
use crate::network::{Arch, Network};
use crate::amp::{Autocast, GradScaler, Precision};
use crate::loss::LossForm;
use crate::optim::{check_learning_rate, Optimizer, OptimizerConfig};
use crate::params::list;
use crate::schedule::cosine_schedule;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// minerva's defaults.
pub const DEFAULT_LEARNING_RATE: f64 = 0.025;
pub const DEFAULT_SCHEDULE: i64 = 90_000;
/// The momentum goes from this value to 1 over the schedule (BYOL paper).
pub const BASE_MOMENTUM: f64 = 0.996;

/// What drives the momentum schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentumSchedule {
    /// The global step over `schedule` steps, as the BYOL paper and minerva's docs say.
    Step,
    /// The epoch number over `schedule`, as minerva's code does (its defect 2).
    Epoch,
}

impl MomentumSchedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "step" => Ok(Self::Step),
            "epoch" => Ok(Self::Epoch),
            other => Err(Error::invalid("momentumSchedule", "'step' or 'epoch'", format!("'{other}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Epoch => "epoch",
        }
    }
}

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
}

pub struct StepOutput {
    pub loss: Tensor,
    /// The loss as read for the NaN check (`StepOptions::check_finite`).
    pub loss_value: Option<f64>,
    pub momentum: f64,
    /// The online projection of the first view, detached.
    pub projection: Tensor,
    /// False when the loss scaler skipped the update (fp16 overflow).
    pub stepped: bool,
}

impl StepOutput {
    /// The collapse monitor: the standard deviation over the batch of the
    /// l2-normalised online projections, averaged over dimensions. About
    /// `1/sqrt(dim)` when healthy, 0 when every image maps to one point.
    /// Computed on demand, off the training step.
    pub fn projection_std(&self) -> Result<f64> {
        let _guard = tch::no_grad_guard();
        let z = self.projection.f_to_kind(tch::Kind::Float)?;
        let zn = z.f_div(&z.f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?)?;
        Ok(zn.f_std_correction([0i64].as_slice(), 1, false)?.f_mean(None)?.f_double_value(&[])?)
    }
}

/// How `training_step_with` runs a step.
pub struct StepOptions<'a> {
    pub precision: Precision,
    pub loss: LossForm,
    /// Required with `Precision::Fp16Mixed`.
    pub scaler: Option<&'a mut GradScaler>,
    /// Check the loss before updating anything and fail with `NonFinite`.
    pub check_finite: bool,
}

impl Default for StepOptions<'_> {
    fn default() -> Self {
        Self { precision: Precision::Full, loss: LossForm::Minerva, scaler: None, check_finite: false }
    }
}

pub struct Byol {
    pub backbone: Network,
    pub projection_head: Network,
    pub prediction_head: Network,
    pub backbone_momentum: Network,
    pub projection_head_momentum: Network,
    pub learning_rate: f64,
    pub schedule_length: i64,
    pub momentum_schedule: MomentumSchedule,
    /// τ at the start of the schedule (minerva and the paper: 0.996; short runs
    /// learn faster with less, e.g. 0.99).
    pub base_momentum: f64,
    /// `nn.Module.training`.
    pub training: bool,
    /// Lightning's `global_step`: optimiser steps taken.
    pub global_step: i64,
    /// Lightning's `current_epoch`.
    pub current_epoch: i64,
    optimizer: Option<Optimizer>,
    device: Device,
    /// The global step whose momentum update is already done: a step that
    /// failed after it (a NaN loss) must not apply it twice when retried.
    pub momentum_updated_at: Option<i64>,
}

pub fn check_schedule(schedule: i64) -> Result<()> {
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
                head
            }
            None => {
                // minerva hard-codes 2048 inputs, which breaks its default ResNet18
                // trunk (512 features); the backbone says what it outputs.
                let features = backbone.probe_feature_dim(64)?;
                Network::head(&Head::byol_blocks(features, 4096, 256), Preprocess::AvgPoolFlatten, device)?
            }
        };
        let prediction_head = match config.prediction_head {
            Some(mut head) => {
                move_to(&mut head, device, "predictionHead")?;
                head
            }
            None => {
                let dim = head_output_dim(&projection_head).unwrap_or(256);
                Network::head(&Head::byol_blocks(dim, 4096, dim), Preprocess::Identity, device)?
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

    /// `p = prediction_head(projection_head(backbone(x)))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, self.training)
    }

    fn forward_with(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_parts(x, train)?.1)
    }

    /// `(z, p)`: the online projection and prediction.
    fn forward_parts(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let y = self.backbone.forward(x, train)?;
        let z = self.projection_head.forward(&y, train)?;
        let p = self.prediction_head.forward(&z, train)?;
        Ok((z, p))
    }

    /// `z = projection_head_momentum(backbone_momentum(x)).detach()`.
    pub fn forward_momentum(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_momentum_with(x, self.training)
    }

    fn forward_momentum_with(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let y = self.backbone_momentum.forward(x, train)?;
        Ok(self.projection_head_momentum.forward(&y, train)?.f_detach()?)
    }

    /// minerva's `configure_optimizers`: plain SGD at `learning_rate`. It
    /// replaces the optimiser `training_step` uses.
    pub fn configure_optimizers(&mut self) -> Result<OptimizerConfig> {
        self.set_optimizer(OptimizerConfig::plain(self.learning_rate))
    }

    pub fn set_optimizer(&mut self, config: OptimizerConfig) -> Result<OptimizerConfig> {
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

    /// One whole training step on the views `(x0, x1)`; always in training mode.
    pub fn training_step(&mut self, x0: &Tensor, x1: &Tensor) -> Result<StepOutput> {
        self.training_step_with(x0, x1, StepOptions::default())
    }

    /// The training step with a precision, a loss form, a loss scaler and a
    /// NaN check: lightly's order (momentum update, four forwards, loss), then
    /// backward and the optimiser step.
    pub fn training_step_with(&mut self, x0: &Tensor, x1: &Tensor, options: StepOptions) -> Result<StepOutput> {
        if x0.size() != x1.size() {
            return Err(Error::invalid("batch[1]", format!("the shape of batch[0], {:?}", x0.size()), format!("{:?}", x1.size())));
        }
        if self.optimizer.is_none() {
            self.configure_optimizers()?;
        }
        let momentum = self.current_momentum()?;
        if self.momentum_updated_at != Some(self.global_step) {
            self.backbone_momentum.params.ema_from(&self.backbone.params, momentum)?;
            self.projection_head_momentum.params.ema_from(&self.projection_head.params, momentum)?;
            self.momentum_updated_at = Some(self.global_step);
        }

        let (loss, projection) = {
            let _autocast = Autocast::new(options.precision, self.device)?;
            let (z_online, p0) = self.forward_parts(x0, true)?;
            let z0 = self.forward_momentum_with(x0, true)?;
            let p1 = self.forward_with(x1, true)?;
            let z1 = self.forward_momentum_with(x1, true)?;
            let loss = options.loss.loss(&p0, &z0, &p1, &z1)?.f_to_kind(tch::Kind::Float)?;
            (loss, z_online.f_detach()?)
        };
        let mut loss_value = None;
        if options.check_finite {
            let value = loss.f_double_value(&[])?;
            if !value.is_finite() {
                return Err(Error::NonFinite { step: self.global_step + 1, value, last_good: self.global_step, saved: String::new() });
            }
            loss_value = Some(value);
        }

        // Shallow clones: the optimiser needs `&mut self.optimizer` while they are held.
        let params: Vec<Tensor> = self.trainable().map(Tensor::shallow_clone).collect();
        let mut stepped = true;
        let grads = match options.scaler {
            Some(scaler) if options.precision == Precision::Fp16Mixed => {
                let scaled = loss.f_mul_scalar(scaler.scale)?;
                let mut grads = Tensor::f_run_backward(&[&scaled], &params, false, false)?;
                stepped = scaler.unscale(&mut grads)?;
                grads
            }
            _ => Tensor::f_run_backward(&[&loss], &params, false, false)?,
        };
        if stepped {
            let optimizer = self.optimizer.as_mut().ok_or_else(|| Error::State("no optimiser".into()))?;
            optimizer.step(params.iter(), grads)?;
        }
        self.global_step += 1;
        Ok(StepOutput { loss: loss.f_detach()?, loss_value, momentum, projection, stepped })
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

    /// Parameters the optimiser steps: the online networks'.
    pub fn trainable(&self) -> impl Iterator<Item = &Tensor> {
        [&self.backbone, &self.projection_head, &self.prediction_head]
            .into_iter()
            .flat_map(|n| n.params.parameters())
            .filter(|t| t.requires_grad())
    }

    /// `state_dict()`, keyed as the PyTorch module's.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        Part::ALL.iter().flat_map(|&p| self.part(p).params.state_dict(p.prefix())).collect()
    }

    /// `load_state_dict(strict=True)`: every key must be there, nothing more.
    pub fn load_state_dict(&self, dict: &[(String, Tensor)]) -> Result<()> {
        let expected: BTreeSet<String> = self.state_dict().into_iter().map(|(k, _)| k).collect();
        let unexpected: Vec<String> = dict.iter().map(|(k, _)| k.clone()).filter(|k| !expected.contains(k)).collect();
        if !unexpected.is_empty() {
            return Err(Error::StateDict(format!("unexpected keys: {}", list(&unexpected))));
        }
        // Check all parts before writing any, so a bad dict changes nothing.
        for part in Part::ALL {
            self.part(part).params.check_fits(dict, part.prefix())?;
        }
        for part in Part::ALL {
            self.part(part).params.load_from(dict, part.prefix())?;
        }
        Ok(())
    }

    pub fn metadata(&self) -> HashMap<String, String> {
        let backbone = match &*self.backbone.arch {
            Arch::ResNet(r) => r.kind.name().to_string(),
            Arch::TorchScript(t) => format!("torchscript:{}", t.path.display()),
            Arch::Head(_) => "head".to_string(),
        };
        let config = serde_json::json!({
            "backbone": backbone,
            "learning_rate": self.learning_rate,
            "schedule": self.schedule_length,
            "momentum_schedule": self.momentum_schedule.name(),
            "base_momentum": self.base_momentum,
            "global_step": self.global_step,
            "current_epoch": self.current_epoch,
        });
        HashMap::from([
            ("format".to_string(), "pt".to_string()),
            ("byol_torch".to_string(), config.to_string()),
        ])
    }

    /// Writes the state dict as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_safetensors(&self.state_dict(), Some(self.metadata()), path)
    }

    /// Loads a model saved by `save` or by PyTorch (`safetensors.torch.save_file(
    /// model.state_dict(), path)`); the architecture is read off the tensors.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let loaded = load_safetensors(path)?;
        let dict = loaded.tensors;
        let meta: serde_json::Value = loaded
            .metadata
            .get("byol_torch")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(serde_json::Value::Null);
        let backbone = match meta.get("backbone").and_then(|v| v.as_str()) {
            Some(s) if s.starts_with("torchscript:") => BackboneSpec::TorchScript(PathBuf::from(&s["torchscript:".len()..])),
            _ => {
                let kind = infer_resnet(&dict).map_err(|m| Error::file(path, m))?;
                // Width and stem are read off conv1's weight: [width, 3, k, k].
                let conv1 = find(&dict, "backbone.0.weight").map(|t| t.size()).unwrap_or_default();
                let options = ResNetOptions { width: conv1.first().copied().unwrap_or(64), small_inputs: conv1.get(2) == Some(&3) };
                BackboneSpec::ResNet(kind, options)
            }
        };
        let head = |prefix: &str, preprocess: Preprocess| -> Result<Network> {
            let blocks = infer_byol_head(&dict, prefix).map_err(|m| Error::file(path, m))?;
            Network::head(&blocks, preprocess, device)
        };
        let config = ByolConfig {
            backbone,
            projection_head: Some(head("projection_head", Preprocess::AvgPoolFlatten)?),
            prediction_head: Some(head("prediction_head", Preprocess::Identity)?),
            learning_rate: meta.get("learning_rate").and_then(|v| v.as_f64()).unwrap_or(DEFAULT_LEARNING_RATE),
            schedule: meta.get("schedule").and_then(|v| v.as_i64()).unwrap_or(DEFAULT_SCHEDULE),
            momentum_schedule: meta
                .get("momentum_schedule")
                .and_then(|v| v.as_str())
                .map(MomentumSchedule::parse)
                .transpose()?
                .unwrap_or(MomentumSchedule::Step),
            device,
            seed: None,
        };
        let mut model = Byol::new(config)?;
        model.load_state_dict(&dict).map_err(|e| Error::file(path, e))?;
        model.global_step = meta.get("global_step").and_then(|v| v.as_i64()).unwrap_or(0);
        model.current_epoch = meta.get("current_epoch").and_then(|v| v.as_i64()).unwrap_or(0);
        model.base_momentum = meta.get("base_momentum").and_then(|v| v.as_f64()).unwrap_or(BASE_MOMENTUM);
        Ok(model)
    }
}

fn move_to(n: &mut Network, device: Device, arg: &str) -> Result<()> {
    if n.device() == device {
        return Ok(());
    }
    if matches!(&*n.arch, Arch::TorchScript(_)) {
        return Err(Error::invalid(
            arg,
            format!("a module on {}", crate::device::device_name(device)),
            format!("a TorchScript module on {} (load it with the same device)", crate::device::device_name(n.device())),
        ));
    }
    n.params.to_device(device)
}

fn head_output_dim(n: &Network) -> Option<i64> {
    match &*n.arch {
        Arch::Head(h) => Some(h.output_dim()),
        _ => None,
    }
}

fn find<'a>(dict: &'a [(String, Tensor)], key: &str) -> Option<&'a Tensor> {
    dict.iter().find(|(k, _)| k == key).map(|(_, t)| t)
}

fn infer_resnet(dict: &[(String, Tensor)]) -> std::result::Result<ResNetKind, String> {
    if find(dict, "backbone.0.weight").is_none() {
        return Err("not a BYOL state dict: it has no 'backbone.0.weight' (a ResNet trunk as minerva builds it)".into());
    }
    if find(dict, "backbone.4.0.conv3.weight").is_some() {
        return Ok(ResNetKind::ResNet50);
    }
    if find(dict, "backbone.4.2.conv1.weight").is_some() {
        return Ok(ResNetKind::ResNet34);
    }
    Ok(ResNetKind::ResNet18)
}

fn infer_byol_head(dict: &[(String, Tensor)], prefix: &str) -> std::result::Result<Vec<crate::heads::BlockSpec>, String> {
    let first = find(dict, &format!("{prefix}.layers.0.weight"));
    let last = find(dict, &format!("{prefix}.layers.3.weight"));
    match (first, last) {
        (Some(a), Some(b)) if a.dim() == 2 && b.dim() == 2 => {
            let (hidden, input) = (a.size()[0], a.size()[1]);
            Ok(Head::byol_blocks(input, hidden, b.size()[0]))
        }
        _ => Err(format!("not a BYOL state dict: '{prefix}.layers.0.weight' and '{prefix}.layers.3.weight' must be 2-D")),
    }
}
