#!/usr/bin/env bash
# cargo with the environment torch-sys needs to find the cached libtorch, and
# the loader path the test binaries need to run (cargo adds only paths inside
# target/ to it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
torch_lib="$("$BYOL_TORCH_VENV/bin/python" -c "import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec('torch').origin), 'lib'))")"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec cargo "$@"
