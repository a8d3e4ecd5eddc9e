//! `new BYOL(options)`.
use crate::enums::{MomentumSchedule, ResNetName};
use crate::tensor::device;
use byol::model::{BackboneSpec, ByolConfig};
use napi_derive::napi;

/// The options of `new BYOL(...)` the binding receives (modules travel apart).
#[napi(object)]
pub struct ByolOptions {
    /// A ResNet trunk by name, when no backbone module is given.
    pub backbone_name: Option<ResNetName>,
    pub learning_rate: Option<f64>,
    pub schedule: Option<i64>,
    pub momentum_schedule: Option<MomentumSchedule>,
    pub device: Option<String>,
    pub seed: Option<i64>,
}

impl TryFrom<ByolOptions> for ByolConfig {
    type Error = byol::Error;

    fn try_from(o: ByolOptions) -> byol::Result<Self> {
        let d = ByolConfig::default();
        Ok(ByolConfig {
            backbone: match o.backbone_name {
                Some(name) => BackboneSpec::ResNet(name.into(), Default::default()),
                None => d.backbone,
            },
            learning_rate: o.learning_rate.unwrap_or(d.learning_rate),
            schedule: o.schedule.unwrap_or(d.schedule),
            momentum_schedule: o.momentum_schedule.map_or(d.momentum_schedule, Into::into),
            device: device(o.device.as_deref())?,
            seed: o.seed.or(d.seed),
            ..d
        })
    }
}
