#!/usr/bin/env bash
# Peer baseline for the multi-LoRA benchmark: llama.cpp serving a LoRA adapter ONE AT A TIME.
#
# Measures llama.cpp's single-stream decode throughput (tokens/s, batch 1, greedy, 64 generated
# tokens after a ~15-token prompt, THREADS threads) on SmolLM2-135M-Instruct Q4_1,
#   (1) base model only, and
#   (2) with one rank-16 / alpha-32 LoRA adapter on q/k/v/o/gate/up/down (random nonzero A and B,
#       made with PEFT, converted with llama.cpp's convert_lora_to_gguf.py to an f16 GGUF LoRA),
#       applied at scale 1.0. llama.cpp applies it unmerged at run time (an extra x*A*B per
#       projection, f16 LoRA tensors), which is how it serves adapters without reloading the model.
# Numbers come from llama-completion's "eval time ... tokens per second" line (63 decode steps for
# 64 tokens; the first token comes out of the prompt pass), REPEATS runs each, base and LoRA runs
# interleaved, median reported; llama-batched-bench (-npp 15 -ntg 64 -npl 1, base model only: it
# ignores --lora) gives a cross-check of the base number. With BATCHED=1 it also runs
# llama-batched-bench at -npl 32 (32 sequences decoded in one batch, base model): llama.cpp's best
# batched base throughput (no HTTP/sampling overhead). llama.cpp cannot batch sequences that use
# different adapters (adapters are set per context, llama-server only batches requests with the
# same LoRA set), so 32 distinct adapters run one at a time, at about the rate of (2).
# lorad's multi-LoRA number (32 streams, 32 distinct adapters) is reported as a ratio to (2).
#
# Every timing command runs under `flock -x /tmp/lorad-bench.lock` (the machine is shared), every
# build under `flock -s` with -j1.
#
# Usage: bench/multi_lora/llama_cpp_lora_baseline.sh [MODEL_GGUF]
# Env: LLAMA_CPP_DIR (/work/llama.cpp; CPU build in $LLAMA_CPP_DIR/build), PEFT_VENV (/work/venv-peft),
#      MODEL (data/models/SmolLM2-135M-Instruct.Q4_1.gguf), THREADS (2), REPEATS (7), N_GEN (64),
#      WORK (/tmp/llama_cpp_lora_baseline: adapter files, logs; reused if present), BATCHED (0),
#      LOCK (/tmp/lorad-bench.lock).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LLAMA_CPP_DIR="${LLAMA_CPP_DIR:-/work/llama.cpp}"
PEFT_VENV="${PEFT_VENV:-/work/venv-peft}"
MODEL="${1:-${MODEL:-data/models/SmolLM2-135M-Instruct.Q4_1.gguf}}"
THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-7}"
N_GEN="${N_GEN:-64}"
WORK="${WORK:-/tmp/llama_cpp_lora_baseline}"
BATCHED="${BATCHED:-0}"
LOCK="${LOCK:-/tmp/lorad-bench.lock}"
# 15 tokens with SmolLM2's tokenizer (no BOS is added for this model).
PROMPT="${PROMPT:-The capital of France is a city that is known for its long and rich}"

