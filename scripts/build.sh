#!/usr/bin/env bash
# Configures and builds lorad into $LORAD_BUILD_DIR (default build/) with Ninja and ccache.
# The CUDA kernel library is built whenever nvcc is present (set LORAD_WITH_CUDA=OFF to skip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LORAD_BUILD_DIR:-$ROOT/build}"
WITH_CUDA="${LORAD_WITH_CUDA:-}"
if [ -z "$WITH_CUDA" ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then WITH_CUDA=ON; else WITH_CUDA=OFF; fi
fi
if [ "$WITH_CUDA" = ON ] && ! command -v nvcc >/dev/null 2>&1; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# ccache hits across clones and folders (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true

# LORAD_SANITIZE=address|thread: a sanitizer build (scripts/test.sh --sanitize=...).
# LORAD_BUILD_TESTS=OFF: only the daemon and tools (the container image builds this way).
# LORAD_BUILD_TARGETS="a b": build only these targets (the TSan run builds the tests it runs).
# LORAD_CMAKE_ARGS: more -D options for the configure step.
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLORAD_WITH_CUDA="$WITH_CUDA" -DLORAD_SANITIZE="${LORAD_SANITIZE:-}" \
  -DLORAD_BUILD_TESTS="${LORAD_BUILD_TESTS:-ON}" ${LORAD_CMAKE_ARGS:-} >/dev/null
TARGET_ARGS=()
for target in ${LORAD_BUILD_TARGETS:-}; do TARGET_ARGS+=(--target "$target"); done
cmake --build "$BUILD_DIR" -j "${LORAD_BUILD_JOBS:-$(nproc)}" "${TARGET_ARGS[@]}"
