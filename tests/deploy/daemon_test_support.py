"""What the tests that run real daemons on the default model share (prometheus_e2e_test.py,
fleet_router_test.py): the common flags, the skip checks, a work dir with random adapters for
the model, free ports and small HTTP calls."""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

SKIP = 77


def parse_args(extra=None):
    """--lorad --loractl --soak --source --work, and --model (default: $LORAD_DEFAULT_MODEL, else
    the source's data/models/). `extra(parser)` adds a test's own flags."""
    parser = argparse.ArgumentParser()
    for flag in ("--lorad", "--loractl", "--soak", "--source", "--work"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--model")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if not args.model:
        args.model = os.environ.get("LORAD_DEFAULT_MODEL") or os.path.join(
            args.source, "data", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    return args


def require(args, tool):
    """Exits SKIP when `tool` is not installed or the default model is missing."""
    if shutil.which(tool) is None:
        print(f"SKIP: {tool} is not installed (scripts/install_deps.sh installs it)")
        sys.exit(SKIP)
    if not os.path.exists(args.model):
        print(f"SKIP: no default model at {args.model} (scripts/fetch_model.sh)")
        sys.exit(SKIP)


def work_dir_with_adapters(args, prefix, count):
    """A fresh dir under --work holding `count` random adapters for the model in
    <dir>/data/adapters/soak/a<i> (lorad_soak --write_adapters); returns <dir>."""
    os.makedirs(args.work, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.work, prefix=prefix)
    adapters = os.path.join(work, "data", "adapters")
    os.makedirs(adapters)
    w = subprocess.run([args.soak, f"--write_adapters={adapters}", f"--model={args.model}",
                        f"--adapters={count}"], capture_output=True, text=True, timeout=300)
    if w.returncode != 0:
        raise SystemExit(f"FAIL: writing adapters: {w.stderr}")
    return work


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, body=None, headers=None, timeout=60):
    """GET (body None) or POST JSON; (status, text), error statuses included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
