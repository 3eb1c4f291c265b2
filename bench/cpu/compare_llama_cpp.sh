#!/usr/bin/env bash
# Prefill (pp512) and decode (tg128) tokens/s of lorad-bench and llama-bench on the same GGUF,
# same thread counts, in the same run, on an otherwise idle machine.
#   LLAMA_BENCH=/path/to/llama-bench bench/cpu/compare_llama_cpp.sh [threads=1,2] [repeats=3]
# llama.cpp is built outside the repository from a fetched checkout (see
# tests/data/llama_cpp_reference/README.md for the build flags used here).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="${LORAD_DEFAULT_MODEL:-$ROOT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${1:-1,2}"
REPEATS="${2:-3}"
echo "# $(date -u +%FT%TZ) $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## lorad-bench"
"${LORAD_BUILD_DIR:-$ROOT/build}/tools/lorad-bench" --model="$MODEL" --threads="$THREADS" \
  --prompt_tokens=512 --decode_tokens=128 --batch=1 --repeats="$REPEATS"
if [ -n "${LLAMA_BENCH:-}" ]; then
  echo "## llama-bench"
  "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p 512 -n 128 -r "$REPEATS" -o md
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
