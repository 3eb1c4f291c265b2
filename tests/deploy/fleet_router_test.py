#!/usr/bin/env python3
"""Three lorad replicas on the default model behind deploy/router/haproxy.cfg (Debian's HAProxy,
loopback only): requests carrying x-lorad-adapter stick to one replica per adapter (read off each
replica's lorad_adapter_requests_total), over gRPC (loractl) and HTTP alike; after a kill -9 of
one replica, HAProxy's health check takes it out, only its adapters move, and the others stay
where they were.

  fleet_router_test.py --lorad BIN --loractl BIN --soak BIN --source ROOT --work DIR [--model GGUF]

Exits 77 (ctest: skipped) when haproxy is not installed or the default model is missing.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_test_support import free_port, http, parse_args, require, work_dir_with_adapters  # noqa: E402

ADAPTERS = [f"soak-{i}" for i in range(6)]


class Replica:
    def __init__(self, args, data, name):
        self.name = name
        self.grpc, self.http, self.metrics = free_port(), free_port(), free_port()
        preload = ",".join(f"{a}=soak/a{a.split('-')[1]}" for a in ADAPTERS)
        self.log = open(os.path.join(data, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [args.lorad, f"--model={args.model}", f"--listen=127.0.0.1:{self.grpc}",
             f"--http_listen=127.0.0.1:{self.http}", f"--metrics_listen=127.0.0.1:{self.metrics}",
             f"--data_dir={data}/{name}", f"--adapter_root={data}/adapters", "--threads=1",
             "--kv_cache_mb=64", f"--preload_adapters={preload}"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)

    def wait_ready(self):
        deadline = time.time() + 300
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.strip() == "lorad ready":
                return
        raise SystemExit(f"FAIL: {self.name} did not start (see {self.log.name})")

    def adapter_requests(self):
        status, text = http(f"http://127.0.0.1:{self.metrics}/metrics")
        counts = {}
        for m in re.finditer(r'^lorad_adapter_requests_total\{adapter="([^"]+)"\} ([0-9.e+]+)$', text, re.M):
            counts[m.group(1)] = float(m.group(2))
        return counts


def render_haproxy(source, replicas, grpc_port, http_port, path):
    """deploy/router/haproxy.cfg with this run's listen ports and replica addresses."""
    text = open(os.path.join(source, "deploy", "router", "haproxy.cfg")).read()
    text = text.replace("bind 127.0.0.1:60051", f"bind 127.0.0.1:{grpc_port}")
    text = text.replace("bind 127.0.0.1:60080", f"bind 127.0.0.1:{http_port}")
    for i, r in enumerate(replicas, 1):
        text = re.sub(rf"server replica{i} 127\.0\.0\.1:\d+ proto h2 ",
                      f"server replica{i} 127.0.0.1:{r.grpc} proto h2 ", text)
        text = re.sub(rf"server replica{i} 127\.0\.0\.1:\d+\n",
                      f"server replica{i} 127.0.0.1:{r.http}\n", text)
    for r in replicas:
        if f":{r.grpc} " not in text or f":{r.http}\n" not in text:
            raise SystemExit("FAIL: haproxy.cfg no longer has the three replica server lines")
    with open(path, "w") as f:
        f.write(text)


def owners(replicas, before):
    """adapter -> the replicas whose count for it grew since `before`."""
    out = {a: [] for a in ADAPTERS}
    for r in replicas:
        now = r.adapter_requests()
        for a in ADAPTERS:
            if now.get(a, 0) > before.get(r.name, {}).get(a, 0):
                out[a].append(r.name)
    return out


def snapshot(replicas):
    return {r.name: r.adapter_requests() for r in replicas}


def send_round(args, grpc_port, http_port, failures, label):
    for a in ADAPTERS:
        for _ in range(2):
            g = subprocess.run([args.loractl, f"--addr=127.0.0.1:{grpc_port}", "generate",
                                f"--adapter={a}", "--max_new_tokens=2", "hello"],
                               capture_output=True, text=True, timeout=120)
            if g.returncode != 0:
                failures.append(f"{label}: gRPC {a} through the router: {g.stderr.strip()}")
        status, body = http(f"http://127.0.0.1:{http_port}/v1/completions",
                            {"model": a, "prompt": "hello", "max_tokens": 2},
                            {"x-lorad-adapter": a})
        if status != 200:
            failures.append(f"{label}: HTTP {a} through the router: {status} {body[:200]}")


def main():
    args = parse_args()
    require(args, "haproxy")
    work = work_dir_with_adapters(args, "fleet.", len(ADAPTERS))
    data = os.path.join(work, "data")
    replicas, haproxy, failures = [], None, []
    try:
        replicas = [Replica(args, data, f"replica{i}") for i in (1, 2, 3)]
        for r in replicas:
            r.wait_ready()
        grpc_port, http_port = free_port(), free_port()
        cfg = os.path.join(data, "haproxy.cfg")
        render_haproxy(args.source, replicas, grpc_port, http_port, cfg)
        check = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"FAIL: haproxy -c: {check.stdout} {check.stderr}")
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg],
                                   stdout=open(os.path.join(data, "haproxy.log"), "w"),
                                   stderr=subprocess.STDOUT)
        time.sleep(3)  # the first health checks pass (rise 2, inter 1s)

        before = snapshot(replicas)
        send_round(args, grpc_port, http_port, failures, "round 1")
        placed = owners(replicas, before)
        print("round 1:", placed)
        for a, rs in placed.items():
            if len(rs) != 1:
                failures.append(f"round 1: {a} served by {rs}, not by exactly one replica")
        used = {rs[0] for rs in placed.values() if len(rs) == 1}
        if len(used) < 2:
            failures.append(f"round 1: {len(ADAPTERS)} adapters all on {used}: no spread")

        # kill -9 the replica with the most adapters; the health check takes it out.
        counts = {r.name: sum(1 for rs in placed.values() if rs == [r.name]) for r in replicas}
        victim = max(replicas, key=lambda r: counts[r.name])
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)
        time.sleep(4)  # fall 2 at inter 1s, with margin
        alive = [r for r in replicas if r is not victim]
        before = snapshot(alive)
        send_round(args, grpc_port, http_port, failures, "after the kill")
        moved = owners(alive, before)
        print(f"after killing {victim.name}:", moved)
        for a, rs in moved.items():
            if len(rs) != 1:
                failures.append(f"after the kill: {a} served by {rs}, not by exactly one replica")
            elif placed[a] != [victim.name] and rs != placed[a]:
                failures.append(f"after the kill: {a} moved from {placed[a]} to {rs} "
                                f"although its replica is alive")
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=30)
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
                if r.proc.wait(timeout=60) != 0:
                    failures.append(f"{r.name} did not exit 0 on SIGTERM")
    for f in failures:
        print("FAIL:", f)
    if failures:
        print(f"logs kept in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
