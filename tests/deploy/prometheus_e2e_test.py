#!/usr/bin/env python3
"""The real Prometheus server (Debian's package) scraping a real lorad on the default model, with
deploy/observability's rules loaded: drives traffic (gRPC over adapters through lorad_soak, HTTP
through the OpenAI front, a few errors) and one short fine-tune job, then evaluates through
Prometheus's HTTP query API every expression a dashboard panel, a recording rule or an alert
uses. Each must parse and return series over the run (an alert's compared expression, without
its threshold), every rule must evaluate with health "ok", and the lorad target must be up. A
metric name that drifts from what the dashboard or the rules read fails here.

  prometheus_e2e_test.py --lorad BIN --loractl BIN --soak BIN --source ROOT --work DIR
      [--model GGUF] [--requests N]

Exits 77 (ctest: skipped) when prometheus is not installed or the default model is missing.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_test_support import free_port, http, parse_args, require, work_dir_with_adapters  # noqa: E402
from deploy_test import alert_lhs  # noqa: E402

SCRAPE_S = 1


def start_lorad(args, data):
    proc = subprocess.Popen(
        [args.lorad, f"--model={args.model}", "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
         "--metrics_listen=127.0.0.1:0", f"--data_dir={data}", "--threads=2",
         "--checkpoint_every_steps=2"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(data, "lorad.log"), "w"), text=True)
    ports = {}
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stdout.readline().strip()
        if not line:
            break
        m = re.match(r"lorad listening on (\S+)", line)
        if m:
            ports["grpc"] = m.group(1)
        m = re.match(r"lorad metrics on http://(\S+)/metrics", line)
        if m:
            ports["metrics"] = m.group(1)
        m = re.match(r"lorad http on https?://(\S+)/v1", line)
        if m:
            ports["http"] = m.group(1)
        if line == "lorad ready":
            return proc, ports
    proc.kill()
    raise SystemExit(f"FAIL: lorad did not start; log:\n{open(os.path.join(data, 'lorad.log')).read()[-3000:]}")


def start_prometheus(args, work, metrics_addr):
    port = free_port()
    rules = os.path.join(args.source, "deploy", "observability", "rules", "lorad.rules.yml")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: {SCRAPE_S}s
  evaluation_interval: {SCRAPE_S}s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: lorad
    static_configs:
      - targets: ["{metrics_addr}"]
""")
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/tsdb",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if http(base + "/-/ready", timeout=2)[0] == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"FAIL: prometheus did not start:\n{open(os.path.join(work, 'prometheus.log')).read()[-3000:]}")


def api(base, path, **params):
    status, body = http(base + path + ("?" + urllib.parse.urlencode(params) if params else ""))
    return status, json.loads(body)


def drive_traffic(args, ports, data):
    # A short fine-tune job first (it runs while the traffic flows and is waited for at the end).
    dataset = os.path.join(data, "train.jsonl")
    with open(dataset, "w") as f:
        for i in range(8):
            f.write(json.dumps({"prompt": f"Ticket {i}: printer jams.", "completion": " Open tray 2."}) + "\n")
    job = subprocess.run([args.loractl, f"--addr={ports['grpc']}", "jobs", "create", "--adapter_id=e2e-job",
                          f"--dataset={dataset}", "--max_steps=6", "--batch_size=2", "--rank=4",
                          "--validation_split=0.25", "--eval_every_steps=2"],
                         capture_output=True, text=True, timeout=120)
    if job.returncode != 0:
        raise SystemExit(f"FAIL: jobs create: {job.stdout} {job.stderr}")
    m = re.search(r"(job-[0-9a-zA-Z-]+|[0-9a-f]{8,})", job.stdout)
    if not m:
        raise SystemExit(f"FAIL: no job id in: {job.stdout}")
    job_id = m.group(1)
    # gRPC traffic over adapters (cancels, deadlines, churn), through the soak client.
    soak = subprocess.run([args.soak, f"--addr={ports['grpc']}", f"--requests={args.requests}",
                           "--clients=4", "--adapters=3", "--finetune=false", "--max_new_tokens=8",
                           "--churn_ms=2000"], capture_output=True, text=True, timeout=900)
    print(soak.stdout[-1500:])
    if soak.returncode != 0:
        raise SystemExit(f"FAIL: lorad_soak: {soak.stderr[-2000:]}")
    # HTTP traffic: completions on the base model and an adapter, a stream, and a 404.
    base = "http://" + ports["http"]
    status, models = http(base + "/v1/models")
    assert status == 200, models
    for model in [json.loads(models)["data"][0]["id"], "soak-0"]:
        status, body = http(base + "/v1/completions", {"model": model, "prompt": "Hello", "max_tokens": 4})
        if status != 200:
            raise SystemExit(f"FAIL: HTTP completion on {model}: {status} {body}")
    status, _ = http(base + "/v1/completions", {"model": "no-such-model", "prompt": "x"})
    assert status == 404, status
    # Wait for the job to end.
    deadline = time.time() + 600
    while time.time() < deadline:
        get = subprocess.run([args.loractl, f"--addr={ports['grpc']}", "jobs", "get", job_id],
                             capture_output=True, text=True, timeout=60)
        if re.search(r"SUCCEEDED|succeeded", get.stdout):
            return
        if re.search(r"FAILED|CANCELLED|failed|cancelled", get.stdout):
            raise SystemExit(f"FAIL: the job ended badly: {get.stdout}")
        time.sleep(1)
    raise SystemExit("FAIL: the fine-tune job did not finish in 10 minutes")


