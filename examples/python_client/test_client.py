#!/usr/bin/env python3
"""Test of client.py: starts lorad on a tiny random model and checks that streamed and unary
greedy generations agree, that tokenize answers, and that errors exit 1 with the gRPC code.

Makes (or reuses) a venv with grpcio and grpcio-tools; exits 77 (ctest: skipped) when they
cannot be installed, e.g. without network access.
"""

import argparse
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "pyutil"))
from venv_python import venv_python  # noqa: E402


def run_client(python, addr, *args):
    return subprocess.run([python, os.path.join(HERE, "client.py"), "--addr", addr, *args],
                          capture_output=True, text=True, timeout=120)


def expect(condition, what):
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lorad", required=True)
    parser.add_argument("--write_model", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--work_dir", required=True)
    args = parser.parse_args()

    python = venv_python(args.venv, ["grpcio", "grpcio-tools"], ["grpc", "grpc_tools"])
    model = os.path.join(args.work_dir, "python_client_tiny.gguf")
    subprocess.run([args.write_model, model], check=True)
    lorad = subprocess.Popen(
        [args.lorad, "--listen=127.0.0.1:0", "--metrics_listen=", "--http_listen=", f"--model={model}",
         f"--data_dir={args.work_dir}", "--threads=1", "--kv_cache_mb=16"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = lorad.stdout.readline().strip()
        expect(first.startswith("lorad listening on "), f"startup line: {first!r}")
        addr = first[len("lorad listening on "):]
        expect(lorad.stdout.readline().strip() == "lorad ready", "lorad ready")

        gen = ["generate", "--max_new_tokens", "12", "hello world"]
        unary = run_client(python, addr, *gen)
        expect(unary.returncode == 0, f"unary generate: {unary.stderr}")
        stream = run_client(python, addr, *gen, "--stream")
        expect(stream.returncode == 0, f"streamed generate: {stream.stderr}")
        expect(stream.stdout == unary.stdout, f"stream {stream.stdout!r} != unary {unary.stdout!r}")
        expect("completion_tokens=" in stream.stderr, f"usage: {stream.stderr}")

        tokens = run_client(python, addr, "tokenize", "hello")
        expect(tokens.returncode == 0 and tokens.stdout.strip().split()[0].isdigit(),
               f"tokenize: {tokens.stdout} {tokens.stderr}")

        bad = run_client(python, addr, "generate", "--top_p", "2", "x")
        expect(bad.returncode == 1, f"bad request exit code {bad.returncode}")
        expect("INVALID_ARGUMENT: sampling.top_p" in bad.stderr, f"bad request: {bad.stderr}")
    finally:
        lorad.send_signal(signal.SIGTERM)
        code = lorad.wait(timeout=30)
    expect(code == 0, f"lorad exit code {code}")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
