#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into $LORAD_FUZZ_BUILD_DIR (default
# build-fuzz/) and runs each for N seconds, starting from its committed seed corpus.
#
#   scripts/fuzz.sh [--seconds=N] [--jobs=J] [TARGET...]    (default 20 s each, every target)
#   scripts/fuzz.sh --seeds       rewrite tests/fuzz/corpus/*/seed-* from the fixtures
#
# New inputs libFuzzer finds go to a scratch corpus (the committed one is never modified). A
# crash stops that target, leaves crash-* under $LORAD_FUZZ_OUT (default build-fuzz/findings/
# <target>/), and makes the script exit 1 after the remaining targets ran. To keep a crash as a
# regression, copy it into tests/fuzz/corpus/<target>/ once it is fixed: the normal test suite
# replays every file there (ctest -R FuzzCorpus).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LORAD_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
OUT="${LORAD_FUZZ_OUT:-$BUILD_DIR/findings}"
ALL_TARGETS=(gguf_fuzz safetensors_fuzz peft_adapter_fuzz tokenizer_fuzz chat_template_fuzz
             jsonl_dataset_fuzz proto_request_fuzz openai_request_fuzz)
SECONDS_EACH=20
TARGETS=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_EACH="${arg#--seconds=}" ;;
    --seeds)
      cmake --build "${LORAD_BUILD_DIR:-$ROOT/build}" --target lorad_fuzz_seeds
      find "$ROOT/tests/fuzz/corpus" -name 'seed-*' -delete 2>/dev/null || true
      "${LORAD_BUILD_DIR:-$ROOT/build}/tests/fuzz/lorad_fuzz_seeds" "$ROOT/tests/fuzz/corpus"
      exit 0 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $arg" >&2; exit 2 ;;
    *) TARGETS+=("$arg") ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DLORAD_FUZZ=ON -DLORAD_BUILD_TESTS=OFF -DLORAD_WITH_CUDA=OFF >/dev/null
cmake --build "$BUILD_DIR" --target "${TARGETS[@]}" -j "${LORAD_BUILD_JOBS:-$(nproc)}"

# Leaks in a process that parses one input and keeps what it built once (the tiny tokenizer)
# are not findings; every other ASan/UBSan report is.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# tokenizer_fuzz also drives the default model's 49k-token vocabulary when the model is here.
DEFAULT_MODEL="${LORAD_DEFAULT_MODEL:-${LORAD_DATA_DIR:-$ROOT/data}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [ -z "${LORAD_FUZZ_MODEL:-}" ] && [ -f "$DEFAULT_MODEL" ]; then export LORAD_FUZZ_MODEL="$DEFAULT_MODEL"; fi
failed=()
for target in "${TARGETS[@]}"; do
  scratch="$(mktemp -d)"
  mkdir -p "$OUT/$target"
  echo "=== $target: ${SECONDS_EACH}s"
  if "$BUILD_DIR/tests/fuzz/$target" "$scratch" "$ROOT/tests/fuzz/corpus/$target" \
      -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$OUT/$target/" -print_final_stats=1 2>"$OUT/$target/log"; then
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$OUT/$target/log" | tail -2
  else
    failed+=("$target")
    tail -40 "$OUT/$target/log"
  fi
  rm -rf "$scratch"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs under $OUT)" >&2
  exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, no crashes"
