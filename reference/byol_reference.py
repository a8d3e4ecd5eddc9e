"""The PyTorch reference for byol-torch's parity tests and benchmarks.

No `minerva` release on PyPI has the seed's `BYOL(backbone=None,
learning_rate=0.025, schedule=90000)` (0.3.9b0-0.3.11b0 use a DeepLabV3
backbone and Adam), so the model is put together exactly as the seed
describes from the pieces minerva borrowed from lightly: `BYOLProjectionHead`,
`BYOLPredictionHead`, `NegativeCosineSimilarity`, `update_momentum`,
`deactivate_requires_grad`, `cosine_schedule`, around torchvision's resnet18
trunk (`nn.Sequential(*list(resnet18().children())[:-1])`).

It carries byol-torch's two deliberate fixes (README, "Differences from
minerva"): the projection head takes the trunk's feature count, and the
momentum follows the global step.

Every exchange with the tests goes through safetensors files and JSON on stdout.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torchvision
from safetensors.torch import load_file, save_file
from torch import nn

# BYOL_REFERENCE_STANDINS=1 uses the stand-ins below even where lightly is
# installed: bench/gpu-check --cpu checks that they train exactly as lightly's
# classes do, so that a GPU host without lightly can use them.
STANDINS = os.environ.get("BYOL_REFERENCE_STANDINS") == "1"
try:
    if STANDINS:
        raise ImportError("stand-ins asked for (BYOL_REFERENCE_STANDINS=1)")
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead
    from lightly.models.utils import deactivate_requires_grad, update_momentum
    from lightly.utils.scheduler import cosine_schedule
except ImportError:
    # Only a GPU host lacks lightly: `bench` times the same operations, and
    # reference/gpu_check.py (BYOL_REFERENCE_STANDINS) uses stand-ins checked
    # against lightly on the CPU. Every other parity test needs the real thing.
    if sys.argv[1:2] != ["bench"] and not STANDINS:
        raise
    STANDINS = True

    class _Head(nn.Module):
        def __init__(self, input_dim, hidden_dim, output_dim):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(input_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(),
                nn.Linear(hidden_dim, output_dim))

        def forward(self, x):
            return self.layers(x)

    BYOLProjectionHead = BYOLPredictionHead = _Head

    class NegativeCosineSimilarity(nn.Module):
        def forward(self, x0, x1):
            return -nn.functional.cosine_similarity(x0, x1, 1, 1e-8).mean()

    @torch.no_grad()
    def update_momentum(model, model_ema, m):
        for e, p in zip(model_ema.parameters(), model.parameters()):
            e.data = e.data * m + p.data * (1.0 - m)

    def deactivate_requires_grad(model):
        for p in model.parameters():
            p.requires_grad = False

    def cosine_schedule(step, max_steps, start_value, end_value, period=None):
        if step >= max_steps - 1:
            return end_value
        return end_value - (end_value - start_value) * (math.cos(math.pi * step / (max_steps - 1)) + 1) / 2


class MinervaBYOLProjectionHead(BYOLProjectionHead):
    """minerva's variant: average-pool and flatten the trunk's [N, C, H, W] first."""

    def __init__(self, input_dim=2048, hidden_dim=4096, output_dim=256):
        super().__init__(input_dim, hidden_dim, output_dim)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def preprocess_step(self, x):
        return torch.flatten(self.avgpool(x), start_dim=1)

    def forward(self, x):
        return self.layers(self.preprocess_step(x))


def trunk(name="resnet18"):
    resnet = getattr(torchvision.models, name)()
    return nn.Sequential(*list(resnet.children())[:-1])


class BYOL(nn.Module):
    def __init__(self, backbone=None, learning_rate=0.025, schedule=90000, feature_dim=512):
        super().__init__()
        self.backbone = backbone if backbone is not None else trunk()
        self.projection_head = MinervaBYOLProjectionHead(feature_dim, 4096, 256)
        self.prediction_head = BYOLPredictionHead(256, 4096, 256)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = NegativeCosineSimilarity()
        self.learning_rate = learning_rate
        self.schedule_length = schedule
        self.global_step = 0

    def forward(self, x):
        y = self.backbone(x)
        z = self.projection_head(y)
        return self.prediction_head(z)

    def forward_momentum(self, x):
        y = self.backbone_momentum(x)
        z = self.projection_head_momentum(y)
        return z.detach()

    def training_step(self, batch, batch_idx, ema=True):
        momentum = cosine_schedule(self.global_step, self.schedule_length, 0.996, 1)
        # With gradient accumulation, one EMA step per optimiser step (on the
        # window's first micro-batch), as byol-torch's accumulateGradBatches.
        if ema:
            update_momentum(self.backbone, self.backbone_momentum, m=momentum)
            update_momentum(self.projection_head, self.projection_head_momentum, m=momentum)
        x0, x1 = batch
        p0 = self.forward(x0)
        z0 = self.forward_momentum(x0)
        p1 = self.forward(x1)
        z1 = self.forward_momentum(x1)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


def fit_steps(model, x0, x1, steps):
    """What Lightning does around training_step: zero_grad, backward, step."""
    optimizer = model.configure_optimizers()
    model.train()
    losses = []
    for i in range(steps):
        loss = model.training_step((x0, x1), i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.global_step += 1
        losses.append(loss.item())
    return losses


def cmd_init(a):
    torch.manual_seed(a.seed)
    model = BYOL(backbone=trunk(a.backbone), feature_dim=2048 if a.backbone == "resnet50" else 512)
    save_file(model.state_dict(), a.out)
    print(json.dumps({"keys": list(model.state_dict().keys())}))


def cmd_run(a):
    """Loads a state saved by byol-torch, then records what the tests compare."""
    torch.set_num_threads(a.threads)
    inputs = load_file(a.inputs)
    x, x0, x1 = inputs["x"], inputs["x0"], inputs["x1"]
    state = load_file(a.state)
    model = BYOL(schedule=a.schedule, learning_rate=a.lr)
    model.load_state_dict(state)
    out = {}
    with torch.no_grad():
        model.eval()
        out["eval.backbone"] = model.backbone(x).contiguous()
        out["eval.forward"] = model.forward(x).contiguous()
        out["eval.forward_momentum"] = model.forward_momentum(x).contiguous()
    losses = fit_steps(model, x0, x1, a.steps)
    for k, v in model.state_dict().items():
        out["state." + k] = v.contiguous()
    momentum_model = copy.deepcopy(model)
    update_momentum(momentum_model.backbone, momentum_model.backbone_momentum, m=a.m)
    for k, v in momentum_model.backbone_momentum.state_dict().items():
        out["ema." + k] = v.contiguous()
    save_file(out, a.out)
    print(json.dumps({"losses": losses}))


def cmd_torchvision(a):
    """A torchvision resnet18 state dict and its trunk's features on `x`."""
    torch.manual_seed(a.seed)
    resnet = torchvision.models.resnet18()
    save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, a.out)
    x = load_file(a.inputs)["x"]
    resnet.eval()
    with torch.no_grad():
        features = nn.Sequential(*list(resnet.children())[:-1])(x)
    save_file({"features": features.contiguous()}, a.features)


