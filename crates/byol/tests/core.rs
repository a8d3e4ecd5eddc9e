//! Behaviour of the core crate, without Node.
use byol::model::{BackboneSpec, Byol, ByolConfig, MomentumSchedule};
use byol::nn::resnet::{from_torchvision_key, to_torchvision_key};
use byol::nn::Network;
use byol::nn::ResNetKind;
use byol::nn::{Head, Preprocess};
use byol::optim::{Optimizer, OptimizerConfig};
use byol::tch::{Device, Kind, Tensor};
use byol::Error;

fn small(schedule: i64) -> Byol {
    let head = |i, h, o, p| Network::head(&Head::byol_blocks(i, h, o), p, Device::Cpu).unwrap();
    Byol::new(ByolConfig {
        backbone: BackboneSpec::ResNet(ResNetKind::ResNet18, Default::default()),
        projection_head: Some(head(512, 16, 8, Preprocess::AvgPoolFlatten)),
        prediction_head: Some(head(8, 16, 8, Preprocess::Identity)),
        schedule,
        seed: Some(0),
        ..ByolConfig::default()
    })
    .unwrap()
}

fn views() -> (Tensor, Tensor) {
    byol::tch::manual_seed(1);
    (Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu)), Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu)))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn deep_copies_share_no_storage() {
    let net = Network::resnet(ResNetKind::ResNet18, Device::Cpu).unwrap();
    let copy = net.deep_copy().unwrap();
    let original = copy.params.get(0).copy();
    let _guard = byol::tch::no_grad_guard();
    let _ = net.params.get(0).shallow_clone().fill_(3.0);
    assert_eq!(max_abs_diff(copy.params.get(0), &original), 0.0);
}

#[test]
fn a_training_step_updates_the_online_network_and_counts_the_step() {
    let mut model = small(100);
    let before = model.backbone.params.get(0).copy();
    let (x0, x1) = views();
    let out = model.training_step(&x0, &x1).unwrap();
    assert!(out.loss.double_value(&[]).is_finite());
    assert_eq!(out.momentum, 0.996);
    assert_eq!(model.global_step(), 1);
    assert!(max_abs_diff(model.backbone.params.get(0), &before) > 0.0);
    // The momentum network only moved by the EMA of an equal copy.
    assert!(max_abs_diff(model.backbone_momentum.params.get(0), &before) < 1e-6);
}

#[test]
fn the_epoch_schedule_follows_the_current_epoch() {
    let mut model = small(10);
    model.momentum_schedule = MomentumSchedule::Epoch;
    model.set_global_step(9).unwrap();
    assert_eq!(model.current_momentum().unwrap(), 0.996);
    model.set_current_epoch(9).unwrap();
    assert_eq!(model.current_momentum().unwrap(), 1.0);
}

