"""One helper for the Python tests that need packages from PyPI: make (or reuse) a venv with
them, or exit 77 (ctest: skipped) when they cannot be installed, e.g. without network access."""

import os
import subprocess
import sys

SKIP = 77


def venv_python(venv, packages, imports):
    """The venv's python, with `packages` (pip names) installed so that `imports` (module
    names) import. Creates the venv and installs what is missing; exits SKIP on failure."""
    python = os.path.join(venv, "bin", "python")
    check = [python, "-c", "import " + ", ".join(imports)]
    if os.path.exists(python) and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    if not os.path.exists(python):
        made = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True)
        if made.returncode != 0:
            print(f"SKIP: cannot create a venv: {made.stderr.decode()[-500:]}")
            sys.exit(SKIP)
    names = " ".join(packages)
    try:
        pip = subprocess.run([python, "-m", "pip", "install", "--quiet", "--timeout", "30", *packages],
                             capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        print(f"SKIP: pip install {names} timed out (no PyPI access?)")
        sys.exit(SKIP)
    if pip.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        print(f"SKIP: cannot install {names}: {pip.stderr.decode()[-500:]}")
        sys.exit(SKIP)
    return python
