#!/usr/bin/env bash
# The prepared GPU check of issue 7, for a machine with an NVIDIA GPU, the CUDA toolkit, cmake,
# ninja, GoogleTest and PyTorch, and no network. It builds the CUDA kernels, their tests and the
# benchmark with the standalone project bench/gpu/CMakeLists.txt (no gRPC/Abseil needed), runs
# the tests, times the kernels, runs the PyTorch baseline and prints a short table last.
# Fits in 8 minutes on an H200 (build ~1-2 min, tests <1 min, benchmarks ~1-2 min).
#
#   bench/gpu/run.sh                 # build dir: build-gpu/ at the repository root
#   BUILD=/tmp/b bench/gpu/run.sh    # elsewhere
#   LORAD_CUDA_ARCHS="80;90" ...     # default: the local GPU's compute capability
#
# Results are kept in $BUILD/gpu_results/ (and copied to $OUT/ when OUT is set).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build-gpu}"
RESULTS="$BUILD/gpu_results"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 8)}"
mkdir -p "$RESULTS"

step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "GPU"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader \
  | tee "$RESULTS/gpu.txt" || echo "nvidia-smi failed"
ARCHS="${LORAD_CUDA_ARCHS:-}"
if [[ -z "$ARCHS" ]]; then
  ARCHS="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
  [[ "$ARCHS" =~ ^[0-9]+$ ]] || ARCHS="80;90"
fi

step "configure + build (CMAKE_CUDA_ARCHITECTURES=$ARCHS)"
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S "$ROOT/bench/gpu" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
  > "$RESULTS/configure.log" 2>&1 || { tail -30 "$RESULTS/configure.log"; exit 1; }
timeout 360 cmake --build "$BUILD" -j "$JOBS" \
  --target lorad_cuda_kernels_test lorad_cuda_kernels_bench \
  > "$RESULTS/build.log" 2>&1 || { tail -40 "$RESULTS/build.log"; exit 1; }

step "tests"
TEST_RC=0
timeout 180 "$BUILD/tests/kernels/cuda/lorad_cuda_kernels_test" --gtest_brief=1 \
  2>&1 | tee "$RESULTS/tests.txt" | tail -40
TEST_RC=${PIPESTATUS[0]}
TEST_SUMMARY="$(grep -E '^\[  (PASSED|SKIPPED|FAILED) +\] [0-9]+ test' "$RESULTS/tests.txt" | tr '\n' ' ')"

step "kernel benchmark"
timeout 180 "$BUILD/lorad_cuda_kernels_bench" 2>&1 | tee "$RESULTS/bench.txt"
BENCH_RC=${PIPESTATUS[0]}

step "PyTorch baseline"
timeout 180 python3 "$ROOT/bench/gpu/torch_baseline.py" 2>&1 | tee "$RESULTS/torch.txt" \
  || echo "PyTorch baseline failed (see above); the table shows '-' for it"

step "summary"
{
  python3 "$ROOT/bench/gpu/summarize.py" "$RESULTS/bench.txt" "$RESULTS/torch.txt"
  echo
  echo "tests: exit $TEST_RC, $TEST_SUMMARY; benchmark: exit $BENCH_RC; total ${SECONDS}s"
} | tee "$RESULTS/summary.txt"
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then cp -r "$RESULTS" "$OUT/"; fi
[[ $TEST_RC -eq 0 && $BENCH_RC -eq 0 ]]
