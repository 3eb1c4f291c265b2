#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a full test run: installs packages, builds,
# fetches the default model (tests on the real model need it), runs every test with ctest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LORAD_BUILD_DIR:-$ROOT/build}"
export LORAD_DATA_DIR="${LORAD_DATA_DIR:-$ROOT/data}"
"$ROOT/scripts/install_deps.sh"
"$ROOT/scripts/build.sh"
"$ROOT/scripts/fetch_model.sh"
export LORAD_DEFAULT_MODEL="$LORAD_DATA_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${LORAD_TEST_JOBS:-2}" "$@"
