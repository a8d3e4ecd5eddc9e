#!/usr/bin/env bash
# Builds the napi addon (byol-torch.linux-x64-gnu.node) against the cached libtorch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
exec npx napi build --platform --release --manifest-path crates/byol-node/Cargo.toml \
  --package byol-node --output-dir . --no-js --dts src/native.generated.d.ts "$@"
