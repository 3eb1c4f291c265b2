#!/usr/bin/env python3
"""Checks deploy/ with the real tools each part is meant for.

  deploy_test.py systemd --lorad BIN --source ROOT --venv DIR
      systemd-analyze verify on the unit (paths pointed at this build), the hardening the unit
      must keep, `systemd-analyze security --offline` exposure, and `lorad --check_config` on
      the example config with TimeoutStopSec above its grace period.
  deploy_test.py k8s --lorad BIN --source ROOT --venv DIR
      kubernetes-validate --strict on every manifest (Kubernetes 1.27 and the newest schemas),
      the kustomization listing every file, and the wiring between the objects (probes, ports,
      selectors, grace periods, security context, the ConfigMap's config passing --check_config).
  deploy_test.py container --lorad BIN --source ROOT --venv DIR
      the Dockerfile builds by the README's scripts (each one it names exists), runs as a
      non-root user with a loractl health check, its CMD passes `lorad --check_config`, and
      scripts/runtime_packages.sh resolves this build's binaries to runtime (non -dev) packages.
      The image itself is not built here (no registry for the debian:12 base image).
  deploy_test.py rules --source ROOT --venv DIR
      promtool check config / check rules / test rules, and that every alert has a severity,
      a summary, a runbook and a firing case in the rule tests.

Needs PyYAML and kubernetes-validate from PyPI (a venv under the build dir); exits 77 (ctest:
skipped) when they or the tool under test (systemd-analyze, promtool) are not installed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyutil"))
from venv_python import SKIP, venv_python  # noqa: E402

PACKAGES = ["pyyaml", "kubernetes-validate"]
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        print(f"SKIP: {name} is not installed (scripts/install_deps.sh installs it)")
        sys.exit(SKIP)
    return path


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def check_config(lorad, text, work, extra=()):
    path = os.path.join(work, "check.conf")
    with open(path, "w") as f:
        f.write(text)
    r = run([lorad, f"--config={path}", *extra, "--check_config"])
    check(r.returncode == 0 and "configuration OK" in r.stdout,
          f"lorad --check_config refused the config: {r.stdout} {r.stderr}")


def conf_value(text, key):
    for line in text.splitlines():
        m = re.match(r"\s*" + re.escape(key) + r"\s*=\s*(\S+)", line)
        if m:
            return m.group(1)
    return None


# --- systemd ---------------------------------------------------------------------------------

def unit_directives(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd(args):
    need_tool("systemd-analyze")
    src = os.path.join(args.source, "deploy", "systemd")
    unit_text = open(os.path.join(src, "lorad.service")).read()
    conf_text = open(os.path.join(src, "lorad.conf")).read()
    with tempfile.TemporaryDirectory() as work:
        # The unit names the installed paths; point them at this build for verify.
        local = unit_text.replace("/usr/local/bin/lorad", os.path.abspath(args.lorad)).replace(
            "/usr/local/share/lorad/fetch_model.sh",
            os.path.join(os.path.abspath(args.source), "scripts", "fetch_model.sh"))
        unit = os.path.join(work, "lorad.service")
        with open(unit, "w") as f:
            f.write(local)
        r = run(["systemd-analyze", "verify", unit])
        lorad_lines = [l for l in (r.stdout + r.stderr).splitlines() if "lorad" in l]
        check(r.returncode == 0 and not lorad_lines,
              f"systemd-analyze verify: rc={r.returncode} {lorad_lines}")
        # The verifier must catch a broken unit (so that the check above can fail).
        broken = os.path.join(work, "broken", "lorad.service")
        os.makedirs(os.path.dirname(broken))
        with open(broken, "w") as f:
            f.write(local.replace(os.path.abspath(args.lorad), "/nonexistent/lorad"))
        check(run(["systemd-analyze", "verify", broken]).returncode != 0,
              "systemd-analyze verify accepted a unit whose binary does not exist")

        d = unit_directives(unit_text)
        def has(key, value=None):
            check(key in d and (value is None or value in d[key]),
                  f"lorad.service: {key}={value or '...'} missing (has {d.get(key)})")
        check(d.get("DynamicUser") == ["yes"] or "User" in d, "lorad.service: no DynamicUser/User")
        for key, value in [("StateDirectory", "lorad"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("NoNewPrivileges", "yes"),
                           ("PrivateTmp", "yes"), ("Restart", "on-failure"),
                           ("KillSignal", "SIGTERM")]:
            has(key, value)
        has("ReadWritePaths")
        check(all(p.startswith("%S/lorad") for p in d.get("ReadWritePaths", [""])[0].split()),
              f"ReadWritePaths is wider than the state directory: {d.get('ReadWritePaths')}")
        check("--config=${CONFIGURATION_DIRECTORY}/lorad.conf" in d["ExecStart"][0],
              "ExecStart does not read the config file")

        grace = int(conf_value(conf_text, "grace_period_s") or 8)
        stop_s = int(d.get("TimeoutStopSec", ["90"])[0])
        check(stop_s > grace + 2, f"TimeoutStopSec {stop_s} is not above grace_period_s {grace}")
        check_config(args.lorad, conf_text, work, ["--data_dir=" + work])

        # systemd's own exposure score (0 safest .. 10); the unit must stay well hardened.
        r = run(["systemd-analyze", "security", "--offline=true", unit])
        m = re.search(r"Overall exposure level for lorad.service: ([0-9.]+)", r.stdout + r.stderr)
        if m:
            print(f"systemd-analyze security: exposure {m.group(1)}")
            check(float(m.group(1)) <= 3.0, f"exposure {m.group(1)} above 3.0:\n{r.stdout[-3000:]}")
        else:
            check(False, f"systemd-analyze security --offline gave no score: {r.stdout[-500:]} {r.stderr[-500:]}")


# --- Kubernetes ------------------------------------------------------------------------------

def load_manifests(k8s_dir):
    import yaml
    docs = {}
    for name in sorted(os.listdir(k8s_dir)):
        if name.endswith(".yaml"):
            with open(os.path.join(k8s_dir, name)) as f:
                docs[name] = [d for d in yaml.safe_load_all(f) if d]
    return docs


def test_k8s(args):
    import kubernetes_validate
    k8s_dir = os.path.join(args.source, "deploy", "k8s")
    docs = load_manifests(k8s_dir)
    kustomization = docs.pop("kustomization.yaml")[0]
    check(sorted(kustomization["resources"]) == sorted(docs),
          f"kustomization resources {kustomization['resources']} != files {sorted(docs)}")
    by_kind = {}
    for name, objs in docs.items():
        for obj in objs:
            by_kind.setdefault(obj["kind"], []).append(obj)
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD: no schema in kubernetes-validate; checked by hand below
            for version in ("1.27.0", kubernetes_validate.latest_version()):
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except Exception as e:  # ValidationError and schema errors alike
                    check(False, f"{name} {obj['kind']} against Kubernetes {version}: {e}")
    # The validator must reject a broken object (so that the loop above can fail).
    bad = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
           "spec": {"replicas": "one"}}
    try:
        kubernetes_validate.validate(bad, "1.27.0", strict=True)
        check(False, "kubernetes-validate accepted a broken StatefulSet")
    except Exception:
        pass

    sts = by_kind["StatefulSet"][0]
    pod = sts["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(set(ports) >= {"grpc", "http", "metrics"}, f"container ports {ports}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = container.get(probe, {})
        check(p.get("grpc", {}).get("port") == ports.get("grpc"), f"{probe} is not gRPC on the gRPC port")
    res = container.get("resources", {})
    check({"cpu", "memory"} <= set(res.get("requests", {})) and "memory" in res.get("limits", {}),
          f"resources {res}")
    sc, csc = spec.get("securityContext", {}), container.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"pod securityContext {sc}")
    check(csc.get("allowPrivilegeEscalation") is False and "ALL" in csc.get("capabilities", {}).get("drop", []),
          f"container securityContext {csc}")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = [c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])]
    check("data" in claims and mounts.get("data") == "/data" and "--data_dir=/data" in container["args"],
          "the data dir is not the PVC mounted at /data")

    config = by_kind["ConfigMap"][0]["data"]["lorad.conf"]
    grace = int(conf_value(config, "grace_period_s") or 8)
    check(spec["terminationGracePeriodSeconds"] > grace + 2,
          f"terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} not above grace_period_s {grace}")
    for flag, port in (("listen", "grpc"), ("http_listen", "http"), ("metrics_listen", "metrics")):
        check(conf_value(config, flag) == f"0.0.0.0:{ports.get(port)}", f"config {flag} != container port {port}")
    check(conf_value(config, "open_health") == "true", "probes carry no token: open_health must be on")
    tokens_path = conf_value(config, "auth_tokens_file")
    secret = by_kind["Secret"][0]
    secret_mount = [m for m in container["volumeMounts"] if m["name"] == "tokens"]
    check(secret_mount and tokens_path == secret_mount[0]["mountPath"] + "/tokens" and
          "tokens" in secret.get("stringData", {}), "auth_tokens_file is not the Secret's tokens")
    with tempfile.TemporaryDirectory() as work:
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            f.write(secret["stringData"]["tokens"])
        check_config(args.lorad, config, work,
                     ["--data_dir=" + work, "--auth_tokens_file=" + tokens])

    labels = pod["metadata"]["labels"]
    def selects(selector):
        return all(labels.get(k) == v for k, v in selector.items())
    check(selects(sts["spec"]["selector"]["matchLabels"]), "StatefulSet selector misses its pods")
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    check(sts["spec"]["serviceName"] in services, "StatefulSet serviceName names no Service")
    for svc in services.values():
        check(selects(svc["spec"]["selector"]), f"Service {svc['metadata']['name']} selects no pod")
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports, f"Service port {p['name']} targets no container port")
    pdb = by_kind["PodDisruptionBudget"][0]
    check(selects(pdb["spec"]["selector"]["matchLabels"]), "PodDisruptionBudget selects no pod")
    sm = by_kind["ServiceMonitor"][0]
    check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    main_svc = services["lorad"]
    check(all(main_svc["metadata"]["labels"].get(k) == v
              for k, v in sm["spec"]["selector"]["matchLabels"].items()),
          "ServiceMonitor selector misses the Service")
    svc_ports = {p["name"] for p in main_svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        check(ep["port"] in svc_ports and ep.get("path", "/metrics") == "/metrics",
              f"ServiceMonitor endpoint {ep}")
        for key in ("interval", "scrapeTimeout"):
            check(re.fullmatch(r"([0-9]+(ms|s|m|h))+", ep.get(key, "15s")) is not None, f"{key} {ep.get(key)}")


# --- container ------------------------------------------------------------------------------

def test_container(args):
    import json as _json
    path = os.path.join(args.source, "deploy", "container", "Dockerfile")
    text = open(path).read()
    joined = re.sub(r"\\\n", " ", text)  # continuation lines joined
    instructions = [l.strip() for l in joined.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    froms = [l for l in instructions if l.startswith("FROM ")]
    check(len(froms) >= 2, "the Dockerfile is not multi-stage")
    for script in ("scripts/install_deps.sh", "scripts/build.sh", "scripts/fetch_model.sh",
                   "scripts/runtime_packages.sh"):
        check(script in text, f"the Dockerfile does not use {script}")
    for script in set(re.findall(r"scripts/[A-Za-z0-9_./-]+\.sh", text)):
        check(os.path.exists(os.path.join(args.source, script)), f"the Dockerfile names a missing {script}")
    runtime = joined[joined.rindex("FROM "):]
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    check(users and users[-1].split(":")[0] not in ("0", "root"), f"the runtime stage runs as {users}")
    check(re.search(r"^HEALTHCHECK .*loractl\", \"health", runtime, re.M) is not None,
          "no HEALTHCHECK through loractl health")
    check(re.search(r"^VOLUME \[\"/data\"\]", runtime, re.M) is not None, "/data is not a volume")
    m = re.search(r"^CMD (\[.*\])", runtime, re.M)
    cmd = _json.loads(m.group(1)) if m else []
    check("--data_dir=/data" in cmd, f"CMD {cmd} does not use /data")
    with tempfile.TemporaryDirectory() as work:
        r = run([args.lorad, *[a.replace("/data", work) for a in cmd], "--check_config"])
        check(r.returncode == 0, f"the image's CMD fails --check_config: {r.stdout} {r.stderr}")
    tools = os.path.dirname(os.path.dirname(os.path.abspath(args.lorad)))
    binaries = [os.path.abspath(args.lorad), os.path.join(tools, "tools", "loractl")]
    r = run(["bash", os.path.join(args.source, "scripts", "runtime_packages.sh"), *binaries])
    packages = r.stdout.split()
    print("runtime packages:", " ".join(packages))
    check(r.returncode == 0 and packages, f"runtime_packages.sh: {r.stderr}")
    check(not [p for p in packages if p.endswith("-dev")], f"-dev packages in the runtime: {packages}")
    for lib in ("libtorch", "libgrpc++", "libprotobuf", "libprometheus-cpp-core"):
        check(any(p.startswith(lib) for p in packages), f"{lib} missing from the runtime packages")


# --- Prometheus rules ------------------------------------------------------------------------

ALERT_SHAPE = re.compile(r"^(?P<lhs>.*?)\s*(>|<|==|!=|>=|<=)\s*[0-9.e+-]+$", re.S)


def alert_lhs(expr):
    """The expression an alert compares with its threshold (absent(X): X), or None."""
    expr = expr.strip()
    m = re.fullmatch(r"absent\((.*)\)", expr, re.S)
    if m:
        return m.group(1)
    m = ALERT_SHAPE.match(expr)
    return m.group("lhs") if m else None


def test_rules(args):
    import yaml
    need_tool("promtool")
    obs = os.path.join(args.source, "deploy", "observability")
    rules_path = os.path.join(obs, "rules", "lorad.rules.yml")
    for cmd in (["promtool", "check", "config", os.path.join(obs, "prometheus.yml")],
                ["promtool", "check", "rules", rules_path],
                ["promtool", "test", "rules", os.path.join(obs, "rules", "lorad.rules.test.yml")]):
        r = run(cmd)
        print(" ".join(cmd[:3]), "->", r.returncode)
        check(r.returncode == 0, f"{' '.join(cmd)}:\n{r.stdout}{r.stderr}")
    rules = yaml.safe_load(open(rules_path))
    tests = yaml.safe_load(open(os.path.join(obs, "rules", "lorad.rules.test.yml")))
    firing = set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            if a.get("exp_alerts"):
                firing.add(a["alertname"])
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    check(len(alerts) >= 9, f"only {len(alerts)} alerts")
    for a in alerts:
        name = a["alert"]
        check(a.get("labels", {}).get("severity") in ("critical", "warning", "info"), f"{name}: severity")
        for key in ("summary", "runbook"):
            check(a.get("annotations", {}).get(key), f"{name}: no {key} annotation")
        check(name in firing, f"{name}: no firing case in lorad.rules.test.yml")
        check(alert_lhs(a["expr"]) is not None, f"{name}: expr is not '<expression> <op> <number>'")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["systemd", "k8s", "container", "rules"])
    parser.add_argument("--lorad")
    parser.add_argument("--source", required=True)
    parser.add_argument("--venv", required=True)
    args = parser.parse_args()
    if os.environ.get("LORAD_DEPLOY_TEST_IN_VENV") != "1":
        python = venv_python(args.venv, PACKAGES, ["yaml", "kubernetes_validate"])
        os.environ["LORAD_DEPLOY_TEST_IN_VENV"] = "1"
        os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])
    {"systemd": test_systemd, "k8s": test_k8s, "container": test_container,
     "rules": test_rules}[args.check](args)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
