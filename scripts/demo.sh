#!/usr/bin/env bash
# Sets everything up, then runs the main job: BYOL on the built-in MNIST digits
# (CPU, about 5 minutes on 2 cores), with the kNN accuracy of the backbone on
# held-out digits after every epoch and, at the end, beside the same backbone
# at random initialisation. Writes runs/demo/ (model, torchvision-keyed
# backbone, metrics.jsonl, report.html). Extra flags go to `byol-torch train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. scripts/env.sh
node dist/cli.js train --data mnist --out runs/demo \
  --width 16 --small-inputs --hidden-dim 1024 --output-dim 128 \
  --batch-size 128 --max-epochs 5 --optimizer sgd --lr 0.2 --momentum 0.9 --weight-decay 5e-4 \
  --base-momentum 0.99 --knn-every-n-epochs 1 --log-every-n-steps 10 "$@"
