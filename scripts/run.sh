#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running daemon: installs packages, builds,
# fetches the default model, then runs lorad on it in the foreground. Extra arguments go to lorad.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LORAD_DATA_DIR="${LORAD_DATA_DIR:-$ROOT/data}"
"$ROOT/scripts/install_deps.sh"
"$ROOT/scripts/build.sh"
"$ROOT/scripts/fetch_model.sh"
exec "${LORAD_BUILD_DIR:-$ROOT/build}/server/lorad" \
  --model="$LORAD_DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --data_dir="$LORAD_DATA_DIR" "$@"
