#!/usr/bin/env python3
"""The official `openai` Python client (from PyPI) against a real lorad on the tiny model:
completions and chat, with and without streaming; usage in the final chunk; stop strings;
adapter selection by `model`; presence/frequency penalties; runtime adapter load and unload;
NotFoundError for an unknown model; AuthenticationError and
PermissionDeniedError; RateLimitError under a flood; a client that drops a stream frees its slot;
greedy HTTP output equal to the base model's across calls; and the daemon stays up after
malformed bodies, wrong types, a huge body, a slow sender and many idle keep-alive connections.

Makes (or reuses) a venv with `openai`; exits 77 (ctest: skipped) when it cannot be installed.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyutil"))
from venv_python import venv_python  # noqa: E402


def start_lorad(args, work, extra):
    proc = subprocess.Popen(
        [args.lorad, "--listen=127.0.0.1:0", "--metrics_listen=", "--http_listen=127.0.0.1:0",
         f"--model={work}/tiny.gguf", f"--data_dir={work}", f"--adapter_root={work}/adapters",
         "--preload_adapters=good=good", "--threads=1", "--kv_cache_mb=16", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline().strip() for _ in range(3)]
    http = [l for l in lines if l.startswith("lorad http on ")]
    if not http or lines[-1] != "lorad ready":
        proc.kill()
        raise SystemExit(f"FAIL: lorad did not start: {lines} {proc.stderr.read()[-2000:]}")
    return proc, http[0][len("lorad http on "):]


def stop(proc):
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


CLIENT_CHECKS = r'''
import json, sys, threading, time
import openai
base_url, mode = sys.argv[1], sys.argv[2]
BASE = "tiny"

def expect(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)

if mode == "open":
    c = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)
    ids = [m.id for m in c.models.list().data]
    expect(ids == [BASE, "good"], f"models {ids}")
    r = c.completions.create(model=BASE, prompt="hello world", max_tokens=8, temperature=0,
                             extra_body={"ignore_eos": True})
    expect(r.object == "text_completion" and r.usage.completion_tokens == 8, r)
    again = c.completions.create(model=BASE, prompt="hello world", max_tokens=8, temperature=0,
                                 extra_body={"ignore_eos": True})
    expect(again.choices[0].text == r.choices[0].text, "greedy is repeatable")
    adapted = c.completions.create(model="good", prompt="hello world", max_tokens=8,
                                   temperature=0, extra_body={"ignore_eos": True})
    expect(adapted.choices[0].text != r.choices[0].text, "the adapter changes the output")
    sglang = c.completions.create(model=f"{BASE}:good", prompt="hello world", max_tokens=8,
                                  temperature=0, extra_body={"ignore_eos": True})
    expect(sglang.choices[0].text == adapted.choices[0].text, "base:adapter names the adapter")
    # Streaming completions: the same text, the usage chunk last.
    text, usage = "", None
    for chunk in c.completions.create(model=BASE, prompt="hello world", max_tokens=8,
                                      temperature=0, stream=True,
                                      stream_options={"include_usage": True},
                                      extra_body={"ignore_eos": True}):
        if chunk.choices:
            text += chunk.choices[0].text
        if chunk.usage:
            usage = chunk.usage
    expect(text == r.choices[0].text, f"stream {text!r} != {r.choices[0].text!r}")
    expect(usage is not None and usage.completion_tokens == 8, f"usage {usage}")
    # Stop strings: the text ends before the stop string.
    if len(r.choices[0].text) > 3:
        stop_at = r.choices[0].text[2:4]
        s = c.completions.create(model=BASE, prompt="hello world", max_tokens=8, temperature=0,
                                 stop=[stop_at], extra_body={"ignore_eos": True})
        expect(stop_at not in s.choices[0].text and s.choices[0].finish_reason == "stop",
               f"stop {stop_at!r}: {s.choices[0]}")
    # Chat, whole and streamed, with logprobs.
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    whole = c.chat.completions.create(model="good", messages=msgs, max_tokens=6, temperature=0,
                                      logprobs=True, top_logprobs=2,
                                      extra_body={"ignore_eos": True})
    expect(whole.choices[0].message.role == "assistant", whole)
    expect(len(whole.choices[0].logprobs.content) == 6, whole.choices[0].logprobs)
    expect(len(whole.choices[0].logprobs.content[0].top_logprobs) == 2, "top_logprobs")
    parts, roles, finish = [], [], None
    for chunk in c.chat.completions.create(model="good", messages=msgs, max_tokens=6,
                                           temperature=0, stream=True,
                                           extra_body={"ignore_eos": True}):
        d = chunk.choices[0].delta
        if d.role:
            roles.append(d.role)
        if d.content:
            parts.append(d.content)
        finish = chunk.choices[0].finish_reason or finish
    expect(roles == ["assistant"], f"roles {roles}")
    expect("".join(parts) == whole.choices[0].message.content, "chat stream == chat")
    expect(finish == "length", finish)
    # presence_penalty / frequency_penalty: OpenAI's additive penalties on generated tokens.
    plain = c.completions.create(model=BASE, prompt="count", max_tokens=24, temperature=0,
                                 extra_body={"ignore_eos": True}, logprobs=1)
    penalized = c.completions.create(model=BASE, prompt="count", max_tokens=24, temperature=0,
                                     frequency_penalty=2.0, presence_penalty=2.0,
                                     extra_body={"ignore_eos": True}, logprobs=1)
    plain_tokens = plain.choices[0].logprobs.tokens
    pen_tokens = penalized.choices[0].logprobs.tokens
    expect(len(set(pen_tokens)) >= len(set(plain_tokens)),
           f"penalties repeat more: {pen_tokens} vs {plain_tokens}")
    expect(pen_tokens != plain_tokens, "penalties change greedy output")
    try:
        c.completions.create(model=BASE, prompt="x", max_tokens=2, presence_penalty=5)
        expect(False, "presence_penalty=5 accepted")
    except openai.BadRequestError as e:
        expect("presence_penalty" in str(e), e)
    # vLLM's runtime adapter unload.
    c.post("/load_lora_adapter", body={"lora_name": "tmp", "lora_path": "good"}, cast_to=object)
    expect("tmp" in [m.id for m in c.models.list().data], "loaded adapter listed")
    c.post("/unload_lora_adapter", body={"lora_name": "tmp"}, cast_to=object)
    expect("tmp" not in [m.id for m in c.models.list().data], "unloaded adapter not listed")
    # Errors the client raises by type.
    try:
        c.completions.create(model="nope", prompt="x", max_tokens=2)
        expect(False, "unknown model accepted")
    except openai.NotFoundError as e:
        expect(e.status_code == 404, e)
    try:
        c.completions.create(model=BASE, prompt="x", max_tokens=2, n=2)
        expect(False, "n=2 accepted")
    except openai.BadRequestError as e:
        expect("n" in str(e), e)
    # A dropped stream frees its slot: many in a row, then a normal request still answers.
    for _ in range(5):
        with c.completions.create(model=BASE, prompt="count", max_tokens=200, stream=True,
                                  extra_body={"ignore_eos": True}) as s:
            for i, _ in enumerate(s):
                if i == 2:
                    break
    r = c.completions.create(model=BASE, prompt="hi", max_tokens=2, timeout=20)
    expect(r.usage.completion_tokens == 2, "answered after dropped streams")
    print("open: ok")
elif mode == "auth":
    none = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0, timeout=30)
    try:
        none.completions.create(model=BASE, prompt="x", max_tokens=2)
        expect(False, "bad token accepted")
    except openai.AuthenticationError as e:
        expect(e.status_code == 401, e)
    inf = openai.OpenAI(base_url=base_url, api_key="inf-token", max_retries=0, timeout=30)
    r = inf.completions.create(model=BASE, prompt="x", max_tokens=2)
    expect(r.usage.completion_tokens == 2, r)
    try:
        inf.post("/load_lora_adapter", body={"lora_name": "g2", "lora_path": "good"},
                 cast_to=object)
        expect(False, "inference token loaded an adapter")
    except openai.PermissionDeniedError as e:
        expect(e.status_code == 403, e)
    print("auth: ok")
elif mode == "flood":
    c = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)
    limited, ok = [], []
    def one():
        try:
            c.completions.create(model=BASE, prompt="flood", max_tokens=64,
                                 extra_body={"ignore_eos": True})
            ok.append(1)
        except openai.RateLimitError as e:
            limited.append(e.response.headers.get("retry-after"))
    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads: t.start()
    for t in threads: t.join()
    expect(limited and all(h == "1" for h in limited), f"limited {limited} ok {len(ok)}")
    expect(ok, "some requests were served")
    print(f"flood: ok ({len(limited)} rate-limited, {len(ok)} served)")
'''


def raw(port, data, timeout=10):
    """Sends raw bytes, returns the status line (or '' when the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            return s.recv(4096).decode(errors="replace").split("\r\n")[0]
        except socket.timeout:
            return "timeout"


def abuse(port):
    """Malformed and hostile HTTP; the daemon must answer each and stay up."""
    def post(body, ctype="application/json"):
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        return raw(port, head + body)
    for body, want in [(b"{", "400"), (b"null", "400"), (b'{"model": 1, "prompt": "x"}', "400"),
                       (b'{"model": "tiny", "prompt": ["a", "b"]}', "400"),
                       (b'{"model": "tiny", "prompt": "x", "max_tokens": 1e300}', "400"),
                       (b'{"model": "tiny", "prompt": "x", "stop": [1]}', "400"),
                       (b"\xff\xfe\x00garbage", "400"), (b"x" * (5 << 20), "413")]:
        status = post(body)
        if want not in status:
            raise SystemExit(f"FAIL: body {body[:40]!r}: {status!r}, want {want}")
    # A slow sender (slowloris): headers one byte at a time, then silence; others are served.
    slow = socket.create_connection(("127.0.0.1", port))
    for b in b"POST /v1/completions HTTP/1.1\r\nHost":
        slow.send(bytes([b]))
        time.sleep(0.01)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    status = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if "200" not in status:
        raise SystemExit(f"FAIL: /health with a slow sender and 100 idle connections: {status!r}")
    for s in idle + [slow]:
        s.close()
    print("abuse: ok")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lorad", required=True)
    parser.add_argument("--write_model", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--work_dir", required=True)
    args = parser.parse_args()
    python = venv_python(args.venv, ["openai"], ["openai"])
    work = os.path.join(args.work_dir, "openai_client")
    os.makedirs(os.path.join(work, "adapters"), exist_ok=True)
    subprocess.run([args.write_model, f"{work}/tiny.gguf", f"{work}/adapters/good"], check=True)
    tokens = os.path.join(work, "tokens.txt")
    with open(tokens, "w") as f:
        f.write("inf-token inference\nadmin-token admin\n")

    def run_checks(url, mode):
        done = subprocess.run([python, "-c", CLIENT_CHECKS, url, mode], capture_output=True,
                              text=True, timeout=600)
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            raise SystemExit(f"FAIL: {mode}: {done.stdout[-2000:]} {done.stderr[-3000:]}")

    for extra, modes in [([], ["open"]), ([f"--auth_tokens_file={tokens}"], ["auth"]),
                         (["--max_queue=2", "--max_running=1"], ["flood"])]:
        proc, url = start_lorad(args, work, extra)
        try:
            for mode in modes:
                run_checks(url, mode)
            if not extra:
                abuse(int(url.split(":")[2].split("/")[0]))
                run_checks(url, "open")  # still serving, the same way
        finally:
            code = stop(proc)
        if code != 0:
            raise SystemExit(f"FAIL: lorad exited {code}: {proc.stderr.read()[-2000:]}")
    print("PASS")


if __name__ == "__main__":
    main()
