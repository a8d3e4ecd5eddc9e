//! Behaviour of the trainer, optimisers, mixed precision and evaluation.
use byol::data::TensorDataset;
use byol::model::{BackboneSpec, Byol, ByolConfig, StepOptions};
use byol::nn::Network;
use byol::nn::ResNetKind;
use byol::nn::{Head, Preprocess};
use byol::optim::{Optimizer, OptimizerConfig};
use byol::tch::{Device, Kind, Tensor};
use byol::tensor::Precision;
use byol::train::{fit, FitOptions, Fitting, Progress, RunOptions, Stop, TrainerConfig};
use byol::Error;
use byol::{DataLoader, LoaderConfig};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

fn small() -> Byol {
    let head = |i, h, o, p| Network::head(&Head::byol_blocks(i, h, o), p, Device::Cpu).unwrap();
    Byol::new(ByolConfig {
        backbone: BackboneSpec::ResNet(ResNetKind::ResNet18, Default::default()),
        projection_head: Some(head(512, 16, 8, Preprocess::AvgPoolFlatten)),
        prediction_head: Some(head(8, 16, 8, Preprocess::Identity)),
        seed: Some(0),
        ..ByolConfig::default()
    })
    .unwrap()
}

fn loader(n: i64) -> DataLoader {
    let images = Tensor::arange(n * 3 * 12 * 12, (Kind::Int64, Device::Cpu)).remainder(251).to_kind(Kind::Uint8).view([n, 3, 12, 12]);
    let dataset = TensorDataset::new(&images, Some((0..n).map(|i| i % 3).collect()), false).unwrap();
    let transform = byol::transforms::ByolTransformConfig { input_size: 10, ..Default::default() };
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        drop_last: true,
        num_workers: 2,
        prefetch: 2,
        seed: 7,
        image_size: None,
        transform: Some(transform),
        normalize: None,
        device: Device::Cpu,
        shard: (0, 1),
    };
    DataLoader::new(std::sync::Arc::new(dataset), config).unwrap()
}

/// The labels (here each item's index) rank `rank` of `replicas` sees in epoch 0.
fn dealt(n: i64, rank: usize, replicas: usize, drop_last: bool) -> Vec<i64> {
    let images = Tensor::zeros([n, 3, 4, 4], (Kind::Uint8, Device::Cpu));
    let dataset = TensorDataset::new(&images, Some((0..n).collect()), false).unwrap();
    let config = LoaderConfig { batch_size: 2, shuffle: false, drop_last, num_workers: 1, ..Default::default() };
    let loader = DataLoader::new(std::sync::Arc::new(dataset), config).unwrap().sharded(rank, replicas).unwrap();
    let mut epoch = loader.epoch_at(0, 0);
    let mut labels = Vec::new();
    while let Some(b) = epoch.next_batch().unwrap() {
        labels.extend(b.labels);
    }
    labels
}

#[test]
fn a_sharded_epoch_is_dealt_as_distributed_sampler_deals_it() {
    // DistributedSampler(shuffle=False) over 10 items for 4 replicas: padded
    // with the first items to 12, then every 4th from the rank.
    let ranks: Vec<Vec<i64>> = (0..4).map(|r| dealt(10, r, 4, false)).collect();
    assert_eq!(ranks, vec![vec![0, 4, 8], vec![1, 5, 9], vec![2, 6, 0], vec![3, 7, 1]]);
}

#[test]
fn a_sharded_epoch_with_drop_last_drops_the_tail() {
    let ranks: Vec<Vec<i64>> = (0..4).map(|r| dealt(10, r, 4, true)).collect();
    assert_eq!(ranks, vec![vec![0, 4], vec![1, 5], vec![2, 6], vec![3, 7]]);
}

fn state(model: &Mutex<Byol>) -> Vec<(String, Tensor)> {
    model.lock().unwrap().state_dict().into_iter().map(|(k, t)| (k, t.detach().copy())).collect()
}

