#!/usr/bin/env python3
"""Inter-token latency of N concurrent GenerateStream requests against a running lorad, for
comparing serving while a fine-tune job trains with serving on an idle daemon.

  python3 serving_latency.py --addr 127.0.0.1:50051 [--streams 8] [--rounds 3]
                             [--max_new_tokens 64] [--adapter ID]

Each round starts `--streams` streams at once (greedy, ignore_eos) and records the time between
consecutive streamed tokens of each stream (the first token is excluded: it measures prefill
and queueing). Prints p50/p99/mean inter-token latency in ms and the aggregate tokens/s as one
JSON line. Needs grpcio and grpcio-tools (e.g. the venv examples/python_client/test_client.py
makes).
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "python_client"))
import client  # noqa: E402  pylint: disable=wrong-import-position

PROMPTS = [
    "Write a short note about the ocean.",
    "Explain what a compiler does.",
    "List three uses of copper.",
    "Describe a quiet morning in a small town.",
    "What is the capital of France and why is it famous?",
    "Give advice to a new programmer.",
    "Summarize the water cycle.",
    "Tell a story about a lost key.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max_new_tokens", type=int, default=64)
    ap.add_argument("--adapter", default="")
    args = ap.parse_args()

    import grpc  # pylint: disable=import-outside-toplevel
    pb2, pb2_grpc = client.load_stubs()
    stub = pb2_grpc.InferenceStub(grpc.insecure_channel(args.addr))
    gaps, lock = [], threading.Lock()
    tokens = 0

    def one(i):
        nonlocal tokens
        req = pb2.GenerateRequest(prompt=PROMPTS[i % len(PROMPTS)], adapter_id=args.adapter)
        req.sampling.max_new_tokens = args.max_new_tokens
        req.sampling.ignore_eos = True
        last, mine, count = None, [], 0
        for resp in stub.GenerateStream(req, timeout=600):
            now = time.monotonic()
            n = len(resp.token_ids)
            if n == 0:
                continue
            if last is not None:
                mine.extend([(now - last) / n] * n)
            last = now
            count += n
        with lock:
            gaps.extend(mine)
            tokens += count

    start = time.monotonic()
    for _ in range(args.rounds):
        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - start
    gaps.sort()

    def pct(p):
        return 1000 * gaps[min(len(gaps) - 1, int(p / 100 * len(gaps)))]

    print(json.dumps({"streams": args.streams, "p50_ms": round(pct(50), 2),
                      "p99_ms": round(pct(99), 2),
                      "mean_ms": round(1000 * sum(gaps) / len(gaps), 2),
                      "tokens_per_second": round(tokens / elapsed, 1)}))


if __name__ == "__main__":
    main()
