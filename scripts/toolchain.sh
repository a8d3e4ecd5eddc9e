# Sourced by the scripts that run cargo, with BYOL_TARGET set to a Rust target
# triple (default: x86_64-unknown-linux-gnu; also aarch64-unknown-linux-gnu)
# and BYOL_TORCH_HOME (scripts/env.sh).
#
# The addon is linked against glibc 2.17's sysroot, so that the prebuilt binary
# loads wherever PyTorch's own wheels do (glibc >= 2.28), whatever glibc the
# build machine has. Objects are compiled by a current g++ (torch's headers
# need C++17: the host's, or Debian's cross g++ for arm64) and linked by the
# gcc driver of napi-rs's manylinux2014 cross toolchain, fetched once from npm
# into the per-user cache. crates/byol/csrc/compat.cpp covers the few symbols
# that the newer libstdc++ headers would otherwise import. For arm64, the
# headers and libraries come from PyPI's aarch64 torch wheel, also cached.
BYOL_TARGET="${BYOL_TARGET:-x86_64-unknown-linux-gnu}"
case "$BYOL_TARGET" in
  x86_64-unknown-linux-gnu) byol_pkg=x64-target-x86_64; byol_pkg_version=1.0.0; byol_cxx=g++ ;;
  aarch64-unknown-linux-gnu) byol_pkg=x64-target-aarch64; byol_pkg_version=1.0.3; byol_cxx=aarch64-linux-gnu-g++ ;;
  *) echo "toolchain: no build for target '$BYOL_TARGET' (x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu)" >&2; return 1 ;;
esac
byol_toolchain="$BYOL_TORCH_HOME/toolchains/$BYOL_TARGET-$byol_pkg_version"
if [ ! -f "$byol_toolchain/.complete" ]; then
  echo "toolchain: fetching @napi-rs/cross-toolchain-$byol_pkg@$byol_pkg_version (about 50 MB, once)" >&2
  byol_tmp="$(mktemp -d)"
  (cd "$byol_tmp" && npm pack --silent "@napi-rs/cross-toolchain-$byol_pkg@$byol_pkg_version" >/dev/null)
  tar xzf "$byol_tmp"/*.tgz -C "$byol_tmp"
  rm -rf "$byol_toolchain" && mkdir -p "$byol_toolchain"
  tar xJf "$byol_tmp/package/$BYOL_TARGET.tar.xz" -C "$byol_toolchain"
  rm -rf "$byol_tmp"
  touch "$byol_toolchain/.complete"
fi
byol_target_env="$(echo "$BYOL_TARGET" | tr 'a-z-' 'A-Z_')"
export "CARGO_TARGET_${byol_target_env}_LINKER=$byol_toolchain/bin/$BYOL_TARGET-gcc"

if [ "$BYOL_TARGET" = aarch64-unknown-linux-gnu ]; then
  if ! command -v "$byol_cxx" >/dev/null; then
    echo "toolchain: installing Debian's g++-aarch64-linux-gnu" >&2
    ${SUDO:-$(command -v sudo || true)} apt-get install -y -q g++-aarch64-linux-gnu >/dev/null
  fi
  rustup target list --installed | grep -qx "$BYOL_TARGET" || rustup target add "$BYOL_TARGET"
  byol_torch_version="$(node -p "require('./package.json').byolTorch.torchVersion")"
  export LIBTORCH="$BYOL_TORCH_HOME/cross/$BYOL_TARGET/torch-$byol_torch_version/torch"
  if [ ! -f "$LIBTORCH/../.complete" ]; then
    echo "toolchain: fetching torch==$byol_torch_version for aarch64 from PyPI (about 420 MB, once) for its headers and libraries" >&2
    byol_tmp="$(mktemp -d)"
    "$BYOL_TORCH_VENV/bin/python" -m pip download --quiet "torch==$byol_torch_version" --platform manylinux_2_28_aarch64 \
      --only-binary=:all: --no-deps -d "$byol_tmp"
    rm -rf "$LIBTORCH/.." && mkdir -p "$LIBTORCH/.."
    unzip -q "$byol_tmp"/torch-*.whl 'torch/include/*' 'torch/lib/libtorch*.so' 'torch/lib/libc10*.so' 'torch/version.py' -d "$LIBTORCH/.."
    rm -rf "$byol_tmp"
    touch "$LIBTORCH/../.complete"
  fi
  # torch-sys reads LIBTORCH, not the host Python's torch. A folder of its own
  # keeps both builds cached (cargo rebuilds shared host units when they alternate).
  unset LIBTORCH_USE_PYTORCH VIRTUAL_ENV
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/cross-$BYOL_TARGET"
  export "CXX_${BYOL_TARGET//-/_}=$byol_cxx" "CC_${BYOL_TARGET//-/_}=aarch64-linux-gnu-gcc" "AR_${BYOL_TARGET//-/_}=aarch64-linux-gnu-ar"
fi
# The libstdc++ the objects were compiled against, before the toolchain's own.
# Test executables link against libraries (libtorch, that libstdc++) that need
# a newer glibc than the sysroot's, and run on the host that has it.
export RUSTFLAGS="-L native=$(dirname "$("$byol_cxx" -print-file-name=libstdc++.so)") -C link-arg=-Wl,--allow-shlib-undefined"
unset byol_tmp byol_pkg byol_pkg_version byol_target_env byol_torch_version byol_cxx byol_toolchain
