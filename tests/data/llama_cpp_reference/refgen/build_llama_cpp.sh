#!/usr/bin/env bash
# Builds llama.cpp 0c1e57098 (from the PyPI sdist of llama-cpp-python 0.3.36, which vendors it)
# outside this repository, for one x86 level, plus refgen_greedy against it.
#   tests/data/llama_cpp_reference/refgen/build_llama_cpp.sh haswell|native [LLAMA_CPP_DIR]
# haswell: AVX2 + FMA + F16C, no AVX-512 (the reference for AVX2-only CPUs, greedy_avx2.json).
# native: -march=native with AMX off (the AVX-512 reference, greedy.json; see ../README.md).
# Prints the directory holding llama-bench and refgen_greedy.
set -euo pipefail
VARIANT="${1:?haswell or native}"
SRC="${2:-${LLAMA_CPP_DIR:-/work/llama.cpp}}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  tmp="$(mktemp -d)"
  pip download llama_cpp_python==0.3.36 --no-deps --no-binary :all: -d "$tmp" >&2
  tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp"
  mkdir -p "$(dirname "$SRC")" && mv "$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp" "$SRC"
  rm -rf "$tmp"
fi
case "$VARIANT" in
  haswell)
    flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
      -DGGML_BMI2=ON -DGGML_AVX512=OFF '-DCMAKE_C_FLAGS=-march=haswell'
      '-DCMAKE_CXX_FLAGS=-march=haswell') ;;
  native)
    flags=(-DGGML_NATIVE=ON '-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
      '-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16') ;;
  *) echo "unknown variant $VARIANT" >&2; exit 2 ;;
esac
B="$SRC/build-$VARIANT"
cmake -S "$SRC" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_OPENMP=ON \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_COMMIT=0c1e57098 \
  -DLLAMA_BUILD_NUMBER=0 "${flags[@]}" >&2
nice -n 19 ninja -C "$B" -j2 llama-bench llama-simple llama-tokenize >&2
g++ -O2 -std=c++17 -Wall $([ "$VARIANT" = haswell ] && echo -march=haswell) -o "$B/bin/refgen_greedy" \
  "$HERE/refgen_greedy.cc" -I"$SRC/include" -I"$SRC/ggml/include" -L"$B/bin" \
  -lllama -lggml -lggml-base -Wl,-rpath,"$B/bin" >&2
echo "$B/bin"
