#!/usr/bin/env bash
# Packs what bench/gpu-check needs on a GPU host that has PyTorch 2.11.0 but
# no Node and no network: this machine's `node`, compressed, in .devcarry/
# (ignored by git). The addon, its NCCL library and dist/ are built here
# (`npm run build`) and travel as they are. Then, on the GPU host, from the
# repository root:
#
#   xz -dc .devcarry/node.xz > /tmp/node && chmod +x /tmp/node &&
#   export BYOL_TORCH_LIBTORCH="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')" &&
#   /tmp/node bench/gpu-check --python "$(command -v python3)"
#
# carrying dist, byol-torch.linux-x64-gnu.node, byol-torch.linux-x64-gnu.nccl.so
# and .devcarry. It prints the table and exits 1 if a check fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for f in dist/index.js byol-torch.linux-x64-gnu.node byol-torch.linux-x64-gnu.nccl.so; do
  [ -e "$f" ] || { echo "gpu-pack: $f is missing: run npm run build first" >&2; exit 1; }
done
mkdir -p .devcarry
xz -T0 -6 -c "$(command -v node)" > .devcarry/node.xz.tmp && mv .devcarry/node.xz.tmp .devcarry/node.xz
du -ch dist byol-torch.linux-x64-gnu.node byol-torch.linux-x64-gnu.nccl.so .devcarry | tail -1 | sed 's/total/to carry (the limit is 64 MiB)/'
