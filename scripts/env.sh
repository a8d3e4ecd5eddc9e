# Sourced by the project's scripts: where the per-user cache and its Python live.
BYOL_TORCH_HOME="${BYOL_TORCH_HOME:-$HOME/.cache/byol-torch}"
BYOL_TORCH_VENV="$BYOL_TORCH_HOME/venv"
export BYOL_TORCH_HOME BYOL_TORCH_VENV
# torch-sys asks `python` (when VIRTUAL_ENV is set) where libtorch is.
export VIRTUAL_ENV="$BYOL_TORCH_VENV"
export PATH="$BYOL_TORCH_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
