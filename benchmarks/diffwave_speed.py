"""DiffWave's denoiser: one pass over one second of 16 kHz audio, at the paper's size and at ours.

    taskset -c 1 python benchmarks/diffwave_speed.py --json

One pass is one sampling step, so a sample costs ``steps`` passes (the paper's SC09 model:
200; our default: 12 DPM-Solver++ steps; the 6-step fast schedule: 6). Each size is timed
under ``torch.inference_mode`` at batch 1, best of ``--repeats``, next to a plain float32
matrix product on the same thread (the reference): ``gflops`` is the denoiser's arithmetic
per second, from the layer shapes, and ``share_of_matmul`` how much of the reference's rate
the convolutions reach.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from wavesmith.models.base import DataInfo
from wavesmith.models.diffwave import SC09, Config, DiffWave

SIZES = {
    "sc09_paper": {k: SC09[k] for k in ("residual_channels", "layers", "dilation_cycle")},
    "c64_l30_default": {"residual_channels": 64, "layers": 30, "dilation_cycle": 10},
    "c32_l20": {"residual_channels": 32, "layers": 20, "dilation_cycle": 10},
}


def flops_per_sample(c: int, layers: int) -> int:
    """Multiply-adds x 2 per output sample: input 1x1, per layer the k=3 dilated conv (C -> 2C) and
    the 1x1 output conv (C -> 2C), then the skip 1x1 (C -> C) and output 1x1 (C -> 1)."""
    return 2 * (c + layers * (3 * c * 2 * c + c * 2 * c) + c * c + c)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a_mat, b_mat = torch.randn(1024, 1024), torch.randn(1024, 1024)
    with torch.inference_mode():
        matmul = best_of(lambda: a_mat @ b_mat, 5)
    reference = 2 * 1024**3 / matmul / 1e9
    result = {"rate": a.rate, "threads": a.threads, "cpu_affinity": sorted(os.sched_getaffinity(0)),
              "load_average": [round(x, 2) for x in os.getloadavg()], "matmul_gflops": round(reference, 1)}
    for name, size in SIZES.items():
        model = DiffWave(Config(**size), DataInfo(a.rate)).eval()  # unconditional: label layers absent
        params = sum(p.numel() for p in model.parameters())
        x, t = torch.randn(1, 1, a.rate), torch.full((1,), 0.5)
        with torch.inference_mode():
            model.denoise(x[..., :1000], t)  # warm-up
            seconds = best_of(lambda m=model, x=x, t=t: m.denoise(x, t), a.repeats)
        gflops = flops_per_sample(size["residual_channels"], size["layers"]) * a.rate / seconds / 1e9
        result[name] = {**size, "params_M": round(params / 1e6, 2), "seconds_per_pass": round(seconds, 3),
                        "gflops": round(gflops, 1), "share_of_matmul": round(gflops / reference, 3)}
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