#[test]
fn the_state_dict_has_pytorch_keys_and_round_trips_through_a_file() {
    let model = small(100);
    let keys: Vec<String> = model.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys[0], "backbone.0.weight");
    assert!(keys.contains(&"backbone.4.0.bn1.num_batches_tracked".to_string()));
    assert!(keys.contains(&"projection_head_momentum.layers.3.bias".to_string()));
    let dir = std::env::temp_dir().join(format!("byol-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("m.safetensors");
    model.save(&file).unwrap();
    let loaded = Byol::load(&file, Device::Cpu).unwrap();
    for ((k, a), (_, b)) in model.state_dict().iter().zip(loaded.state_dict().iter()) {
        assert_eq!(max_abs_diff(&a.to_kind(Kind::Double), &b.to_kind(Kind::Double)), 0.0, "{k}");
    }
    assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "no temporary file is left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_state_dict_with_a_wrong_shape_is_refused_and_changes_nothing() {
    let model = small(100);
    let before = model.backbone.params.get(0).copy();
    let mut dict = model.state_dict();
    dict[0].1 = Tensor::zeros([1], (Kind::Float, Device::Cpu));
    match model.load_state_dict(&dict) {
        Err(Error::StateDict(m)) => assert!(m.contains("backbone.0.weight"), "{m}"),
        other => panic!("expected a state-dict error, got {other:?}", other = other.err()),
    }
    assert_eq!(max_abs_diff(model.backbone.params.get(0), &before), 0.0);
}

#[test]
fn torchvision_keys_map_both_ways() {
    assert_eq!(from_torchvision_key("layer1.0.conv1.weight").as_deref(), Some("4.0.conv1.weight"));
    assert_eq!(from_torchvision_key("bn1.running_var").as_deref(), Some("1.running_var"));
    assert_eq!(from_torchvision_key("fc.weight"), None);
    assert_eq!(to_torchvision_key("7.1.bn2.bias").as_deref(), Some("layer4.1.bn2.bias"));
}

#[test]
fn sgd_with_momentum_follows_torch_optim_sgd() {
    let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
    let mut sgd = Optimizer::new(OptimizerConfig::sgd(0.1, 0.9, 0.01, false)).unwrap();
    for _ in 0..2 {
        let g = Tensor::from_slice(&[0.5f32, 0.5]);
        sgd.step([&p].into_iter(), vec![g]).unwrap();
    }
    // step 1: d = g + wd p = [0.51, 0.48]; buf = d; p = [0.949, -2.048]
    // step 2: d = [0.50949, 0.47952]; buf = 0.9 buf + d; p -= 0.1 buf
    let expected = [0.949 - 0.1 * (0.9 * 0.51 + 0.50949), -2.048 - 0.1 * (0.9 * 0.48 + 0.47952)];
    let got: Vec<f32> = Vec::<f32>::try_from(&p.detach()).unwrap();
    for (g, e) in got.iter().zip(expected) {
        assert!((*g as f64 - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn bad_hyperparameters_are_range_errors() {
    let bad_lr = Byol::new(ByolConfig { learning_rate: f64::NAN, ..ByolConfig::default() });
    assert!(matches!(bad_lr, Err(Error::OutOfRange { ref arg, .. }) if arg == "learningRate"));
    let bad_schedule = Byol::new(ByolConfig { schedule: 0, ..ByolConfig::default() });
    assert!(matches!(bad_schedule, Err(Error::OutOfRange { ref arg, .. }) if arg == "schedule"));
}

#[test]
fn the_cosine_schedule_starts_at_start_value_and_holds_end_value() {
    use byol::model::cosine_schedule;
    assert_eq!(cosine_schedule(0, 10, 0.996, 1.0, None).unwrap().value, 0.996);
    assert_eq!(cosine_schedule(9, 10, 0.996, 1.0, None).unwrap().value, 1.0);
    assert_eq!(cosine_schedule(50, 10, 0.996, 1.0, None).unwrap().value, 1.0);
    assert!(cosine_schedule(11, 10, 0.0, 1.0, None).unwrap().past_end);
    assert!(!cosine_schedule(10, 10, 0.0, 1.0, None).unwrap().past_end);
}

#[test]
fn the_cosine_schedule_rejects_bad_arguments() {
    use byol::model::cosine_schedule;
    assert!(cosine_schedule(-1, 10, 0.0, 1.0, None).is_err());
    assert!(cosine_schedule(0, 0, 0.0, 1.0, None).is_err());
    assert!(cosine_schedule(0, 10, 0.0, 1.0, Some(0)).is_err());
}

fn toy_loader(workers: usize, seed: u64) -> byol::DataLoader {
    use byol::data::TensorDataset;
    use byol::{DataLoader, LoaderConfig};
    let images = Tensor::arange(6 * 3 * 8 * 8, (Kind::Int64, Device::Cpu)).remainder(256).to_kind(Kind::Uint8).view([6, 3, 8, 8]);
    let dataset = TensorDataset::new(&images, Some((0..6).collect()), false).unwrap();
    let transform = byol::transforms::ByolTransformConfig { input_size: 6, ..Default::default() };
    let config = LoaderConfig {
        batch_size: 4,
        shuffle: true,
        drop_last: false,
        num_workers: workers,
        prefetch: 1,
        seed,
        image_size: None,
        transform: Some(transform),
        normalize: None,
        device: Device::Cpu,
        shard: (0, 1),
    };
    DataLoader::new(std::sync::Arc::new(dataset), config).unwrap()
}

#[test]
fn the_loader_gives_the_same_batches_in_order_whatever_the_worker_count() {
    let run = |workers| {
        let mut loader = toy_loader(workers, 7);
        let mut epoch = loader.epoch();
        let mut out = Vec::new();
        while let Some(b) = epoch.next_batch().unwrap() {
            out.push((b.index, b.labels.clone(), Vec::<f32>::try_from(&b.x0.flatten(0, -1)).unwrap()));
        }
        out
    };
    let one = run(1);
    assert_eq!(one.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(one.iter().map(|b| b.1.len()).sum::<usize>(), 6);
    assert_eq!(one, run(3));
}

#[test]
fn a_loader_epoch_dropped_early_stops_its_workers() {
    let mut loader = toy_loader(2, 1);
    let mut epoch = loader.epoch();
    assert!(epoch.next_batch().unwrap().is_some());
    drop(epoch);
    // A new epoch still works after the early stop.
    let mut again = loader.epoch();
    assert!(again.next_batch().unwrap().is_some());
}

#[test]
fn a_narrow_small_input_resnet_keeps_detail_and_loads_back_from_its_weights() {
    use byol::nn::ResNetOptions;
    let options = ResNetOptions { width: 16, small_inputs: true };
    let backbone = Network::resnet_with(ResNetKind::ResNet18, options, Device::Cpu).unwrap();
    let x = Tensor::rand([2, 3, 28, 28], (Kind::Float, Device::Cpu));
    assert_eq!(backbone.forward(&x, false).unwrap().size(), vec![2, 128, 1, 1]);
    assert_eq!(backbone.params.get(0).size(), vec![16, 3, 3, 3], "conv1 is 3x3");
    let model = Byol::new(ByolConfig { backbone: BackboneSpec::Network(backbone), ..ByolConfig::default() }).unwrap();
    let file = std::env::temp_dir().join(format!("byol-narrow-{}.safetensors", std::process::id()));
    model.save(&file).unwrap();
    let loaded = Byol::load(&file, Device::Cpu).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(max_abs_diff(&loaded.forward_momentum(&x).unwrap(), &model.forward_momentum(&x).unwrap()), 0.0);
}

/// The stem max-pool of the shim against ATen's on `x`: outputs and input
/// gradients bit for bit (a random upstream gradient, so that where backward
/// sends each one, and the order of sums where windows overlap, both show).
fn max_pool_matches_aten(x: &Tensor) {
    let ours_x = x.detach().set_requires_grad(true);
    let aten_x = x.detach().set_requires_grad(true);
    let ours = byol::tensor::shim::max_pool2d(&ours_x, 3, 2, 1).unwrap();
    let aten = aten_x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
    assert_eq!(ours.size(), aten.size());
    assert!(ours.isnan().eq_tensor(&aten.isnan()).all().int64_value(&[]) == 1, "NaNs in the same places");
    assert_eq!(max_abs_diff(&ours.nan_to_num(0.0, None, None), &aten.nan_to_num(0.0, None, None)), 0.0, "outputs");
    byol::tch::manual_seed(5);
    let g = Tensor::randn(ours.size(), (Kind::Float, Device::Cpu));
    // d(sum(y * g))/dy is g exactly.
    (&ours * &g).sum(Kind::Float).backward();
    (&aten * &g).sum(Kind::Float).backward();
    let (a, b) = (ours_x.grad(), aten_x.grad());
    assert!(a.eq_tensor(&b).all().int64_value(&[]) == 1, "input gradients differ by {}", max_abs_diff(&a, &b));
}

#[test]
fn the_stem_max_pool_is_atens_bit_for_bit_values_and_gradients() {
    byol::tch::manual_seed(3);
    for (h, w) in [(32, 32), (16, 16), (7, 9), (2, 2), (33, 18)] {
        max_pool_matches_aten(&Tensor::randn([3, 4, h, w], (Kind::Float, Device::Cpu)));
    }
}

#[test]
fn the_stem_max_pool_breaks_ties_and_takes_nans_as_aten_does() {
    byol::tch::manual_seed(4);
    // Few distinct values: most windows hold their maximum more than once.
    let ties = Tensor::randint(3, [2, 3, 12, 14], (Kind::Float, Device::Cpu)).relu();
    max_pool_matches_aten(&ties);
    let with_nan = Tensor::randn([2, 2, 9, 9], (Kind::Float, Device::Cpu));
    let _ = with_nan.narrow(2, 3, 1).narrow(3, 4, 2).fill_(f64::NAN);
    let _ = with_nan.narrow(2, 0, 1).narrow(3, 0, 1).fill_(f64::NEG_INFINITY);
    max_pool_matches_aten(&with_nan);
    // Windows of nothing but -inf keep ATen's start: their first position inside the input.
    max_pool_matches_aten(&Tensor::full([1, 2, 5, 7], f64::NEG_INFINITY, (Kind::Float, Device::Cpu)));
}

/// The shim's crop-and-resize of uint8 images against ATen's ops on each
/// crop (to float, / 255, bilinear antialiased resize), bit for bit.
fn crop_resize_matches_aten(x: &Tensor, boxes: &[[i64; 4]], size: i64) {
    let ours = byol::tensor::shim::crop_resize(x, boxes, size).unwrap();
    for (n, &[top, left, height, width]) in boxes.iter().enumerate() {
        let crop = x.narrow(0, n as i64, 1).narrow(2, top, height).narrow(3, left, width).to_kind(Kind::Float) / 255.0;
        let aten = crop.internal_upsample_bilinear2d_aa([size, size], false, None, None);
        assert_same(&ours.narrow(0, n as i64, 1), &aten, &format!("crop {n} {:?} -> {size}", boxes[n]));
    }
}

#[test]
fn crop_and_resize_of_uint8_images_is_atens_float_resize_bit_for_bit() {
    byol::tch::manual_seed(8);
    let x = Tensor::randint(256, [6, 3, 256, 200], (Kind::Uint8, Device::Cpu));
    // Shrinking and enlarging, thin and square crops, the whole image, one pixel.
    let boxes = [[0, 0, 256, 200], [10, 19, 37, 181], [100, 3, 20, 20], [5, 150, 250, 50], [255, 199, 1, 1], [40, 40, 64, 64]];
    for size in [64, 96, 17, 224] {
        crop_resize_matches_aten(&x, &boxes, size);
    }
    // Every crop side from 1 to 256 pixels into 64.
    let sides: Vec<[i64; 4]> = (0..6).map(|i| [0, 0, 256 - 51 * i, 200 - 39 * i]).collect();
    crop_resize_matches_aten(&x, &sides, 64);
    for side in 1..=200 {
        crop_resize_matches_aten(&x.narrow(0, 0, 1), &[[256 - side, 0, side, side]], 64);
    }
}

#[test]
fn crop_boxes_reaching_past_the_image_are_range_errors_even_near_the_integer_limit() {
    let x = Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, Device::Cpu));
    for bad in [[i64::MAX, 0, 1, 1], [0, i64::MAX, 1, 1], [1, 0, i64::MAX, 1], [0, 0, 9, 8], [0, 1, 8, 8]] {
        match byol::tensor::shim::crop_resize(&x, &[bad], 4) {
            Err(Error::OutOfRange { .. }) => {}
            other => panic!("box {bad:?}: expected a range error, got {:?}", other.map(|t| t.size())),
        }
    }
}

#[test]
fn decoded_images_are_rgb_planes_of_the_files_pixels() {
    let dir = std::env::temp_dir().join(format!("byol-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A single pixel too: its [3, 1, 1] view of the decoder's buffer counts as
    // contiguous, and must still be copied out of it.
    for (h, w) in [(1, 1), (2, 3), (5, 1)] {
        let image = Tensor::arange(3 * h * w, (Kind::Int64, Device::Cpu))
            .f_mul_scalar(7)
            .unwrap()
            .remainder(256)
            .to_kind(Kind::Uint8)
            .view([3, h, w]);
        let file = dir.join(format!("{h}x{w}.png"));
        byol::data::save_png(&image, &file).unwrap();
        let decoded = byol::data::decode_image(&file).unwrap();
        assert_eq!(decoded.size(), [3, h, w]);
        assert_same(&decoded, &image, &format!("{h}x{w} image"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One class folder of images: 24x24 JPEGs and PNGs (RGB, gray, RGBA) and
/// one 17x30 PNG, largest first so that reused buffers shrink and grow.
fn mixed_images(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let class = dir.join("class");
    std::fs::create_dir_all(&class).unwrap();
    let colour = |x: u32, y: u32| image::Rgb([(x * 11 + y * 3) as u8, (y * 7) as u8, (x * y) as u8]);
    let files = [
        ("a.jpg", image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(24, 24, colour))),
        ("b.png", image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(17, 30, colour))),
        ("c.png", image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(24, 24, |x, y| image::Luma([(x * 10 + y) as u8])))),
        ("d.png", image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(24, 24, |x, y| image::Rgba([x as u8 * 9, y as u8, 3, 200])))),
        ("e.jpg", image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(24, 24, |x, y| colour(y, x)))),
    ];
    files
        .into_iter()
        .map(|(name, image)| {
            let path = class.join(name);
            image.save(&path).unwrap();
            path
        })
        .collect()
}

#[test]
fn images_decoded_into_reused_buffers_are_the_image_crates_rgb_pixels() {
    let dir = std::env::temp_dir().join(format!("byol-reused-buffers-{}", std::process::id()));
    let mut buffers = byol::data::DecodeBuffers::default();
    for file in mixed_images(&dir) {
        let (h, w) = byol::data::decode_rgb_into(&file, &mut buffers).unwrap();
        let expected = image::ImageReader::open(&file).unwrap().decode().unwrap().into_rgb8();
        assert_eq!((w as u32, h as u32), expected.dimensions(), "{file:?}");
        assert!(buffers.pixels() == expected.as_raw().as_slice(), "{file:?}: other pixels");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_loader_batch_holds_each_image_as_decode_image_reads_it_and_resizes_the_odd_sized() {
    use byol::{DataLoader, LoaderConfig};
    let dir = std::env::temp_dir().join(format!("byol-loader-images-{}", std::process::id()));
    let files = mixed_images(&dir);
    let config = LoaderConfig {
        batch_size: files.len(),
        shuffle: false,
        num_workers: 1,
        image_size: Some(24),
        transform: None,
        ..Default::default()
    };
    let mut loader =
        DataLoader::new(std::sync::Arc::new(byol::data::ImageFolder::new(&dir, &["jpg".into(), "png".into()]).unwrap()), config).unwrap();
    let batch = loader.epoch().next_batch().unwrap().unwrap();
    // The loader's images before this change: each file decoded to a tensor,
    // the odd-sized one resized as ATen does, all stacked.
    let expected: Vec<Tensor> = files
        .iter()
        .map(|f| {
            let image = byol::data::decode_image(f).unwrap();
            if image.size() == [3, 24, 24] {
                return image;
            }
            image
                .unsqueeze(0)
                .to_kind(Kind::Float)
                .internal_upsample_bilinear2d_aa([24, 24], false, None, None)
                .round()
                .clamp(0.0, 255.0)
                .to_kind(Kind::Uint8)
                .squeeze_dim(0)
        })
        .collect();
    let expected = Tensor::stack(&expected, 0).to_kind(Kind::Float) / 255.0;
    assert_eq!(batch.x0.size(), [5, 3, 24, 24]);
    assert_same(&batch.x0, &expected, "the batch");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Exact equality of two tensors, with the largest difference in the message.
fn assert_same(a: &Tensor, b: &Tensor, what: &str) {
    assert!(a.eq_tensor(b).all().int64_value(&[]) == 1, "{what} differ by {}", max_abs_diff(a, b));
}

/// The shim's two-view BatchNorm against one at::batch_norm per view on `x`
/// (a channel offset and scale per channel, as activations have): outputs,
/// running statistics, and the gradients of input, weight and bias, bit for bit.
fn views_batch_norm_matches_aten(x: &Tensor) {
    let c = x.size()[1];
    let opts = (Kind::Float, Device::Cpu);
    let w0 = Tensor::rand([c], opts) + 0.5;
    let b0 = Tensor::randn([c], opts);
    let make = || {
        let w = w0.detach().set_requires_grad(true);
        let b = b0.detach().set_requires_grad(true);
        let x = x.detach().set_requires_grad(true);
        (x, w, b, Tensor::randn([c], opts).abs().fill_(0.3), Tensor::ones([c], opts).fill_(1.7))
    };
    let (ox, ow, ob, orm, orv) = make();
    let (ax, aw, ab, arm, arv) = make();
    let ours = byol::tensor::shim::views_batch_norm(&ox, [&ow, &ob, &orm, &orv], 0.1, 1e-5, 2).unwrap();
    let halves: Vec<Tensor> =
        ax.chunk(2, 0).iter().map(|v| v.batch_norm(Some(&aw), Some(&ab), Some(&arm), Some(&arv), true, 0.1, 1e-5, true)).collect();
    let aten = Tensor::cat(&halves, 0);
    assert_same(&ours, &aten, "outputs");
    assert_same(&orm, &arm, "running means");
    assert_same(&orv, &arv, "running variances");
    let g = Tensor::randn(ours.size(), opts);
    (&ours * &g).sum(Kind::Float).backward();
    (&aten * &g).sum(Kind::Float).backward();
    assert_same(&ox.grad(), &ax.grad(), "input gradients");
    assert_same(&ow.grad(), &aw.grad(), "weight gradients");
    assert_same(&ob.grad(), &ab.grad(), "bias gradients");
}

#[test]
fn two_view_batch_norm_is_atens_per_view_calls_bit_for_bit() {
    byol::tch::manual_seed(6);
    let opts = (Kind::Float, Device::Cpu);
    // Channel counts below, at and above the kernel's groups of 8; ResNet18's
    // shapes at 64x64 among them.
    // Planes of 2 to 7 values take the shim's own backward.
    for (n, c, h, w) in [
        (64, 64, 32, 32),
        (64, 64, 16, 16),
        (64, 512, 2, 2),
        (8, 5, 7, 9),
        (4, 19, 3, 3),
        (6, 8, 1, 2),
        (4, 16, 3, 5),
        (10, 40, 1, 7),
        (6, 33, 2, 3),
    ] {
        let x = Tensor::randn([n, c, h, w], opts) * (Tensor::rand([1, c, 1, 1], opts) * 4.0) + Tensor::randn([1, c, 1, 1], opts) * 3.0;
        views_batch_norm_matches_aten(&x);
    }
}

/// Whether the two-view BatchNorm of a float `[shape]` batch with parameters
/// for `channels` channels is refused with an error.
fn two_view_batch_norm_refuses(shape: [i64; 4], channels: i64) -> bool {
    let opts = (Kind::Float, Device::Cpu);
    let x = Tensor::randn(shape, opts);
    let p = || Tensor::ones([channels], opts);
    let (w, b, rm, rv) = (p(), p(), p(), p());
    byol::tensor::shim::views_batch_norm(&x, [&w, &b, &rm, &rv], 0.1, 1e-5, 2).is_err()
}

#[test]
fn two_view_batch_norm_with_parameters_for_other_channels_is_an_error() {
    assert!(two_view_batch_norm_refuses([4, 16, 4, 4], 8));
}

#[test]
fn two_view_batch_norm_of_a_batch_that_does_not_split_evenly_is_an_error() {
    assert!(two_view_batch_norm_refuses([5, 8, 4, 4], 8));
}

/// The threads of this process named `name` (a thread's OpenMP team takes its name).
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|t| std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn releasing_a_threads_openmp_team_ends_its_threads_and_keeps_its_thread_count() {
    let name = "team-release";
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            byol::tensor::device::set_thread_count(2);
            // A parallel fill starts this thread's team.
            let _ = Tensor::ones([1 << 22], (Kind::Float, Device::Cpu));
            let with_team = threads_named(name);
            byol::tensor::device::release_thread_team();
            assert_eq!(threads_named(name), with_team - 1, "the team's other thread has exited");
            assert_eq!(byol::tch::get_num_threads(), 2);
            // The next parallel op starts a team again.
            let _ = Tensor::ones([1 << 22], (Kind::Float, Device::Cpu));
            assert_eq!(threads_named(name), with_team);
        })
        .unwrap()
        .join()
        .unwrap();
}
