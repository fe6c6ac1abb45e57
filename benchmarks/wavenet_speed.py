"""WaveNet speed on the reference configuration (r9y9/wavenet_vocoder's default size).

30 layers in 3 stacks, kernel 3, 128 residual, 256 gate, 128 skip channels, 256-way mu-law
(~4.0 M parameters), random weights. Prints generation speed (cached queue algorithm) for
1, 32 and (GPU only) 256 streams, and training speed (forward + backward + Adam step on
8000-sample crops), as medians over a few repeats.

On a machine shared with other work an absolute figure says little, so one stream is also
timed against a plain reference for the same work, interleaved in the same run (each
repeat times both): the naive generation loop of the classic implementations, which runs
the full network over the last receptive field (6,140 samples) for every new sample,
recomputing every layer. ``generate_1_stream_vs_reference`` is the ratio of the two
speeds; load from other processes slows both alike, so the ratio holds where the absolute
figures do not.

    python benchmarks/wavenet_speed.py --json [--device cuda] [--seconds 0.5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from wavesmith.models.base import DataInfo
from wavesmith.models.wavenet import Config, WaveNet

REFERENCE = dict(layers=30, stacks=3, kernel_size=3, residual_channels=128, gate_channels=256, skip_channels=128)
# --tiny: a model small enough to check the script itself on a CPU in seconds (figures mean nothing)
TINY = dict(layers=4, stacks=2, kernel_size=3, residual_channels=8, gate_channels=16, skip_channels=8, crop=1000)


CPU_RATES: dict[str, float] = {}


def median_rate(fn, work: float, repeats: int, name: str = "") -> float:
    """Median of ``work`` per wall-clock second; also records work per CPU second of this process.

    On a machine shared with other jobs the wall-clock figure depends on their load; the
    CPU-time figure (``*_per_cpu_s``) estimates what an idle machine gives for single-threaded
    work (for multi-threaded work it also counts threads waiting for each other).
    """
    rates, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        rates.append(work / (time.perf_counter() - t0))
        cpu.append(work / max(time.process_time() - c0, 1e-9))
    if name:
        CPU_RATES[name.replace("_per_s", "_per_cpu_s")] = statistics.median(cpu)
    return statistics.median(rates)


def naive_generate(model: WaveNet, samples: int, seed: int) -> torch.Tensor:
    """The reference: one stream, each sample from a full forward pass over the last receptive field.

    The history starts as a receptive field of silence, so every step costs a whole window,
    as it does after the first second of audio. Mu-law classes ``(samples,)``.
    """
    c, rf = model.config, model.receptive_field
    g = torch.Generator(device=model.device).manual_seed(seed)
    seq = torch.full((1, rf), c.quantization_channels // 2, dtype=torch.long, device=model.device)
    out = []
    with torch.no_grad():
        for _ in range(samples):
            logits = model(seq[:, -rf:])[:, :, -1]
            v = torch.multinomial(torch.softmax(logits.float(), dim=1), 1, generator=g)
            seq = torch.cat([seq[:, 1:], v], dim=1)
            out.append(v)
    return torch.cat(out, dim=1)[0]


def interleaved_rates(ways: dict, repeats: int) -> dict[str, float]:
    """Median work per second of each ``name: (fn, work)``, timed in turn within each repeat."""
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(repeats):
        for name, (fn, work) in ways.items():
            t0 = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(work / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


def cpu_limits(model: WaveNet, repeats: int) -> dict:
    """What bounds one stream on a CPU: the BLAS products alone, and the numpy calls per sample.

    ``blas_only_samples_per_s`` runs just the matrix products of one step (all layers' tap
    and residual products, the stacked skip product, the head) on the same folded weights:
    the speed with zero elementwise and Python overhead. ``weight_bytes_per_sample`` is
    what each step streams from cache (the weights do not fit in L2, so from L3).
    """
    from wavesmith.models.blas import set_blas_threads
    from wavesmith.models.wavenet_fast import Generator

    g = Generator(model, 1, None)
    products = [(np.zeros((1, q.w_taps.shape[0]), np.float32), q.w_taps) for q in g.layers]
    products += [(q.z, q.w_res) for q in g.layers] + [(g.z, g.w_skip), (g.skip, g.w1), (g.hidden, g.w2)]
    outs = [np.empty((1, w.shape[1]), np.float32) for _, w in products]
    weights = sum(w.size for _, w in products)

    def blas_only(steps: int = 500):
        for _ in range(steps):
            for (x, w), o in zip(products, outs, strict=True):
                np.matmul(x, w, out=o)

    old = set_blas_threads(1)
    rate = median_rate(blas_only, 500, repeats, "blas_only_samples_per_s")
    if old is not None:
        set_blas_threads(old)
    layer_calls = 6 + g.layers[0].k  # see QueuedLayer.step
    return {"macs_per_sample": weights, "weight_bytes_per_sample": 4 * weights,
            "blas_only_samples_per_s": rate, "blas_only_gb_per_s": 4 * weights * rate / 1e9,
            "numpy_calls_per_sample": layer_calls * len(g.layers) + 10}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seconds", type=float, default=0.25, help="audio generated per stream and repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch threads for training (0: torch's default)")
    p.add_argument("--tiny", action="store_true", help="a tiny model: checks the script, not the speed")
    p.add_argument("--reference-samples", type=int, default=4,
                   help="samples the naive reference generates per repeat (each costs a full forward pass)")
    a = p.parse_args()
    dev = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = WaveNet(Config(**(TINY if a.tiny else REFERENCE)), DataInfo()).to(dev).eval()
    rate = model.info.sample_rate
    res: dict = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "tiny": a.tiny,
                 "params": sum(p.numel() for p in model.parameters()),
                 "torch_threads": torch.get_num_threads(), "seconds_per_stream": a.seconds, "repeats": a.repeats}
    for n in (1, 32, 256):
        if n == 256 and dev.type != "cuda":
            res["generate_256_streams_samples_per_s"] = None
            continue
        samples = int(a.seconds * rate)
        key = f"generate_{n}_stream{'s' if n > 1 else ''}_samples_per_s"
        res[key] = median_rate(lambda n=n: model.sample(n, a.seconds, seed=0), n * samples, a.repeats, key)
    samples = int(a.seconds * rate)
    both = interleaved_rates({
        "fast": (lambda: model.sample(1, a.seconds, seed=1), samples),
        "reference": (lambda: naive_generate(model, a.reference_samples, seed=1), a.reference_samples),
    }, a.repeats)
    res["generate_1_stream_interleaved_samples_per_s"] = both["fast"]
    res["reference_1_stream_samples_per_s"] = both["reference"]
    res["generate_1_stream_vs_reference"] = both["fast"] / both["reference"]
    if dev.type == "cpu":
        res.update(cpu_limits(model, a.repeats))
    model.train()
    opt = model.configure_optimizers()["model"]
    x = (torch.rand(a.train_batch, 1, model.crop_samples, device=dev) * 2 - 1) * 0.3
    batch = {"audio": x, "mask": torch.ones(a.train_batch, model.crop_samples, device=dev),
             "label": torch.full((a.train_batch,), -1), "speaker": torch.full((a.train_batch,), -1)}

    def update(name, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train_step(lambda: batch, update, 0)  # warm-up
    res["train_samples_per_s"] = median_rate(lambda: model.train_step(lambda: batch, update, 1),
                                             a.train_batch * model.crop_samples, a.repeats, "train_samples_per_s")
    res.update(CPU_RATES)
    res["load_average_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps(res) if a.json else json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
