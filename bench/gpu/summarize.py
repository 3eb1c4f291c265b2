#!/usr/bin/env python3
"""Joins the kernel benchmark (RESULT lines) and the PyTorch baseline (TORCH lines) into the
short table that bench/gpu/run.sh prints last, with the issue-7 targets checked."""
import re
import sys


def parse(path, tag):
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(tag + " "):
                    kv = {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)}
                    rows[kv.get("name", tag) if tag in ("RESULT", "TORCH") else tag] = kv
    except FileNotFoundError:
        pass
    return rows


def main(bench_path, torch_path):
    bench = parse(bench_path, "RESULT")
    torch = parse(torch_path, "TORCH")
    device = parse(bench_path, "DEVICE").get("DEVICE", {}).get("name", "?")
    copy = parse(bench_path, "COPY").get("COPY", {}).get("gbps", "?")
    print(f"\nGPU {device}; device-to-device copy {copy} GB/s (read+write); fp16 activations")
    print(f"{'kernel':34} {'us':>9} {'GB/s':>8} {'%copy':>6} {'torch us':>9} {'speedup':>8}  target")
    for name, r in bench.items():
        us, pct = float(r["us"]), float(r["pct_copy"])
        t = torch.get(name)
        tus = float(t["us"]) if t else None
        speed = tus / us if tus else None
        target = ""
        if name in ("sgmv", "bgmv"):
            ok = pct >= 60 and (speed is None or speed >= 3)
            target = ("PASS" if ok else "MISS") + " (>=60% copy, >=3x torch)"
        elif name.startswith("matvec_") and name.endswith("x4096_m1"):  # hidden (cols) 4096
            target = ("PASS" if pct >= 70 else "MISS") + " (>=70% copy)"
        elif "tflops" in r and not name.startswith("matvec"):
            target = f"{float(r['tflops']):.1f} TFLOP/s"
        print(f"{name:34} {us:9.2f} {float(r['gbps']):8.0f} {pct:6.1f} "
              f"{(f'{tus:9.2f}' if tus else '        -')} "
              f"{(f'{speed:7.1f}x' if speed else '       -')}  {target}")
    for name, t in torch.items():
        if name not in bench:
            print(f"{'torch ' + name:34} {'':9} {'':8} {'':6} {float(t['us']):9.2f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