cd "$REPO"
[[ "$MODEL" = /* ]] || MODEL="$REPO/$MODEL"
[[ -f "$MODEL" ]] || { echo "model not found: $MODEL" >&2; exit 1; }
BIN="$LLAMA_CPP_DIR/build/bin"
mkdir -p "$WORK"

# --- llama.cpp tools (build the missing ones in the existing build dir, keeping its config) ---
need=()
for t in llama-completion llama-batched-bench; do [[ -x "$BIN/$t" ]] || need+=("$t"); done
if ((${#need[@]})); then
  echo "building ${need[*]} in $LLAMA_CPP_DIR/build" >&2
  flock -s "$LOCK" cmake --build "$LLAMA_CPP_DIR/build" --target "${need[@]}" -j1 >&2
fi

# --- the adapter: random PEFT LoRA -> f16 GGUF LoRA ---
ADAPTER_GGUF="$WORK/lora-r16-a32-f16.gguf"
if [[ ! -f "$ADAPTER_GGUF" ]]; then
  "$PEFT_VENV/bin/python" "$REPO/bench/multi_lora/make_random_peft_adapter.py" --gguf "$MODEL" \
      --base-out "$WORK/base-hf" --adapter-out "$WORK/peft-adapter" --rank 16 --alpha 32 >&2
  "$PEFT_VENV/bin/python" "$LLAMA_CPP_DIR/convert_lora_to_gguf.py" --base "$WORK/base-hf" \
      --outtype f16 --outfile "$ADAPTER_GGUF" "$WORK/peft-adapter" > "$WORK/convert.log" 2>&1 \
      || { tail -20 "$WORK/convert.log" >&2; exit 1; }
fi

median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# one llama-completion run; prints decode tokens/s
run_completion() {  # $1 = log name, rest = extra args
  local log="$WORK/$1.log"; shift
  flock -x "$LOCK" "$BIN/llama-completion" -m "$MODEL" -t "$THREADS" -c 512 -no-cnv \
      -p "$PROMPT" -n "$N_GEN" --ignore-eos --temp 0 --top-k 1 -s 0 "$@" \
      < /dev/null > "$log.out" 2> "$log"
  sed -n 's/.* eval time = .* runs .*, *\([0-9.]*\) tokens per second.*/\1/p' "$log" | grep -v '^$' | tail -1
}

commit=$(git -C "$LLAMA_CPP_DIR" log -1 --format=%h 2>/dev/null ||
         sed -n 's/.*LLAMA_COMMIT = "\(.*\)".*/\1/p' "$LLAMA_CPP_DIR/build/common/build-info.cpp" 2>/dev/null || true)
echo "llama.cpp ${commit:-?}; model $(basename "$MODEL");" \
     "adapter $(basename "$ADAPTER_GGUF"); threads $THREADS; $N_GEN tokens; $REPEATS repeats"

base=(); lora=()
for ((i = 1; i <= REPEATS; i++)); do
  b=$(run_completion "completion-base-$i")
  l=$(run_completion "completion-lora-$i" --lora "$ADAPTER_GGUF")
  [[ -n "$b" && -n "$l" ]] || { echo "no timing in $WORK/completion-*-$i.log" >&2; exit 1; }
  base+=("$b"); lora+=("$l")
  echo "  run $i: base $b tok/s, lora $l tok/s"
done
if cmp -s "$WORK/completion-base-1.log.out" "$WORK/completion-lora-1.log.out"; then
  echo "WARNING: the LoRA run generated the same text as the base run: is the adapter applied?" >&2
fi
MB=$(median "${base[@]}"); ML=$(median "${lora[@]}")
echo "llama-completion, 1 stream, decode tok/s (median of $REPEATS): base $MB, lora $ML"

# cross-check with llama-batched-bench (REPEATS rounds of -npl 1 in one process)
bb() {  # $1 = log name, $2 = npl list, rest = extra args; prints speed_tg values
  local log="$WORK/$1.log"; local npl="$2"; shift 2
  flock -x "$LOCK" "$BIN/llama-batched-bench" -m "$MODEL" -t "$THREADS" -c 4096 -npp 15 \
      -ntg "$N_GEN" -npl "$npl" --output-format jsonl "$@" > "$log" 2>&1
  python3 -c 'import json,sys
print(" ".join("%.2f" % json.loads(l)["speed_tg"] for l in open(sys.argv[1]) if l.startswith("{")))' "$log"
}
ones=$(printf '1,%.0s' $(seq "$REPEATS")); ones=${ones%,}
bbb=$(bb batched-bench-base-1 "$ones")
echo "llama-batched-bench, 1 stream, base, decode tok/s: [$bbb] median $(median $bbb)"

if [[ "$BATCHED" == 1 ]]; then
  b32=$(bb batched-bench-base-32 "32,32,32")
  echo "llama-batched-bench, 32 sequences in one batch, base, aggregate decode tok/s: [$b32] median $(median $b32)"
fi
echo "RESULT llama_cpp_1stream_base_tok_s=$MB llama_cpp_1stream_lora_tok_s=$ML"
