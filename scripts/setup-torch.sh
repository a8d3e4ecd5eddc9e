#!/usr/bin/env bash
# Installs libtorch (PyPI torch 2.11.0) into a per-user cache, once:
#   $BYOL_TORCH_HOME/venv   (default ~/.cache/byol-torch/venv)
# With --reference it also installs the Python reference used by the parity
# tests and benchmarks (torchvision, lightly, safetensors).
# A second run finds everything in place and returns in a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(dirname "$here")"
BYOL_TORCH_HOME="${BYOL_TORCH_HOME:-$HOME/.cache/byol-torch}"
venv="$BYOL_TORCH_HOME/venv"
TORCH_VERSION=2.11.0

with_reference=0
for arg in "$@"; do
  case "$arg" in
    --reference) with_reference=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup-torch: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

python=""
for candidate in python3.12 python3.11 python3.13 python3.10 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,14) else 1)' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "setup-torch: needs Python 3.10-3.14 (python3) to install PyTorch from PyPI" >&2; exit 1; }

mkdir -p "$BYOL_TORCH_HOME"
# One installer at a time: CI and a developer may share the cache.
exec 9>"$BYOL_TORCH_HOME/.lock"
flock 9

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-torch: creating $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$venv/.byol-torch-$TORCH_VERSION"
if [ ! -f "$stamp" ] || ! "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "setup-torch: installing torch==$TORCH_VERSION from PyPI (about 3 GB, once)"
  "$venv/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
  touch "$stamp"
fi

if [ "$with_reference" = 1 ]; then
  req="$root/reference/requirements.txt"
  ref_stamp="$venv/.reference-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$ref_stamp" ]; then
    echo "setup-torch: installing the Python reference ($req)"
    "$venv/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" -r "$req"
    touch "$ref_stamp"
  fi
fi

echo "setup-torch: libtorch is in $("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
