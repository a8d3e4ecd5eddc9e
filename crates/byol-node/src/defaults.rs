//! The core's defaults of the options the package documents, for the test
//! that checks every "Default `x`" of the documentation against them.
use byol::eval::{KnnConfig, ProbeConfig};
use byol::model::ByolConfig;
use byol::nn::{HeadDims, ResNetOptions};
use byol::train::TrainerOptions;
use byol::transforms::ByolTransformConfig;
use byol::LoaderConfig;
use napi_derive::napi;
use serde_json::json;

/// `{ options object: { option: default } }`, as JSON.
#[napi]
pub fn documented_defaults() -> String {
    let t = TrainerOptions::default();
    let c = byol::train::TrainerConfig::default();
    let o = byol::optim::OptimizerConfig::sgd(0.0, 0.0, 0.0, false);
    let x = ByolTransformConfig::default();
    let (mean, std) = x.normalize.clone().unwrap_or_default();
    let l = LoaderConfig::default();
    let k = KnnConfig::default();
    let p = ProbeConfig::default();
    let b = ByolConfig::default();
    let r = ResNetOptions::default();
    json!({
        "TrainerOptions": {
            "device": "cpu", "precision": t.run.precision.name(), "logEveryNSteps": t.run.log_every_n_steps,
            "keepCheckpoints": t.run.keep_checkpoints, "seed": t.run.seed, "recipe": "minerva",
            "warmupSteps": c.warmup_steps, "channelsLast": t.run.channels_last,
            "strategy": t.run.strategy.name(), "backend": t.run.backend.name(), "collectiveTimeout": t.run.collective_timeout, "syncBatchNorm": t.run.sync_batch_norm,
            "accumulateGradBatches": t.run.accumulate_grad_batches, "devices": t.run.devices,
            "logger": t.run.logger.iter().map(|l| l.name()).collect::<Vec<_>>(),
        },
        "OptimizerConfig": {
            "dampening": o.dampening, "nesterov": o.nesterov, "trustCoefficient": o.trust_coefficient,
            "betas": [o.betas.0, o.betas.1], "eps": o.eps,
        },
        "ByolTransformOptions": {
            "inputSize": x.input_size, "cjProb": x.cj_prob, "cjStrength": x.cj_strength, "cjBright": x.cj_bright,
            "cjContrast": x.cj_contrast, "cjSat": x.cj_sat, "cjHue": x.cj_hue, "minScale": x.min_scale, "maxScale": x.max_scale,
            "ratio": [x.ratio.0, x.ratio.1], "randomGrayScale": x.random_gray_scale, "hfProb": x.hf_prob,
            "sigmas": [x.sigmas.0, x.sigmas.1], "solarizeThreshold": x.solarize_threshold, "seed": x.seed,
            "normalize": { "mean": mean, "std": std },
            "view1": { "gaussianBlur": x.view1.gaussian_blur, "solarization": x.view1.solarization },
            "view2": { "gaussianBlur": x.view2.gaussian_blur, "solarization": x.view2.solarization },
        },
        "LoaderOptions": {
            "batchSize": l.batch_size, "shuffle": l.shuffle, "dropLast": l.drop_last, "prefetch": l.prefetch,
            "seed": l.seed, "device": "cpu",
        },
        "KnnOptions": { "k": k.k, "temperature": k.temperature },
        "LinearProbeOptions": { "epochs": p.epochs, "batchSize": p.batch_size, "lr": p.lr, "weightDecay": p.weight_decay, "seed": p.seed },
        "BYOLOptions": { "learningRate": b.learning_rate, "schedule": b.schedule, "momentumSchedule": b.momentum_schedule.name() },
        "ResNetOptions": { "width": r.width, "smallInputs": r.small_inputs },
        "BYOLProjectionHead": dims(HeadDims::PROJECTION),
        "BYOLPredictionHead": dims(HeadDims::PREDICTION),
    })
    .to_string()
}

fn dims(d: HeadDims) -> serde_json::Value {
    json!({ "inputDim": d.input_dim, "hiddenDim": d.hidden_dim, "outputDim": d.output_dim })
}
