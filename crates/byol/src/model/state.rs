//! A BYOL model's state: `state_dict()` with PyTorch's keys, and safetensors
//! files that describe the model they hold, so that `load` rebuilds it.
use crate::error::{Error, Result};
use crate::model::byol::{BackboneSpec, Byol, ByolConfig, Part, BASE_MOMENTUM, DEFAULT_LEARNING_RATE, DEFAULT_SCHEDULE};
use crate::model::schedule::MomentumSchedule;
use crate::nn::params::list;
use crate::nn::{Arch, BlockSpec, Head, Network, Preprocess, ResNetKind, ResNetOptions};
use crate::tensor::{load_safetensors, save_safetensors};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

impl Byol {
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

    /// The metadata of a file of this model written in the folder `dir`. A
    /// TorchScript backbone is named by its path relative to `dir`, so that
    /// the model and its module can move together.
    pub fn metadata(&self, dir: &Path) -> HashMap<String, String> {
        let backbone = match &*self.backbone.arch {
            Arch::ResNet(r) => r.kind.name().to_string(),
            Arch::TorchScript(t) => {
                // (A checkpoint's folder does not exist yet: its parent does.)
                let here = match (std::fs::canonicalize(dir), dir.parent(), dir.file_name()) {
                    (Ok(here), _, _) => here,
                    (Err(_), Some(parent), Some(name)) => {
                        std::fs::canonicalize(parent).map(|p| p.join(name)).unwrap_or_else(|_| dir.to_path_buf())
                    }
                    _ => dir.to_path_buf(),
                };
                let module = pathdiff::diff_paths(&t.path, &here).unwrap_or_else(|| t.path.clone());
                format!("torchscript:{}", module.display())
            }
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
            ("architecture".to_string(), self.architecture().to_string()),
        ])
    }

    /// What a reader needs to rebuild the networks without this package:
    /// backbone kind, width and stem, head dimensions, dtype.
    pub fn architecture(&self) -> serde_json::Value {
        let (kind, width, stem) = match &*self.backbone.arch {
            Arch::ResNet(r) => (
                r.kind.name().to_string(),
                Some(r.options.width),
                Some(if r.options.small_inputs { "small-input (3x3 conv, no max-pool)" } else { "imagenet (7x7 conv, max-pool)" }),
            ),
            Arch::TorchScript(_) => ("torchscript".to_string(), None, None),
            Arch::Head(_) => ("head".to_string(), None, None),
        };
        let dims = |n: &Network| match &*n.arch {
            Arch::Head(h) => serde_json::json!({ "input_dim": h.input_dim(), "output_dim": h.output_dim() }),
            _ => serde_json::Value::Null,
        };
        serde_json::json!({
            "backbone": kind,
            "width": width,
            "stem": stem,
            "projection_head": dims(&self.projection_head),
            "prediction_head": dims(&self.prediction_head),
            "dtype": "float32",
        })
    }

    /// Writes the backbone's weights with torchvision's keys (`conv1.weight`,
    /// `layer1.0.bn1.weight`, ...) as safetensors, atomically.
    pub fn export_backbone(&self, path: &Path) -> Result<()> {
        self.export_backbone_with(path, None)
    }

    /// `export_backbone`, its metadata with the architecture and `provenance`
    /// (a JSON object: where the weights come from).
    pub fn export_backbone_with(&self, path: &Path, provenance: Option<&str>) -> Result<()> {
        let dict = self.backbone.torchvision_state_dict()?;
        let mut meta =
            HashMap::from([("format".to_string(), "pt".to_string()), ("architecture".to_string(), self.architecture().to_string())]);
        if let Some(p) = provenance {
            meta.insert("provenance".to_string(), checked_provenance(p)?);
        }
        save_safetensors(&dict, Some(meta), path)
    }

    /// Writes the state dict as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_with(path, None)
    }

    /// `save`, with `provenance` (a JSON object: the data, image size, split,
    /// recipe and steps the weights come from) in the file's metadata.
    pub fn save_with(&self, path: &Path, provenance: Option<&str>) -> Result<()> {
        let mut meta = self.metadata(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
        if let Some(p) = provenance {
            meta.insert("provenance".to_string(), checked_provenance(p)?);
        }
        save_safetensors(&self.state_dict(), Some(meta), path)
    }

    /// Loads a model saved by `save` or by PyTorch (`safetensors.torch.save_file(
    /// model.state_dict(), path)`); the architecture is read off the tensors.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let loaded = load_safetensors(path)?;
        let dict = loaded.tensors;
        let meta: serde_json::Value =
            loaded.metadata.get("byol_torch").and_then(|s| serde_json::from_str(s).ok()).unwrap_or(serde_json::Value::Null);
        let backbone = match meta.get("backbone").and_then(|v| v.as_str()) {
            // Relative to the model's folder (older files hold absolute paths).
            Some(s) if s.starts_with("torchscript:") => {
                BackboneSpec::TorchScript(path.parent().unwrap_or(Path::new(".")).join(PathBuf::from(&s["torchscript:".len()..])))
            }
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

fn infer_byol_head(dict: &[(String, Tensor)], prefix: &str) -> std::result::Result<Vec<BlockSpec>, String> {
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

/// `provenance` if it is a JSON object, compacted.
fn checked_provenance(p: &str) -> Result<String> {
    match serde_json::from_str::<serde_json::Value>(p) {
        Ok(v) if v.is_object() => Ok(v.to_string()),
        _ => Err(Error::invalid("provenance", "a JSON object", p.chars().take(40).collect::<String>())),
    }
}
