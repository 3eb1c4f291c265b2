#!/usr/bin/env bash
# Inter-token latency of 8 concurrent streams against an idle lorad, then while a fine-tune job
# (rank 16, all seven projections, the support-ticket chats) trains in the same daemon.
#
#   bench/finetune/serving_while_training.sh [extra lorad flags...]
#
# Needs lorad and loractl built (LORAD_BUILD_DIR, default build/), the default model and the
# Python client venv (PYTHON, default $LORAD_BUILD_DIR/python_client_venv/bin/python; see
# examples/python_client). Prints one JSON line per phase and the job's progress, which should
# not move while requests are served (the job gate holds training).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${LORAD_BUILD_DIR:-$ROOT/build}"
MODEL="${LORAD_DEFAULT_MODEL:-$ROOT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
PY="${PYTHON:-$BUILD/python_client_venv/bin/python}"
ADDR=127.0.0.1:50061
DIR="$(mktemp -d)"
mkdir -p "$DIR/data" "$DIR/adapters"
"$BUILD/server/lorad" --listen="$ADDR" --metrics_listen= --http_listen= --threads=2 --train_threads=2 \
  --model="$MODEL" --data_dir="$DIR/data" --adapter_root="$DIR/adapters" "$@" \
  >"$DIR/lorad.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
ctl() { "$BUILD/tools/loractl" --addr="$ADDR" "$@"; }
for _ in $(seq 120); do ctl health >/dev/null 2>&1 && break; sleep 1; done
latency() { "$PY" "$ROOT/bench/finetune/serving_latency.py" --addr "$ADDR" --streams 8 --rounds 3; }
echo "idle: $(latency)"
ctl jobs create --adapter_id=tickets --dataset="$ROOT/examples/support-tickets/train.jsonl" \
  --rank=16 --alpha=32 --max_steps=400 --batch_size=4 \
  --target_modules=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj >/dev/null
sleep 20  # validation, then the first steps
echo "job before: $(ctl jobs list | head -1)"
echo "job running: $(latency)"
echo "job after: $(ctl jobs list | head -1)"
