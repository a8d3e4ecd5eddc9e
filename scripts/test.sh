#!/usr/bin/env bash
# Sets everything up, then runs every test: Rust core (cargo test) and the JS API with its parity tests (ava).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The DDP tests also run with tcmalloc preloaded, as PyTorch advises users to.
if ! ldconfig -p | grep -q libtcmalloc_minimal.so.4; then
  ${SUDO:-$(command -v sudo || true)} apt-get install -y -q libtcmalloc-minimal4 >/dev/null ||
    { ${SUDO:-$(command -v sudo || true)} apt-get update -q >/dev/null && ${SUDO:-$(command -v sudo || true)} apt-get install -y -q libtcmalloc-minimal4 >/dev/null; }
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
# Habits: formatting, lints and types, before anything runs.
cargo fmt --all --check
# Same target triple and profile as `napi build`, so what it compiled is reused.
bash scripts/cargo.sh clippy --release --target "$host" --workspace --all-targets -- -D warnings
npx tsc -p tsconfig.check.json
bash scripts/cargo.sh test --release -p byol --target "$host"
. scripts/env.sh
npx ava