def cmd_load_check(a):
    """Loads a state saved by byol-torch (strict) and prints forward outputs."""
    model = BYOL()
    model.load_state_dict(load_file(a.state), strict=True)
    x = load_file(a.inputs)["x"]
    model.eval()
    with torch.no_grad():
        save_file({"forward": model.forward(x).contiguous()}, a.out)
    print(json.dumps({"ok": True, "keys": len(model.state_dict())}))


class SmallNet(nn.Module):
    """A tiny trunk for TorchScript tests: [N, 3, H, W] -> [N, 8, 1, 1]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        return self.pool(torch.relu(self.bn(self.conv(x))))


def cmd_torchscript(a):
    """Exports SmallNet with torch.jit.script and records its eval output on `x`."""
    torch.manual_seed(a.seed)
    net = SmallNet()
    scripted = torch.jit.script(net)
    scripted.save(a.out)
    x = load_file(a.inputs)["x"]
    net.eval()
    with torch.no_grad():
        save_file({"y": net(x).contiguous()}, a.features)


def cmd_transforms(a):
    """Applies torchvision.transforms.v2.functional ops to `x` with the given
    per-image parameters, for the transform parity tests."""
    import torchvision.transforms.v2.functional as F

    x = load_file(a.inputs)["x"]
    p = json.loads(a.params)
    per = lambda fn, values: torch.stack([fn(x[i], v) for i, v in enumerate(values)])
    out = {
        "hflip": torch.stack([F.horizontal_flip(x[i]) if f else x[i] for i, f in enumerate(p["flip"])]),
        "grayscale": F.rgb_to_grayscale(x),
        "brightness": per(F.adjust_brightness, p["brightness"]),
        "contrast": per(F.adjust_contrast, p["contrast"]),
        "saturation": per(F.adjust_saturation, p["saturation"]),
        "hue": per(F.adjust_hue, p["hue"]),
        "solarize": torch.stack([F.solarize(x[i], p["threshold"]) if f else x[i] for i, f in enumerate(p["solarize"])]),
        "blur": per(lambda im, s: F.gaussian_blur(im, [p["kernel"], p["kernel"]], [s, s]), p["sigma"]),
        "normalize": F.normalize(x, p["mean"], p["std"]),
        "resized_crop": torch.stack([F.resized_crop(x[i], *box, [p["size"], p["size"]], antialias=True) for i, box in enumerate(p["boxes"])]),
    }
    save_file({k: v.contiguous() for k, v in out.items()}, a.out)


def cmd_make_images(a):
    """A small ImageFolder for the data tests: RGB JPEGs of two sizes, gray,
    RGBA and 16-bit PNGs, and one truncated JPEG."""
    import os

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    cats, dogs = os.path.join(a.out, "cats"), os.path.join(a.out, "dogs", "nested")
    os.makedirs(cats, exist_ok=True)
    os.makedirs(dogs, exist_ok=True)
    for i, size in enumerate([(40, 30), (64, 64), (33, 50)]):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(os.path.join(cats, f"rgb{i}.jpg"), quality=90)
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8), mode="L").save(os.path.join(dogs, "gray.png"))
    Image.fromarray(rng.integers(0, 255, (32, 32, 4), dtype=np.uint8), mode="RGBA").save(os.path.join(dogs, "rgba.png"))
    Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16)).save(os.path.join(dogs, "deep.png"))
    with open(os.path.join(cats, "rgb0.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(cats, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 3])
    with open(os.path.join(cats, "notes.txt"), "w") as f:
        f.write("not an image")


def cmd_bench_images(a):
    """JPEGs for the data benchmark: smooth colour fields with texture, 256x256."""
    import os

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(a.out, "all"), exist_ok=True)
    yy, xx = np.mgrid[0:a.size, 0:a.size] / a.size
    for i in range(a.count):
        f = rng.uniform(1, 6, 3)
        img = np.stack([np.sin(f[c] * (xx + yy * rng.uniform()) * np.pi + rng.uniform(0, 6)) for c in range(3)], -1)
        img = (img * 0.4 + 0.5 + rng.normal(0, 0.05, img.shape)).clip(0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(os.path.join(a.out, "all", f"{i:05d}.jpg"), quality=90)


def byol_views_v2(input_size):
    """torchvision.transforms.v2 equivalent of BYOLTransform's two views."""
    from torchvision.transforms import v2

    def view(blur, solarize):
        return v2.Compose([
            v2.RandomResizedCrop(input_size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(int(round(input_size * 0.1)) | 1, sigma=(0.1, 2.0))], p=blur),
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomSolarize(0.5, p=solarize),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

    return view(1.0, 0.0), view(0.1, 0.2)


class JpegFolder(torch.utils.data.Dataset):
    def __init__(self, root, input_size):
        import os

        self.files = sorted(os.path.join(root, "all", f) for f in os.listdir(os.path.join(root, "all")))
        self.v1, self.v2 = byol_views_v2(input_size)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from torchvision.io import decode_jpeg, read_file

        img = decode_jpeg(read_file(self.files[i]))
        return self.v1(img), self.v2(img)


def peak_rss_mib(workers):
    """Peak RSS of this process, plus its largest finished child (a DataLoader worker) with `workers`."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if workers:
        kib += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib / 1024


def cmd_bench_data(a):
    """Images/s of decode + both views with a torch DataLoader, then of the views alone."""
    torch.set_num_threads(1)
    ds = JpegFolder(a.root, a.size)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, num_workers=a.workers, shuffle=True, drop_last=False,
                                         persistent_workers=False)
    n = 0
    start = time.perf_counter()
    for _ in range(a.epochs):
        for x0, x1 in loader:
            n += x0.shape[0]
    full = n / (time.perf_counter() - start)
    from torchvision.io import decode_jpeg, read_file

    images = [decode_jpeg(read_file(f)) for f in ds.files[: a.batch * 4]]
    start = time.perf_counter()
    for img in images:
        ds.v1(img), ds.v2(img)
    alone = len(images) / (time.perf_counter() - start)
    print(json.dumps({"pipeline_images_per_s": full, "augment_images_per_s": alone, "peak_rss_mib": peak_rss_mib(workers=True)}))


def cmd_schedule(a):
    grid = json.loads(a.grid)
    values = []
    for step, max_steps, start, end, period in grid:
        values.append(float(cosine_schedule(step, max_steps, start, end, period)))
    print(json.dumps({"values": values}))


def cmd_bench(a):
    """Steps/s of the reference training step: ResNet18, given batch and size, CPU."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = BYOL(schedule=90000).to(device)
    optimizer = model.configure_optimizers()
    model.train()
    x0 = torch.randn(a.batch, 3, a.size, a.size, device=device)
    x1 = torch.randn(a.batch, 3, a.size, a.size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(i):
        loss = model.training_step((x0, x1), i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.global_step += 1
        return loss

    for i in range(a.warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(a.steps):
        step(i)
    sync()
    elapsed = time.perf_counter() - start
    print(json.dumps({"steps_per_s": a.steps / elapsed, "peak_rss_mib": peak_rss_mib(workers=False), "threads": torch.get_num_threads()}))


def cmd_bench_train(a):
    """Images/s of the whole loop as Lightning runs it: JPEG decode and both
    views in DataLoader workers, momentum update, step; then the peak RSS."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(JpegFolder(a.root, a.size), batch_size=a.batch, num_workers=a.workers,
                                         shuffle=True, drop_last=True, persistent_workers=True, prefetch_factor=4)
    model = BYOL(schedule=90000)
    optimizer = model.configure_optimizers()
    model.train()
    step = 0
    start = None
    while step < a.steps:
        for batch in loader:
            loss = model.training_step(batch, step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.global_step += 1
            loss.item()
            step += 1
            if step == a.warmup:
                start = time.perf_counter()
            if step >= a.steps:
                break
    elapsed = time.perf_counter() - start
    print(json.dumps({"images_per_s": (a.steps - a.warmup) * a.batch / elapsed, "peak_rss_mib": peak_rss_mib(workers=True)}))


def lr_at(schedule, base, step, warmup, total):
    """byol-torch's learning-rate schedules (linear warm-up, then cosine to 0)."""
    if schedule == "constant":
        return base
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model, r):
    """The PyTorch optimisers byol-torch's recipes stand for: torch.optim.SGD,
    lightly's LARS (biases and norms in a group without weight decay, which
    lightly's LARS also leaves unadapted) and torch.optim.AdamW."""
    params = [p for p in model.parameters() if p.requires_grad]
    if r["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=r["lr"], momentum=r["momentum"], weight_decay=r["weight_decay"], nesterov=r["nesterov"])
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=r["lr"], weight_decay=r["weight_decay"])
    from lightly.utils.lars import LARS
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return LARS([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=r["lr"], momentum=r["momentum"],
                weight_decay=r["weight_decay"], trust_coefficient=r.get("trust_coefficient", 1e-3))


def cmd_train(a):
    """Lightning's loop around minerva's BYOL with a recipe, over uint8 images
    in order (no augmentation, both views the image): what Trainer.fit does."""
    torch.set_num_threads(a.threads)
    r = json.loads(a.recipe)
    images = load_file(a.images)["x"].float() / 255.0
    model = BYOL(schedule=r["schedule"])
    model.load_state_dict(load_file(a.state))
    optimizer = make_optimizer(model, r)
    model.train()
    losses = []
    batches = images.shape[0] // r["batch"]
    k = r.get("accumulate", 1)
    for step in range(r["steps"]):
        for g in optimizer.param_groups:
            g["lr"] = lr_at(r["lr_schedule"], r["lr"], step, r["warmup"], r["steps"])
        optimizer.zero_grad()
        window = []
        for micro in range(k):
            b = (step * k + micro) % batches
            x = images[b * r["batch"]:(b + 1) * r["batch"]]
            loss = model.training_step((x, x), b, ema=micro == 0)
            if r["loss"] == "paper":
                loss = 4 * loss + 4
            # Lightning's accumulate_grad_batches divides each loss by k.
            (loss / k if k > 1 else loss).backward()
            window.append(loss.item())
        optimizer.step()
        model.global_step += 1
        losses.append(sum(window) / len(window))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, a.out)
    print(json.dumps({"losses": losses}))


def cmd_export_check(a):
    """Loads an exported backbone into torchvision's resnet18 (strict=False)
    and saves the average-pooled trunk features of `x`."""
    resnet = torchvision.models.resnet18()
    result = resnet.load_state_dict(load_file(a.backbone), strict=False)
    resnet.eval()
    with torch.no_grad():
        features = torch.flatten(nn.Sequential(*list(resnet.children())[:-1])(load_file(a.inputs)["x"]), 1)
    save_file({"features": features.contiguous()}, a.out)
    print(json.dumps({"missing": result.missing_keys, "unexpected": result.unexpected_keys}))


def cmd_knn(a):
    """lightly's knn_predict on features from byol-torch: top-1 accuracy."""
    from lightly.utils.benchmarking import knn_predict
    f = load_file(a.features)
    bank = nn.functional.normalize(f["train"], dim=1).t().contiguous()
    test = nn.functional.normalize(f["test"], dim=1)
    classes = int(max(f["train_labels"].max(), f["test_labels"].max())) + 1
    pred = knn_predict(test, bank, f["train_labels"].long(), classes, a.k, a.t)
    print(json.dumps({"accuracy": (pred[:, 0] == f["test_labels"].long()).float().mean().item()}))


def sync_batchnorm_(model):
    """torch.nn.SyncBatchNorm's training-mode arithmetic on any device: its
    stock module refuses CPU tensors ("SyncBatchNorm expected input tensor to
    be on GPU"), and its CUDA kernels (batch_norm_stats, ...) have no CPU
    version. The batch statistics of all ranks through the differentiable
    all_reduce of torch.distributed.nn, so that backward reduces the matching
    terms; the running statistics moved by them, the variance unbiased over
    the whole count."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_reduce

    world = dist.get_world_size()

    def synced(bn):
        plain = bn.forward

        def forward(x):
            if not bn.training:
                return plain(x)
            bn.num_batches_tracked.add_(1)
            dims = [0] + list(range(2, x.dim()))
            shape = [1] * x.dim()
            shape[1] = x.shape[1]
            count = float(x.numel() // x.shape[1] * world)
            mean = all_reduce(x.sum(dims)) / count
            centred = x - mean.view(shape)
            var = all_reduce((centred * centred).sum(dims)) / count
            invstd = (var + bn.eps).rsqrt()
            y = centred * invstd.view(shape) * bn.weight.view(shape) + bn.bias.view(shape)
            with torch.no_grad():
                unbiased = var * (count / max(count - 1.0, 1.0))
                bn.running_mean.mul_(1.0 - bn.momentum).add_(mean * bn.momentum)
                bn.running_var.mul_(1.0 - bn.momentum).add_(unbiased * bn.momentum)
            return y

        bn.forward = forward

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            synced(m)


def _ddp_rank(rank, a, port):
    """One rank of Lightning's DDP strategy around minerva's BYOL: the model
    wrapped in DistributedDataParallel (Lightning wraps the LightningModule
    and calls training_step through the wrapper's forward), a
    DistributedSampler, Gloo over 127.0.0.1."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.world)
    images = load_file(a.images)["x"].float() / 255.0
    model = BYOL(learning_rate=a.lr)
    model.load_state_dict(load_file(a.state))
    if a.sync_batchnorm:
        sync_batchnorm_(model)

    class Step(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x0, x1):
            return self.m.training_step((x0, x1), 0, ema=getattr(self.m, "ema", True))

    ddp = DistributedDataParallel(Step(model))
    if a.optimizer == "lars":
        optimizer = make_optimizer(model, {"optimizer": "lars", "lr": a.lr, "momentum": 0.9, "weight_decay": 1.5e-6})
    else:
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=a.lr)
    dataset = TensorDataset(images)
    sampler = DistributedSampler(dataset, num_replicas=a.world, rank=rank, shuffle=False, drop_last=False)
    loader = DataLoader(dataset, batch_size=a.batch, sampler=sampler)
    model.train()
    import contextlib

    k = a.accumulate
    losses, epoch, window = [], 0, []
    while len(losses) < a.steps:
        sampler.set_epoch(epoch)
        for i, (x,) in enumerate(loader):
            first, last = i % k == 0, i % k == k - 1 or i == len(loader) - 1
            if first:
                optimizer.zero_grad()
            model.ema = first
            # DDP's no_sync: gradients all-reduced only with the window's last micro-batch.
            with contextlib.nullcontext() if last else ddp.no_sync():
                loss = ddp(x, x)
                (loss / k if k > 1 else loss).backward()
            window.append(loss.item())
            if not last:
                continue
            optimizer.step()
            model.global_step += 1
            losses.append(sum(window) / len(window))
            window = []
            if len(losses) == a.steps:
                break
        epoch += 1
    if rank == 0:
        state = {k.replace(".module.", "."): v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, a.out)
        with open(a.out + ".json", "w") as f:
            json.dump({"losses": losses}, f)
    dist.destroy_process_group()


def cmd_ddp_train(a):
    """`world` processes of DistributedDataParallel training (plain SGD at
    `lr`, constant; both views the image): rank 0's losses and final state."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_rank, args=(a, port), nprocs=a.world, start_method="fork")
    with open(a.out + ".json") as f:
        print(json.dumps(json.load(f)))


def cmd_jit_check(a):
    """Runs a TorchScript file byol-torch exported on `x` with torch.jit.load."""
    module = torch.jit.load(a.module)
    module.eval()
    with torch.no_grad():
        y = module(load_file(a.inputs)["x"])
    save_file({"y": y.contiguous()}, a.out)
    print(json.dumps({"shape": list(y.shape)}))


def cmd_onnx_check(a):
    """Turns a TorchScript file byol-torch exported into ONNX, as the README
    shows (torch.onnx.export's TorchScript-based exporter, with a dynamic batch
    axis), and runs it with onnxruntime on `x`."""
    import onnxruntime

    module = torch.jit.load(a.module).eval()
    x = load_file(a.inputs)["x"]
    onnx_file = a.out[: -len(".safetensors")] + ".onnx"
    import warnings
    with warnings.catch_warnings():
        # Its notice that torch.export is the new default, which takes no TorchScript.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x[:1],), onnx_file, dynamo=False, input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}})
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"images": x.numpy()})
    save_file({"y": torch.from_numpy(y).contiguous()}, a.out)
    print(json.dumps({"shape": list(y.shape)}))


def cmd_tb_read(a):
    """What TensorBoard reads from a run folder: every scalar series, and the image and text tags."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(a.dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
    texts = {t: acc.Tensors(t)[0].tensor_proto.string_val[0].decode() for t in tags["tensors"]}
    images = {t: [acc.Images(t)[0].width, acc.Images(t)[0].height] for t in tags["images"]}
    # The HParams dashboard's records, decoded as its plugin decodes them.
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from google.protobuf.json_format import MessageToDict
    hparams, metrics, types = {}, [], {}
    for tag, content in acc.PluginTagToContent("hparams").items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            hparams = MessageToDict(data.session_start_info)["hparams"]
        if data.HasField("experiment"):
            metrics = [m.name.tag for m in data.experiment.metric_infos]
            types = {h.name: api_pb2.DataType.Name(h.type) for h in data.experiment.hparam_infos}
    print(json.dumps({"scalars": scalars, "texts": texts, "images": images,
                      "hparams": hparams, "hparam_types": types, "hparam_metrics": metrics}))


def cmd_npy_check(a):
    """What numpy reads from byol-torch's .npy embeddings, against its safetensors ones."""
    import numpy as np

    features = np.load(a.npy)
    labels = np.load(a.npy[: -len(".npy")] + ".labels.npy")
    ref = load_file(a.safetensors)
    print(json.dumps({"shape": list(features.shape), "dtype": str(features.dtype),
                      "max_diff": float(np.abs(features - ref["features"].numpy()).max()),
                      "labels_equal": bool((labels == ref["labels"].numpy()).all())}))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("init"); s.add_argument("--out", required=True); s.add_argument("--seed", type=int, default=0); s.add_argument("--backbone", default="resnet18")
    s = sub.add_parser("run")
    s.add_argument("--state", required=True); s.add_argument("--inputs", required=True); s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=5); s.add_argument("--lr", type=float, default=0.025)
    s.add_argument("--schedule", type=int, default=90000); s.add_argument("--m", type=float, default=0.9)
    s.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("torchvision"); s.add_argument("--out", required=True); s.add_argument("--inputs", required=True); s.add_argument("--features", required=True); s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("load-check"); s.add_argument("--state", required=True); s.add_argument("--inputs", required=True); s.add_argument("--out", required=True)
    s = sub.add_parser("schedule"); s.add_argument("--grid", required=True)
    s = sub.add_parser("bench-images"); s.add_argument("--out", required=True); s.add_argument("--count", type=int, default=256); s.add_argument("--size", type=int, default=256)
    s = sub.add_parser("bench-data"); s.add_argument("--root", required=True); s.add_argument("--size", type=int, default=224)
    s.add_argument("--batch", type=int, default=32); s.add_argument("--workers", type=int, default=2); s.add_argument("--epochs", type=int, default=2)
    s = sub.add_parser("make-images"); s.add_argument("--out", required=True)
    s = sub.add_parser("transforms"); s.add_argument("--inputs", required=True); s.add_argument("--params", required=True); s.add_argument("--out", required=True)
    s = sub.add_parser("torchscript"); s.add_argument("--out", required=True); s.add_argument("--inputs", required=True); s.add_argument("--features", required=True); s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("train"); s.add_argument("--state", required=True); s.add_argument("--images", required=True)
    s.add_argument("--recipe", required=True); s.add_argument("--out", required=True); s.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("export-check"); s.add_argument("--backbone", required=True); s.add_argument("--inputs", required=True); s.add_argument("--out", required=True)
    s = sub.add_parser("bench-train"); s.add_argument("--root", required=True); s.add_argument("--size", type=int, default=64)
    s.add_argument("--batch", type=int, default=32); s.add_argument("--workers", type=int, default=1); s.add_argument("--threads", type=int, default=2)
    s.add_argument("--steps", type=int, default=30); s.add_argument("--warmup", type=int, default=5)
    s = sub.add_parser("knn"); s.add_argument("--features", required=True); s.add_argument("--k", type=int, default=200); s.add_argument("--t", type=float, default=0.1)
    s = sub.add_parser("ddp-train"); s.add_argument("--state", required=True); s.add_argument("--images", required=True); s.add_argument("--out", required=True)
    s.add_argument("--world", type=int, default=2); s.add_argument("--batch", type=int, default=4); s.add_argument("--steps", type=int, default=5)
    s.add_argument("--lr", type=float, default=1e-3); s.add_argument("--sync-batchnorm", action="store_true")
    s.add_argument("--accumulate", type=int, default=1); s.add_argument("--optimizer", choices=["sgd", "lars"], default="sgd")
    s = sub.add_parser("jit-check"); s.add_argument("--module", required=True); s.add_argument("--inputs", required=True); s.add_argument("--out", required=True)
    s = sub.add_parser("onnx-check"); s.add_argument("--module", required=True); s.add_argument("--inputs", required=True); s.add_argument("--out", required=True)
    s = sub.add_parser("tb-read"); s.add_argument("--dir", required=True)
    s = sub.add_parser("npy-check"); s.add_argument("--npy", required=True); s.add_argument("--safetensors", required=True)
    s = sub.add_parser("bench")
    s.add_argument("--batch", type=int, default=32); s.add_argument("--size", type=int, default=64)
    s.add_argument("--steps", type=int, default=20); s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--threads", type=int, default=2); s.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    {"init": cmd_init, "run": cmd_run, "torchvision": cmd_torchvision, "load-check": cmd_load_check,
     "schedule": cmd_schedule, "torchscript": cmd_torchscript, "transforms": cmd_transforms, "make-images": cmd_make_images, "bench-images": cmd_bench_images, "bench-data": cmd_bench_data, "bench": cmd_bench,
     "train": cmd_train, "bench-train": cmd_bench_train, "export-check": cmd_export_check, "knn": cmd_knn,
     "ddp-train": cmd_ddp_train, "npy-check": cmd_npy_check, "jit-check": cmd_jit_check, "onnx-check": cmd_onnx_check, "tb-read": cmd_tb_read}[a.cmd](a)


if __name__ == "__main__":
    main(sys.argv[1:])
