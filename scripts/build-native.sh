#!/usr/bin/env bash
# Builds the napi addon (byol-torch.linux-<arch>-gnu.node) against libtorch:
#   bash scripts/build-native.sh [aarch64-unknown-linux-gnu] [napi build flags...]
# The target defaults to x86_64-unknown-linux-gnu, this machine's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
case "${1:-}" in *-unknown-linux-gnu) BYOL_TARGET="$1"; shift ;; esac
. scripts/toolchain.sh
exec npx napi build --platform --release --target "$BYOL_TARGET" --manifest-path crates/byol-node/Cargo.toml \
  --package byol-node --output-dir . --no-js --no-const-enum --dts src/native.generated.d.ts "$@"
