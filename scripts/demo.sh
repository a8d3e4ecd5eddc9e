#!/usr/bin/env bash
# Sets everything up, then runs the main job: BYOL on the built-in MNIST digits
# (CPU, about 6 minutes on 2 cores), with the kNN accuracy of the backbone on
# held-out digits after every epoch and, at the end, beside the same backbone
# at random initialisation. Writes runs/demo/ (model, torchvision-keyed
# backbone, metrics.jsonl, report.html). Extra flags go to `byol-torch train`.
#
# The settings are `mnistRecipe` (src/presets.ts, where they are explained);
# bfloat16 autocast with channels_last runs its narrow convolutions about
# twice as fast as float32 on CPUs with AVX-512 BF16. BYOL_TORCH_FAST_DEV_RUN=N
# cuts the run to N steps (the README's test does so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. scripts/env.sh
# bf16 is emulated, and slower than float32, on CPUs without these instructions.
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
  precision=(--precision bf16-mixed --channels-last)
else
  precision=(--precision 32)
fi
# Each demo is a new run; `train` refuses to overwrite a finished one, so the
# last demo's folder is kept beside it, once.
if [ -f runs/demo/model.safetensors ]; then
  rm -rf runs/demo.previous && mv runs/demo runs/demo.previous
  echo "demo: the last demo run is now runs/demo.previous"
fi
node dist/cli/index.js train --data mnist --preset mnist --out runs/demo "${precision[@]}" \
  --max-epochs 10 --knn-every-n-epochs 1 --log-every-n-steps 25 "$@"