fn worst(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| (x.to_kind(Kind::Double) - y.to_kind(Kind::Double)).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// A folder in the system's temporary directory, removed with everything in
/// it when the test ends (checkpoints of a model are hundreds of MB).
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::PathBuf;
    fn deref(&self) -> &std::path::PathBuf {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("byol-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    TempDir(d)
}

fn run(model: &Arc<Mutex<Byol>>) -> Fitting {
    Fitting::start(Arc::clone(model)).unwrap()
}

fn quiet() -> impl FnMut(Progress) {
    |_| {}
}

#[test]
fn fit_runs_max_steps_and_counts_epochs_as_lightning() {
    let model = Arc::new(Mutex::new(small()));
    let data = loader(12); // 3 batches per epoch
    let config = TrainerConfig { run: RunOptions { max_steps: Some(7), log_every_n_steps: 1, ..Default::default() }, ..Default::default() };
    let mut steps = Vec::new();
    let mut epochs = Vec::new();
    let result = fit(
        &run(&model),
        &data,
        &config,
        FitOptions { resume_from: None, knn: None, abort: None, ..Default::default() },
        &mut |p: Progress| match p {
            Progress::Step(s) => steps.push(s.step),
            Progress::Epoch { epoch, loss, .. } => epochs.push((epoch, loss)),
            _ => {}
        },
    )
    .unwrap();
    assert_eq!(result.stop, Stop::Finished);
    assert_eq!(steps, (1..=7).collect::<Vec<_>>());
    assert_eq!(epochs.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 1]);
    assert!(epochs.iter().all(|e| e.1.is_finite()));
    let m = model.lock().unwrap();
    assert_eq!((m.global_step(), m.current_epoch()), (7, 2));
}

#[test]
fn a_run_stopped_and_resumed_ends_where_an_uninterrupted_run_ends() {
    byol::tch::set_num_threads(1);
    let dir = tmp("resume");
    let config = TrainerConfig {
        run: RunOptions {
            max_steps: Some(8),
            log_every_n_steps: 1,
            checkpoint_dir: Some(dir.clone()),
            checkpoint_every_n_steps: Some(1),
            ..Default::default()
        },
        optimizer: Some(OptimizerConfig::lars(0.1, 1e-4)),
        lr_schedule: byol::optim::LrSchedule::WarmupCosine,
        warmup_steps: 2,
        ..Default::default()
    };
    // Tests run in parallel and share libtorch's generator: copy one initial state.
    let init = small();
    let like_init = || {
        let m = small();
        m.load_state_dict(&init.state_dict()).unwrap();
        m
    };
    let whole = Arc::new(Mutex::new(like_init()));
    fit(&run(&whole), &loader(12), &config, FitOptions { resume_from: None, knn: None, abort: None, ..Default::default() }, &mut quiet())
        .unwrap();

    let dir2 = tmp("resume2");
    let config2 = TrainerConfig { run: RunOptions { checkpoint_dir: Some(dir2.clone()), ..config.run.clone() }, ..config.clone() };
    let first = Arc::new(Mutex::new(like_init()));
    let abort = AtomicBool::new(false);
    let result = fit(
        &run(&first),
        &loader(12),
        &config2,
        FitOptions { resume_from: None, knn: None, abort: Some(&abort), ..Default::default() },
        &mut |p: Progress| {
            if matches!(p, Progress::Step(ref s) if s.step == 5) {
                abort.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    assert_eq!(result.stop, Stop::Aborted);
    assert_eq!(result.global_step, 5);

    let resumed = Arc::new(Mutex::new(small()));
    fit(
        &run(&resumed),
        &loader(12),
        &config2,
        FitOptions { resume_from: Some(dir2.clone()), knn: None, abort: None, ..Default::default() },
        &mut quiet(),
    )
    .unwrap();
    assert_eq!(resumed.lock().unwrap().global_step(), 8);
    assert_eq!(worst(&state(&whole), &state(&resumed)), 0.0);
    let kept = byol::train::checkpoint::list_checkpoints(&dir2);
    assert_eq!(kept.len(), 3, "the newest three checkpoints are kept");
    assert_eq!(kept[0].0, 8);
}

#[test]
fn a_truncated_checkpoint_falls_back_to_the_previous_one_with_a_warning() {
    let dir = tmp("truncated");
    let config = TrainerConfig {
        run: RunOptions { max_steps: Some(2), checkpoint_dir: Some(dir.clone()), checkpoint_every_n_steps: Some(1), ..Default::default() },
        ..Default::default()
    };
    fit(
        &run(&Arc::new(Mutex::new(small()))),
        &loader(12),
        &config,
        FitOptions { resume_from: None, knn: None, abort: None, ..Default::default() },
        &mut quiet(),
    )
    .unwrap();
    let newest = dir.join("step-00000002").join("model.safetensors");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let model = Arc::new(Mutex::new(small()));
    let config3 = TrainerConfig { run: RunOptions { max_steps: Some(3), ..config.run.clone() }, ..config.clone() };
    let result = fit(
        &run(&model),
        &loader(12),
        &config3,
        FitOptions { resume_from: Some(dir.join("step-00000002")), knn: None, abort: None, ..Default::default() },
        &mut quiet(),
    )
    .unwrap();
    assert!(result.warnings.iter().any(|w| w.contains("step-00000001") && w.contains("truncated")), "{:?}", result.warnings);
    assert_eq!(model.lock().unwrap().global_step(), 3);

    // Every checkpoint broken: an error naming why.
    for (_, p) in byol::train::checkpoint::list_checkpoints(&dir) {
        std::fs::write(p.join("trainer.json"), b"{").unwrap();
    }
    let err = fit(
        &run(&Arc::new(Mutex::new(small()))),
        &loader(12),
        &config3,
        FitOptions { resume_from: Some(dir.clone()), knn: None, abort: None, ..Default::default() },
        &mut quiet(),
    )
    .err()
    .unwrap();
    assert_eq!(err.code(), "ERR_BYOL_CHECKPOINT");
    assert!(err.to_string().contains("no usable checkpoint"), "{err}");
}

#[test]
fn max_epochs_and_max_steps_are_checked() {
    let fail = |c: TrainerConfig| {
        fit(
            &run(&Arc::new(Mutex::new(small()))),
            &loader(8),
            &c,
            FitOptions { resume_from: None, knn: None, abort: None, ..Default::default() },
            &mut quiet(),
        )
        .err()
        .unwrap()
    };
    assert!(matches!(fail(TrainerConfig::default()), Error::InvalidArgument { .. }));
    assert!(matches!(
        fail(TrainerConfig { run: RunOptions { max_epochs: Some(0), ..Default::default() }, ..Default::default() }),
        Error::OutOfRange { .. }
    ));
    assert!(matches!(
        fail(TrainerConfig { run: RunOptions { max_steps: Some(-1), ..Default::default() }, ..Default::default() }),
        Error::OutOfRange { .. }
    ));
}

#[test]
fn adamw_follows_torch_optim_adamw() {
    // torch.optim.AdamW([p], lr=0.1, weight_decay=0.01), two steps with g = [0.5, -1]:
    // p = [1, -2] -> [0.79810101, -1.79610205] (computed with PyTorch 2.11).
    let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
    let mut o = Optimizer::new(OptimizerConfig::adamw(0.1, 0.01)).unwrap();
    for _ in 0..2 {
        o.step([&p].into_iter(), vec![Tensor::from_slice(&[0.5f32, -1.0])]).unwrap();
    }
    let got: Vec<f32> = Vec::<f32>::try_from(&p.detach()).unwrap();
    for (g, e) in got.iter().zip([0.79810101f64, -1.79610205]) {
        assert!((*g as f64 - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn bf16_autocast_runs_the_backbone_in_bfloat16_close_to_float32() {
    let x = Tensor::rand([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let model = small();
    let full = model.backbone.forward(&x, false).unwrap();
    let half = {
        let _autocast = byol::tensor::Autocast::new(Precision::Bf16Mixed, Device::Cpu).unwrap();
        model.backbone.forward(&x, false).unwrap()
    };
    assert_eq!(half.kind(), Kind::BFloat16, "autocast did not switch on");
    let relative = (half.to_kind(Kind::Float) - &full).norm().double_value(&[]) / full.norm().double_value(&[]);
    assert!(relative < 3e-2, "relative difference {relative}");
    // Off again once the guard is gone.
    assert_eq!(model.backbone.forward(&x, false).unwrap().kind(), Kind::Float);
}

#[test]
fn a_mixed_precision_step_trains_and_the_fp16_scaler_skips_overflowing_steps() {
    let x0 = Tensor::rand([8, 3, 16, 16], (Kind::Float, Device::Cpu));
    let x1 = x0.flip([3]);
    let mut m = small();
    let out = m.training_step_with(&x0, &x1, StepOptions { precision: Precision::Bf16Mixed, ..Default::default() }).unwrap();
    assert!(out.loss.double_value(&[]).is_finite() && out.stepped);
    // A scale so large that the scaled gradients overflow: the step is skipped
    // and the scale halves, as torch.amp.GradScaler does.
    let mut scaler = byol::optim::GradScaler { scale: 1e300, ..Default::default() };
    let before = m.backbone.params.get(0).copy();
    let out = m
        .training_step_with(&x0, &x1, StepOptions { precision: Precision::Fp16Mixed, scaler: Some(&mut scaler), ..Default::default() })
        .unwrap();
    assert!(!out.stepped);
    assert_eq!(scaler.scale, 5e299);
    assert_eq!((m.backbone.params.get(0) - before).abs().max().double_value(&[]), 0.0);
}

#[test]
fn knn_accuracy_is_one_on_separable_clusters() {
    let train = Tensor::from_slice(&[1.0f32, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9]).view([4, 2]);
    let test = Tensor::from_slice(&[0.95f32, 0.05, 0.05, 0.95]).view([2, 2]);
    let acc = byol::eval::knn_accuracy(&train, &[0, 0, 1, 1], &test, &[0, 1], &byol::eval::KnnConfig { k: 2, temperature: 0.1 }).unwrap();
    assert_eq!(acc, 1.0);
    let probe = byol::eval::linear_probe(&train, &[0, 0, 1, 1], &test, &[0, 1], &Default::default()).unwrap();
    assert_eq!(probe.test_accuracy, 1.0);
}

#[test]
fn resume_auto_starts_afresh_without_checkpoints_and_goes_on_from_the_newest_with_them() {
    let dir = tmp("auto");
    let config = TrainerConfig {
        run: RunOptions {
            max_steps: Some(3),
            log_every_n_steps: 1,
            checkpoint_dir: Some(dir.clone()),
            checkpoint_every_n_steps: Some(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let auto = || FitOptions { resume_auto: true, ..Default::default() };
    let fresh = Arc::new(Mutex::new(small()));
    let first = fit(&run(&fresh), &loader(12), &config, auto(), &mut quiet()).unwrap();
    assert_eq!(first.global_step, 3, "no checkpoint yet: a run from step 0");
    let longer = TrainerConfig { run: RunOptions { max_steps: Some(5), ..config.run.clone() }, ..config.clone() };
    let again = Arc::new(Mutex::new(small()));
    let mut first_step = None;
    fit(&run(&again), &loader(12), &longer, auto(), &mut |p: Progress| {
        if let Progress::Step(s) = p {
            first_step.get_or_insert(s.step);
        }
    })
    .unwrap();
    assert_eq!(first_step, Some(4), "went on from the checkpoint of step 3");
    assert_eq!(again.lock().unwrap().global_step(), 5);
}
