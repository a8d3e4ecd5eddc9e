#!/usr/bin/env bash
# cargo with the environment torch-sys needs to find the cached libtorch, and
# the loader path the test binaries need to run (cargo adds only paths inside
# target/ to it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
. scripts/toolchain.sh
torch_lib="$(node scripts/install-libtorch.cjs --print-lib-dir)"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec cargo "$@"
