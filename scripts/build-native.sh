#!/usr/bin/env bash
# Builds the napi addon (byol-torch.linux-<arch>-gnu.node) against libtorch:
#   bash scripts/build-native.sh [aarch64-unknown-linux-gnu] [napi build flags...]
# The target defaults to x86_64-unknown-linux-gnu, this machine's. Where
# libtorch is a CUDA build, the NCCL backend that crates/byol/build.rs links
# is put beside the addon as byol-torch.linux-<arch>-gnu.nccl.so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
case "${1:-}" in *-unknown-linux-gnu) BYOL_TARGET="$1"; shift ;; esac
. scripts/toolchain.sh
npx napi build --platform --release --target "$BYOL_TARGET" --manifest-path crates/byol-node/Cargo.toml \
  --package byol-node --output-dir . --no-js --no-const-enum --dts src/native.generated.d.ts "$@"
case "$BYOL_TARGET" in x86_64-*) platform=linux-x64-gnu ;; aarch64-*) platform=linux-arm64-gnu ;; esac
nccl="$CARGO_TARGET_DIR/$BYOL_TARGET/release/libbyol_nccl.so"
rm -f "byol-torch.$platform.nccl.so"
if [ -f "$nccl" ]; then cp "$nccl" "byol-torch.$platform.nccl.so"; fi
