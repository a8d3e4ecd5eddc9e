#!/usr/bin/env bash
# Sets everything up on a fresh machine: libtorch and the Python reference in
# the per-user cache, npm packages, the Rust addon and the TypeScript build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "setup: needs Rust (cargo); install it with rustup" >&2; exit 1; }
command -v node >/dev/null || { echo "setup: needs Node.js >= 20.19" >&2; exit 1; }
node scripts/install-libtorch.cjs --reference reference/requirements.txt
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
