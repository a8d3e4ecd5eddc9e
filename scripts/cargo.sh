#!/usr/bin/env bash
# cargo with the environment torch-sys needs to find the cached libtorch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
exec cargo "$@"
