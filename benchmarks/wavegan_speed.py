"""WaveGAN speed: generation (clips/s, real-time factor) and training (generator steps/s).

Paper settings: d=64, 16384-sample window (1.024 s at 16 kHz), batch 16 for generation.
Generation is timed three ways in the same run, interleaved so that load from other
processes hits all alike: ``naive``, the plain reference (the layers' ``nn.ConvTranspose1d``
stack at float32, as ports of the paper do), ``fast`` (what ``sample`` runs: polyphase
channels-last convolutions, float32) and ``fast_bf16`` (bf16 hidden layers, opt-in).
Medians over ``--repeats``. ``generate_vs_reference`` and ``generate_bf16_vs_reference``
are the speed ratios to the reference: on a busy machine they hold where the absolute
figures do not.

One training step is what the engine runs: 5 critic updates (WGAN-GP, double
back-propagation) and 1 generator update; ``train_generator_steps_per_s`` counts those
steps. On CUDA it runs under bf16 autocast, as the engine's mixed precision would.

    python benchmarks/wavegan_speed.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from wavesmith.models.base import DataInfo
from wavesmith.models.wavegan import Config, WaveGAN


def naive_generate(model: WaveGAN, z: torch.Tensor) -> torch.Tensor:
    """The reference: each layer's ``nn.ConvTranspose1d`` on (B, C, L) float32 activations."""
    g = model.generator
    x = F.relu(g.project(z)).view(len(z), -1, 16)
    for i, up in enumerate(g.ups):
        x = up(x)
        x = torch.tanh(x) if i == len(g.ups) - 1 else F.relu(x)
    return x


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_generation(model: WaveGAN, batch: int, repeats: int) -> dict:
    device = model.device
    z = model.latent(batch, seed=0)
    gen = model.generator

    def fast(dtype):
        def run():
            gen.fast_dtype = dtype
            try:
                return model.decode(z)
            finally:
                gen.fast_dtype = None

        return run

    ways = {"naive": lambda: naive_generate(model, z), "fast": fast(None), "fast_bf16": fast(torch.bfloat16)}
    times: dict[str, list[float]] = {k: [] for k in ways}
    with torch.inference_mode():
        reference = naive_generate(model, z).float()
        err = {k: float((ways[k]().float() - reference).square().mean()) for k in ("fast", "fast_bf16")}
        for _ in range(repeats):
            for name, fn in ways.items():
                times[name].append(timed(fn, device))
    seconds = model.config.window / model.info.sample_rate
    out = {}
    for name, ts in times.items():
        clips = batch / statistics.median(ts)
        suffix = "" if name == "fast" else f"_{name}"
        out[f"generate_clips_per_s{suffix}"] = round(clips, 1)
        out[f"realtime_factor{suffix}"] = round(clips * seconds, 1)
    out["generate_vs_reference"] = round(statistics.median(times["naive"]) / statistics.median(times["fast"]), 2)
    out["generate_bf16_vs_reference"] = round(statistics.median(times["naive"]) / statistics.median(times["fast_bf16"]),
                                              2)
    power = float(reference.square().mean())
    out["fast_max_rms_error"] = err["fast"] ** 0.5
    out["bf16_snr_db"] = round(10 * torch.log10(torch.tensor(power / max(err["fast_bf16"], 1e-30))).item(), 1)
    return out


def bench_training(model: WaveGAN, batch: int, steps: int) -> float:
    device = model.device
    opts = model.configure_optimizers()
    real = torch.rand(batch, model.info.channels, model.config.window, device=device) * 2 - 1

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model.train_step(lambda: {"audio": real, "label": torch.full((batch,), -1, device=device)}, update, 0)

    model.train()
    step()  # warm-up: allocator, cuDNN algorithm choice
    times = [timed(step, device) for _ in range(steps)]
    return 1.0 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16, help="generation batch (paper comparison: 16)")
    parser.add_argument("--repeats", type=int, default=7, help="timed generation batches per way (median)")
    parser.add_argument("--train-batch", type=int, default=None, help="default: 64 on CUDA, 8 on CPU")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps (median); 0 skips")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--tiny", action="store_true", help="d=4, 4096-sample window: checks the script, not the speed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = Config(model_dim=4, window=4096) if args.tiny else Config()
    model = WaveGAN(config, DataInfo(sample_rate=16000, channels=1)).to(device)
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "params": sum(p.numel() for p in model.generator.parameters()),
        "critic_params": sum(p.numel() for p in model.critic.parameters()),
        "window": model.config.window,
        "tiny": args.tiny,
        "batch": args.batch,
        "torch": torch.__version__,
    }
    result.update(bench_generation(model, args.batch, args.repeats))
    if args.train_steps:
        train_batch = args.train_batch or (64 if device.type == "cuda" else 8)
        result["train_batch"] = train_batch
        result["train_generator_steps_per_s"] = round(bench_training(model, train_batch, args.train_steps), 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
