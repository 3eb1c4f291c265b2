#!/usr/bin/env bash
# Creates the Python venv used by lorad's HF/PEFT tooling (tests/data/peft_llama_tiny/
# make_fixture.py, bench/finetune/peft_baseline.py, examples/support-tickets/make_dataset.py
# --check-tokens): PyTorch (run on the CPU), transformers, peft, safetensors, gguf, numpy. Nothing
# lorad builds or tests needs it. From PyPI only.
#
#   scripts/setup_peft_venv.sh            # venv at $PEFT_VENV, default <repo>/.cache/venv-peft
#   PEFT_VENV=/work/venv-peft scripts/setup_peft_venv.sh
#
# Idempotent: when the venv already imports the pinned versions it does nothing (no network).
#
# About torch: PyPI's Linux x86_64 torch wheel is the CUDA build, and the CPU-only wheels live on
# another index that is not reachable here. `pip install torch --no-deps` does not work on its
# own: libtorch_cuda.so is linked against CUDA libraries (libcudart, libcublas, libcufile,
# libcusparseLt, libnvshmem_host, ...) that torch's __init__ loads at import even when no GPU is
# used, so `import torch` fails without them. The recipe therefore installs torch WITH its CUDA
# runtime wheels (nvidia-*, cuda-toolkit, triton): about 5.4 GB for the whole venv, 1 minute on a
# fast link. torch.cuda.is_available() is simply False on a machine without a GPU; everything
# here runs on the CPU.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PEFT_VENV:-$REPO/.cache/venv-peft}"
PYTHON="${PYTHON:-python3}"

# Pinned, tested together on Python 3.11 (Debian 12).
PINS=(
  torch==2.15.0
  transformers==5.24.0
  peft==0.21.2
  accelerate==1.15.0
  safetensors==0.8.0
  tokenizers==0.23.3
  huggingface_hub==2.4.0
  gguf==0.19.0
  sentencepiece==0.2.3
  numpy==2.4.6
)

check() {
  "$VENV/bin/python" - "${PINS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    got = version(name)
    if got.split("+")[0] != want:
        sys.exit(f"{name} {got} != {want}")
import torch
a = torch.randn(8, 8, requires_grad=True)
(a @ torch.randn(8, 8)).sum().backward()
assert a.grad is not None
EOF
}

if [ -x "$VENV/bin/python" ] && check; then
  echo "setup_peft_venv: $VENV is ready"
  exit 0
fi

echo "setup_peft_venv: creating $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
if ! check; then
  echo "setup_peft_venv: the venv at $VENV does not import the pinned packages" >&2
  exit 1
fi
"$VENV/bin/python" -c 'import torch, transformers, peft
print("setup_peft_venv: torch", torch.__version__, "transformers", transformers.__version__,
      "peft", peft.__version__, "cuda available:", torch.cuda.is_available())'
du -sh "$VENV" 2>/dev/null | sed 's/^/setup_peft_venv: size /'
