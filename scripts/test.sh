#!/usr/bin/env bash
# Sets everything up, then runs every test: Rust core (cargo test) and the JS API with its parity tests (ava).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# Same target triple as `napi build`, so the dependencies it compiled are reused.
bash scripts/cargo.sh test --release -p byol --target "$(rustc -vV | sed -n 's/^host: //p')"
. scripts/env.sh
npx ava
