#!/usr/bin/env bash
# Sets everything up, then runs the main job: BYOL on the built-in MNIST digits (CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
node examples/train.mjs "$@"
