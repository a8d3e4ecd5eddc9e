"""PyTorch's side of bench/gpu-check: Lightning's loop on CUDA (or the CPU),
in fp32 with TF32 off and cuDNN deterministic, or in AMP (autocast, with
GradScaler for fp16), optionally channels_last; and the AMP step's
throughput with its FLOPs counted by torch.utils.flop_counter.

Usage: python reference/gpu_check.py {train,bench} ...; JSON on stdout.
Where lightly is not installed (a GPU host), the model uses
byol_reference.py's stand-ins, which `bench/gpu-check --cpu` checks against
lightly's classes (`--standins` forces them).
"""
import argparse
import json
import os
import sys
import time

if "--standins" in sys.argv or os.environ.get("BYOL_REFERENCE_STANDINS") == "1":
    os.environ["BYOL_REFERENCE_STANDINS"] = "1"
else:
    try:
        import lightly  # noqa: F401
    except ImportError:
        os.environ["BYOL_REFERENCE_STANDINS"] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byol_reference as ref  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

AUTOCAST = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def exact_math():
    """The switches byol-torch's side sets too (cudaBackends): fp32 kept fp32."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def prepare(model, device, channels_last):
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class Step:
    """One optimiser step as Lightning runs it for a precision: autocast
    around training_step, and for fp16 a GradScaler around backward and the
    optimiser's step."""

    def __init__(self, model, optimizer, device, precision):
        self.model, self.optimizer, self.device = model, optimizer, torch.device(device)
        self.dtype = AUTOCAST[precision]
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "16-mixed" else None

    def __call__(self, x0, x1, index, paper=False):
        self.optimizer.zero_grad()
        if self.dtype is None:
            loss = self.model.training_step((x0, x1), index)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                loss = self.model.training_step((x0, x1), index)
        if paper:
            # The BYOL paper's (2 - 2cos) + (2 - 2cos), as byol-torch's loss: 'paper'.
            loss = 4 * loss + 4
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.model.global_step += 1
        return loss


def cmd_train(a):
    """byol_reference.py's `train` (uint8 images in order, both views the
    image, plain SGD) on a device, at a precision."""
    exact_math()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    images = load_file(a.images)["x"].float().div(255.0).to(device)
    model = ref.BYOL(schedule=90000)
    model.load_state_dict(load_file(a.state))
    model = prepare(model, device, a.channels_last)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=a.lr)
    step = Step(model, optimizer, device, a.precision)
    model.train()
    losses, scales = [], []
    batches = images.shape[0] // a.batch
    for i in range(a.steps):
        b = i % batches
        x = images[b * a.batch:(b + 1) * a.batch]
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        losses.append(step(x, x, b, paper=a.loss == "paper").item())
        if step.scaler is not None:
            scales.append(step.scaler.get_scale())
    if a.out:
        save_file({k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}, a.out)
    print(json.dumps({"losses": losses, "scales": scales, "standins": ref.STANDINS}))


def step_flops(backbone, size, device):
    """FLOPs of one training step of one image pair, as torch.utils.flop_counter
    counts them (convolutions and matrix products, forward and backward,
    the momentum branch's forwards included), at batch 2 and halved."""
    from torch.utils.flop_counter import FlopCounterMode

    model = ref.BYOL(backbone=ref.trunk(backbone), feature_dim=2048 if backbone == "resnet50" else 512).to(device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(2, 3, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        Step(model, optimizer, device, "32")(x, x, 0)
    return counter.get_total_flops() / 2


def cmd_bench(a):
    """Images/s of the AMP training step on resident batches, after warm-up,
    and the FLOPs of one image's step."""
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.device.startswith("cuda")
    device = torch.device(a.device)
    model = ref.BYOL(backbone=ref.trunk(a.backbone), feature_dim=2048 if a.backbone == "resnet50" else 512, schedule=90000)
    model = prepare(model, device, a.channels_last)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    step = Step(model, optimizer, device, a.precision)
    model.train()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    x0 = torch.rand(a.batch, 3, a.size, a.size, device=device).contiguous(memory_format=fmt)
    x1 = torch.rand(a.batch, 3, a.size, a.size, device=device).contiguous(memory_format=fmt)
    for i in range(a.warmup):
        step(x0, x1, i).item()
    start = time.perf_counter()
    for i in range(a.steps):
        loss = step(x0, x1, i)
    loss.item()
    seconds = time.perf_counter() - start
    out = {"images_per_s": a.steps * a.batch / seconds, "standins": ref.STANDINS}
    if a.flops:
        out["flops_per_image"] = step_flops(a.backbone, a.size, "cpu" if a.device == "cpu" else device)
    print(json.dumps(out))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu")
    common.add_argument("--precision", choices=list(AUTOCAST), default="32")
    common.add_argument("--channels-last", action="store_true")
    common.add_argument("--threads", type=int, default=2)
    common.add_argument("--batch", type=int, default=32)
    common.add_argument("--steps", type=int, default=5)
    common.add_argument("--standins", action="store_true", help="byol_reference.py's stand-ins for lightly's classes")
    s = sub.add_parser("train", parents=[common])
    s.add_argument("--state", required=True)
    s.add_argument("--images", required=True)
    s.add_argument("--out")
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--loss", choices=["minerva", "paper"], default="minerva")
    s = sub.add_parser("bench", parents=[common])
    s.add_argument("--backbone", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    s.add_argument("--size", type=int, default=224)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--flops", action="store_true")
    a = p.parse_args(argv)
    {"train": cmd_train, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main(sys.argv[1:])