def dashboard_exprs(source):
    with open(os.path.join(source, "deploy", "observability", "grafana", "lorad-dashboard.json")) as f:
        dash = json.load(f)
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m").replace('=~"$instance"', '=~".*"')
            out.append((f"panel '{panel['title']}' {t['refId']}", expr))
    return out


def rule_exprs(base):
    status, body = api(base, "/api/v1/rules")
    assert status == 200 and body["status"] == "success", body
    out, unhealthy = [], []
    for group in body["data"]["groups"]:
        for rule in group["rules"]:
            if rule.get("health") != "ok":
                unhealthy.append(f"{rule['name']}: {rule.get('health')} {rule.get('lastError')}")
            if rule["type"] == "recording":
                out.append((f"recording rule {rule['name']} (its series)", rule["name"]))
                out.append((f"recording rule {rule['name']} (its expr)", rule["query"]))
            else:
                out.append((f"alert {rule['name']} (parses)", rule["query"]))
                lhs = alert_lhs(rule["query"])
                out.append((f"alert {rule['name']} (compared expression)", lhs or "<no lhs>"))
    return out, unhealthy


def main():
    args = parse_args(lambda p: p.add_argument("--requests", type=int, default=120))
    require(args, "prometheus")
    work = work_dir_with_adapters(args, "prometheus_e2e.", 3)
    data = os.path.join(work, "data")
    lorad = prom = None
    failures = []
    try:
        lorad, ports = start_lorad(args, data)
        prom, base = start_prometheus(args, work, ports["metrics"])
        start = time.time()
        drive_traffic(args, ports, data)
        time.sleep(5 * SCRAPE_S)  # the last samples scraped, the rules evaluated on them
        end = time.time()

        status, targets = api(base, "/api/v1/targets")
        active = targets["data"]["activeTargets"]
        if not active or any(t["health"] != "up" for t in active):
            failures.append(f"lorad target not up: {active}")
        exprs, unhealthy = rule_exprs(base)
        failures += [f"rule unhealthy: {u}" for u in unhealthy]
        exprs = dashboard_exprs(args.source) + exprs
        for what, expr in exprs:
            status, body = api(base, "/api/v1/query_range", query=expr, start=f"{start:.3f}",
                               end=f"{end:.3f}", step=f"{SCRAPE_S}s")
            if status != 200 or body.get("status") != "success":
                failures.append(f"{what}: does not evaluate: {expr}: {body.get('error')}")
                continue
            if "(parses)" in what:
                continue
            if not body["data"]["result"]:
                failures.append(f"{what}: no series over the run: {expr}")
        print(f"evaluated {len(exprs)} expressions over {end - start:.0f} s of traffic")
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        if lorad is not None:
            lorad.send_signal(signal.SIGTERM)
            rc = lorad.wait(timeout=60)
            if rc != 0:
                failures.append(f"lorad exited {rc} on SIGTERM")
    for f in failures:
        print("FAIL:", f)
    if failures:
        print(f"logs kept in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
