#!/usr/bin/env bash
# Fine-tune benchmark: lorad's trainer (4-bit base, LibTorch autograd) against HF PEFT (fp32 base,
# PyTorch from PyPI) on the same machine, the same tokens, the same hyper-parameters: rank 16
# on all seven projections, alpha 32, batch 4 x 256 tokens, AdamW lr 2e-4 cosine, clip 1.0.
# Prints both runs' per-step losses and a summary table (tokens/s, peak RSS).
#
#   bench/finetune/run.sh [STEPS] [THREADS]     (defaults 10 and 2)
#
# Needs: lorad built (scripts/build.sh; LORAD_BUILD_DIR, default build/), the default model
# (scripts/fetch_model.sh), and the PEFT venv (scripts/setup_peft_venv.sh; PEFT_VENV).
# Run it on an idle machine; record the results in docs/perf.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${LORAD_BUILD_DIR:-$ROOT/build}"
VENV="${PEFT_VENV:-$ROOT/.cache/venv-peft}"
MODEL="${LORAD_DEFAULT_MODEL:-$ROOT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
STEPS="${1:-10}"
THREADS="${2:-2}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# The support-ticket chats, packed into rows of exactly 256 tokens (every token a target), so
# that both trainers see full 4 x 256 batches; lorad dumps the tokens PEFT then reads.
# lorad twice: keeping activations (fastest), and recomputing them per layer (least memory).
for RECOMPUTE in false true; do
  "$BUILD/tools/lorad-finetune" --model="$MODEL" \
    --dataset="$ROOT/examples/support-tickets/train.jsonl" --pack=256 \
    --dump_tokens="$OUT/tokens.jsonl" --steps="$STEPS" --batch_size=4 --rank=16 --alpha=32 \
    --targets=all --learning_rate=2e-4 --lr_scheduler=cosine --seed=0 --threads="$THREADS" \
    --recompute="$RECOMPUTE" | tee "$OUT/lorad-recompute-$RECOMPUTE.log"
done
"$VENV/bin/python" "$ROOT/bench/finetune/peft_baseline.py" --model-dir "$(dirname "$MODEL")" \
  --gguf-file "$(basename "$MODEL")" train --tokens "$OUT/tokens.jsonl" --steps "$STEPS" \
  --batch 4 --seq-len 256 --threads "$THREADS" --seed 0 --lr 2e-4 --rank 16 --alpha 32 \
  2>&1 | tee "$OUT/peft.log"

python3 - "$OUT/lorad-recompute-false.log" "$OUT/lorad-recompute-true.log" "$OUT/peft.log" <<'PY'
import json, re, sys
def last_json(path):
    for line in reversed(open(path).read().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
fast, small, peft = (last_json(p) for p in sys.argv[1:4])
pt = peft.get("mean_padded_tokens_per_s", peft.get("mean_tokens_per_s"))
pm = peft["peak_rss_mib"]
print("\n| trainer | tokens/s | vs PEFT | peak RSS (MiB) | vs PEFT |")
print("|---|---|---|---|---|")
for name, r in (("lorad, activations kept", fast), ("lorad, recomputed per layer", small)):
    lt, lm = r["tokens_per_second"], r["peak_rss_mb"]
    print(f"| {name} | {lt:.1f} | {lt / pt:.2f}x | {lm:.0f} | {lm / pm:.2f}x |")
print(f"| HF PEFT, fp32 base | {pt:.1f} | 1.00x | {pm:.0f} | 1.00x |")
peft_losses = [float(m.group(1)) for m in re.finditer(r"^step \d+ loss ([0-9.]+)", open(sys.argv[3]).read(), re.M)]
print("\nstep  lorad_loss  peft_loss")
for i, (a, b) in enumerate(zip(fast["losses"], peft_losses)):
    print(f"{i + 1:4d}  {a:10.4f}  {b:9.4f}")
PY
