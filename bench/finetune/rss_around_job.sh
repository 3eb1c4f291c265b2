#!/usr/bin/env bash
# RSS of a serving lorad before and after a fine-tune job (issue: memory goes back after a job).
# Starts lorad on the default model with a fresh data directory, serves WARM greedy requests,
# reads VmRSS, runs one job on examples/support-tickets (STEPS steps, rank 16 on q/k/v/o,
# batch 4 x 256), serves the same requests again and reads VmRSS. Prints both and their ratio.
#
#   bench/finetune/rss_around_job.sh [STEPS] [WARM]      defaults 40 and 16
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${LORAD_BUILD_DIR:-$ROOT/build}"
MODEL="${LORAD_DEFAULT_MODEL:-$ROOT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
STEPS="${1:-40}"
WARM="${2:-16}"
WORK="$(mktemp -d)"
PID=""
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BUILD/server/lorad" --model="$MODEL" --listen="127.0.0.1:$PORT" --metrics_listen= --http_listen= \
  --data_dir="$WORK/data" 2>"$WORK/lorad.log" &
PID=$!
CTL=("$BUILD/tools/loractl" --addr="127.0.0.1:$PORT")
for _ in $(seq 1 300); do
  if "${CTL[@]}" health --timeout_s=1 >/dev/null 2>&1; then break; fi
  sleep 0.2
done
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
serve() {
  for i in $(seq 1 "$WARM"); do
    "${CTL[@]}" generate "Ticket $i: the printer says paper jam. What should I do?" \
      --max_new_tokens=32 >/dev/null &
    if (( i % 4 == 0 )); then wait; fi
  done
  wait
}

serve
serve
before=$(rss_mib)
echo "RSS after serving, before the job: $before MiB"
"${CTL[@]}" jobs create --adapter_id=rss-probe --dataset="$ROOT/examples/support-tickets/train.jsonl" \
  --rank=16 --max_steps="$STEPS" --batch_size=4 --max_seq_len=256 --seed=0 --watch >"$WORK/job.log"
peak=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status")
serve
after=$(rss_mib)
echo "RSS peak (VmHWM): $peak MiB"
echo "RSS after the job, after serving again: $after MiB"
python3 -c "print(f'after / before = {$after / $before:.3f}')"
kill -TERM "$PID"
wait "$PID"
