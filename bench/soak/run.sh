#!/usr/bin/env bash
# Soak: starts lorad on the default model with its own data directory, writes random adapters
# for it, and runs lorad_soak against it (mixed requests with cancels, deadlines and stop
# strings over many adapters, adapter unload/reload churn, a fine-tune job, probes that must
# equal their solo greedy output, RSS and fd samples). Exits non-zero when the soak fails or the
# daemon does not exit 0 on SIGTERM afterwards.
#
#   bench/soak/run.sh [lorad_soak flags]      e.g. --requests=20000 --clients=32 --adapters=64
#
# LORAD_FLAGS adds flags to lorad's command line, e.g. LORAD_FLAGS=--adapter_host_budget_mb=6
# (a cache that holds a tenth of 64 rank-8 adapters, so requests wait for their adapter).
#
# Defaults (2,000 requests, 16 clients, 16 adapters) take a few minutes on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${LORAD_BUILD_DIR:-$ROOT/build}"
MODEL="${LORAD_DEFAULT_MODEL:-$ROOT/data/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
WORK="$(mktemp -d)"
PID=""
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
ADAPTERS=16
for arg in "$@"; do
  case "$arg" in --adapters=*) ADAPTERS="${arg#--adapters=}" ;; esac
done

mkdir -p "$WORK/data/adapters"
"$BUILD/bench/soak/lorad_soak" --write_adapters="$WORK/data/adapters" --model="$MODEL" \
  --adapters="$ADAPTERS"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BUILD/server/lorad" --model="$MODEL" --listen="127.0.0.1:$PORT" --metrics_listen= --http_listen= \
  --data_dir="$WORK/data" --max_queue=256 --checkpoint_every_steps=5 ${LORAD_FLAGS:-} \
  2>"$WORK/lorad.log" &
PID=$!
for _ in $(seq 1 300); do
  if "$BUILD/tools/loractl" --addr="127.0.0.1:$PORT" health --timeout_s=1 >/dev/null 2>&1; then break; fi
  sleep 0.2
done
status=0
"$BUILD/bench/soak/lorad_soak" --addr="127.0.0.1:$PORT" --pid="$PID" "$@" || status=$?
kill -TERM "$PID"
if ! wait "$PID"; then
  echo "soak: lorad did not exit 0 on SIGTERM" >&2
  tail -20 "$WORK/lorad.log" >&2
  status=1
fi
exit "$status"
