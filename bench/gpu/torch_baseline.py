#!/usr/bin/env python3
"""Plain PyTorch baselines for bench/gpu/cuda_kernels_bench, same shapes and L2-cold layout.

SGMV: a loop of per-adapter matmuls (what a server without a segmented kernel does).
BGMV: the same loop over adapters with index_select / index_add_ on unsorted tokens.
4-bit matvec: dequantize (NF4 / Q4_0) with tensor ops, then x @ W^T; and dense fp16 x @ W^T.
Prints one "TORCH name=... us=..." line per measurement (microseconds per layer, median).
"""
import statistics

import torch

WARMUP, RUNS = 3, 21


def median_us_per_op(fn, ops):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(RUNS):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1000.0 / ops)
    return statistics.median(times)


def report(name, us):
    print(f"TORCH name={name} us={us:.3f}", flush=True)


def lora(dev):
    tokens, adapters, rank, hidden, layers = 64, 16, 16, 4096, 40
    per = tokens // adapters
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.rand(layers, tokens, hidden, device=dev, generator=g).half() - 0.5
    y = torch.rand(layers, tokens, hidden, device=dev, generator=g).half() - 0.5
    a = torch.rand(layers, adapters, rank, hidden, device=dev, generator=g).half() - 0.5
    b = torch.rand(layers, adapters, hidden, rank, device=dev, generator=g).half() - 0.5
    scale = 2.0

    def sgmv_loop():
        for l in range(layers):
            for i in range(adapters):
                s = slice(i * per, (i + 1) * per)
                y[l, s] += scale * ((x[l, s] @ a[l, i].T) @ b[l, i].T)

    report("sgmv", median_us_per_op(sgmv_loop, layers))

    token_entry = torch.tensor([(t * 5) % adapters for t in range(tokens)], device=dev)
    ids = [torch.nonzero(token_entry == i).flatten() for i in range(adapters)]

    def bgmv_loop():
        for l in range(layers):
            for i in range(adapters):
                v = x[l].index_select(0, ids[i]) @ a[l, i].T
                y[l].index_add_(0, ids[i], (v @ b[l, i].T) * scale)

    report("bgmv", median_us_per_op(bgmv_loop, layers))


NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def quant(dev):
    lut = torch.tensor(NF4, device=dev)
    for rows, cols in ((4096, 4096), (14336, 4096)):
        x = torch.rand(1, cols, device=dev).half() - 0.5
        layers = max(4, min(64, -(-(256 << 20) // (rows * cols // 2))))
        packed = torch.randint(0, 256, (layers, rows, cols // 2), device=dev, dtype=torch.uint8)
        absmax = torch.rand(layers, rows, cols // 64, device=dev) + 0.5
        d = (torch.rand(layers, rows, cols // 32, device=dev) * 0.1).half()

        def nf4():
            for l in range(layers):
                p = packed[l]
                codes = torch.stack(((p >> 4).long(), (p & 15).long()), dim=-1).view(rows, cols)
                w = (lut[codes].view(rows, cols // 64, 64) * absmax[l, :, :, None]).view(rows, cols)
                _ = x @ w.half().T

        def q4_0():
            for l in range(layers):
                p = packed[l].view(rows, cols // 32, 16)
                q = torch.cat(((p & 15), (p >> 4)), dim=-1).half() - 8.0  # low nibbles first
                _ = x @ (q * d[l, :, :, None]).view(rows, cols).T

        report(f"matvec_NF4_{rows}x{cols}_m1", median_us_per_op(nf4, layers))
        report(f"matvec_Q4_0_{rows}x{cols}_m1", median_us_per_op(q4_0, layers))
        dense_layers = max(2, -(-(256 << 20) // (rows * cols * 2)))
        w16 = torch.rand(dense_layers, rows, cols, device=dev).half() - 0.5

        def dense():
            for l in range(dense_layers):
                _ = x @ w16[l].T

        report(f"dense_F16_{rows}x{cols}_m1", median_us_per_op(dense, dense_layers))
        del packed, absmax, d, w16
        torch.cuda.empty_cache()


def main():
    dev = torch.device("cuda")
    print(f"TORCH_DEVICE name=\"{torch.cuda.get_device_name(dev)}\" torch={torch.__version__}")
    with torch.inference_mode():
        lora(dev)
        quant(dev)


if __name__ == "__main__":
    main()
