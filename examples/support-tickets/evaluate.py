#!/usr/bin/env python3
"""Compares the base model and a fine-tuned adapter on the held-out tickets, through a running
lorad: for each ticket in heldout.jsonl it asks for a greedy reply (the system and user messages
of the chat; the assistant reply is the reference) with and without the adapter, and scores
what the policy requires: escalate exactly the tickets the reference escalates, and sign off
with "— Acme Support".

  python3 evaluate.py --addr 127.0.0.1:50051 --adapter support-v1 [--show 3] [--max_new_tokens 160]

Prints a summary table and the first --show tickets side by side. Needs grpcio and
grpcio-tools (e.g. the venv examples/python_client/test_client.py makes).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python_client"))
import client  # noqa: E402  pylint: disable=wrong-import-position

ESCALATED = "ESCALATED to Tier 2:"
SIGNOFF = "— Acme Support"


def reply(stub, pb2, messages, adapter, max_new_tokens):
    req = pb2.GenerateRequest(adapter_id=adapter)
    for m in messages:
        req.messages.messages.add(role=m["role"], content=m["content"])
    req.sampling.max_new_tokens = max_new_tokens
    req.sampling.temperature = 0.0
    return stub.Generate(req, timeout=600).text


def score(text, want_escalation):
    escalated = text.strip().startswith(ESCALATED)
    return escalated == want_escalation, SIGNOFF in text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "heldout.jsonl"))
    ap.add_argument("--show", type=int, default=3)
    ap.add_argument("--max_new_tokens", type=int, default=160)
    args = ap.parse_args()

    import grpc  # pylint: disable=import-outside-toplevel
    pb2, pb2_grpc = client.load_stubs()
    stub = pb2_grpc.InferenceStub(grpc.insecure_channel(args.addr))
    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    totals = {"base": [0, 0], "adapter": [0, 0]}
    shown = []
    for row in rows:
        prompt = [m for m in row["messages"] if m["role"] != "assistant"]
        reference = next(m["content"] for m in row["messages"] if m["role"] == "assistant")
        want = reference.startswith(ESCALATED)
        answers = {}
        for name, adapter in (("base", ""), ("adapter", args.adapter)):
            text = reply(stub, pb2, prompt, adapter, args.max_new_tokens)
            ok_escalation, ok_signoff = score(text, want)
            totals[name][0] += ok_escalation
            totals[name][1] += ok_signoff
            answers[name] = text
        if len(shown) < args.show:
            shown.append((prompt[-1]["content"], answers))
    n = len(rows)
    print(f"held-out tickets: {n} ({sum(1 for r in rows if any(m['role'] == 'assistant' and m['content'].startswith(ESCALATED) for m in r['messages']))} should be escalated)")
    print("| model | escalation decision right | signs off '— Acme Support' |")
    print("|---|---|---|")
    for name in ("base", "adapter"):
        print(f"| {name} | {totals[name][0]}/{n} | {totals[name][1]}/{n} |")
    for ticket, answers in shown:
        print("\n### Ticket\n" + ticket)
        for name in ("base", "adapter"):
            print(f"\n**{name}:**\n" + answers[name].strip())


if __name__ == "__main__":
    main()
