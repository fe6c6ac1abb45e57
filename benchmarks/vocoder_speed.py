"""How fast does the universal HiFi-GAN vocode real speech, on each path, against the textbook one?

    python benchmarks/vocoder_speed.py --json [--audio DIR] [--seconds 5] [--repeats 5] [--threads 1]
                                              [--base RUN] [--fast RUN]

Vocodes the log-mel of ``--seconds`` of real speech (the ``.wav`` files under ``--audio``,
joined in path order and resampled to the vocoder's rate; any other folder of sounds, such
as drums, works too) with the same loaded vocoder on three paths (:mod:`wavesmith.vocoder`):
``reference`` (the textbook computation: the fp32 generator, 1-D convolutions, plain eager),
``fp32`` (the planar copy, channels-last 2-D convolutions, fp32) and ``mixed`` (the planar
copy with its residual blocks in bfloat16, the default on CPUs with native bfloat16). They
are timed in interleaved rounds, so load from other processes hits all alike; medians are
reported in multiples of real time, by wall clock and by the CPU time the process spent
(the fairer figure on a shared core; with several threads it sums them, so judge those by
wall clock), with each path's speed-up over ``reference``. Quality is each path's output
against the reference output: log-mel L1, log-spectral distance (dB, 1,024-point STFT) and
the SNR of the waveform difference; ``reference_mel_l1_vs_input`` puts them in scale (the
vocoder's own error on the speech it resynthesizes).

``--batch N`` cuts the frames into N clips of equal length and vocodes them as one batch,
as ``generate`` does (default 1: one long clip, as ``vocode`` does).

``compute`` counts the generator's floating-point operations per second of audio (torch's
``FlopCounterMode``, two per multiply-add, on the reference path) and divides them by each
path's CPU time: the throughput the core reached, and so the largest generator that would
run at 5x real time on it at that throughput.

``--fast`` (a ``distilled-vocoder`` run) is timed on the same frames, alternating with
V1's reference path, and reported beside it with its own log-mel L1 against the input.
With ``--base`` (a tts run folder or checkpoint) it also times speech end to end as
``wavesmith say`` does (acoustic model, then the vocoder, one sentence at a time), for
V1's three paths and the ``--fast`` vocoder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith import melspec as M
from wavesmith import vocoder as V

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Please leave your message after the tone, and we will call you back.",
             "It was a bright cold day in April, and the clocks were striking thirteen.",
             "Seven hundred and twenty people attended the meeting on Tuesday."]


def recordings(folder: Path, seconds: float, rate: int) -> torch.Tensor:
    """``seconds`` of the ``.wav`` files under ``folder`` joined in path order, mono at ``rate``."""
    parts, total = [], 0
    for path in sorted(folder.rglob("*.wav")):
        x, r = A.read(path)
        part = M.to_rate(torch.from_numpy(np.asarray(x, dtype=np.float32).mean(0))[None], r, rate)[0]
        parts.append(part)
        total += part.shape[-1]
        if total >= seconds * rate:
            break
    if not parts or total < seconds * rate:
        sys.exit(f"vocoder_speed: {folder} holds under {seconds} s of .wav audio; pass --audio DIR")
    return torch.cat(parts)[: int(seconds * rate)]


def quality(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """How far ``out`` is from ``ref`` (both ``(1, 1, T)``): log-mel L1, log-spectral distance, SNR."""
    y, r = out.reshape(-1), ref.reshape(-1)
    window = torch.hann_window(1024)

    def power(w):
        return torch.stft(w, 1024, 256, window=window, return_complex=True).abs().pow(2).clamp_min(1e-10)

    lsd = ((10 * torch.log10(power(y) / power(r))) ** 2).mean(0).sqrt().mean()
    snr = 10 * torch.log10(r.pow(2).sum() / (y - r).pow(2).sum().clamp_min(1e-20))
    return {"mel_l1": round(float((M.log_mel(y[None]) - M.log_mel(r[None])).abs().mean()), 4),
            "lsd_db": round(float(lsd), 3), "snr_db": round(float(snr), 2)}


def timed_rounds(jobs: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each job, the jobs interleaved round by round (after one warm-up each)."""
    for job in jobs.values():
        job()
    wall: dict[str, list[float]] = {k: [] for k in jobs}
    cpu: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            w, c = time.perf_counter(), time.process_time()
            job()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {k: {"wall_s": statistics.median(wall[k]), "cpu_s": statistics.median(cpu[k])} for k in jobs}


PATHS = ("reference", "fp32", "mixed")


def count_flops(fn) -> int:
    """Floating-point operations of one call of ``fn`` (two per multiply-add), by torch's counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def on_path(voc: V.Vocoder, path: str, fn):
    """``fn`` with ``voc`` set to one of :data:`PATHS`."""
    def run():
        voc.planar = path != "reference"
        voc.precision = path if path != "reference" else "fp32"
        return fn()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path, default=Path("/work/speech/asterisk-en"),
                    help="folder of .wav recordings (default: English speech)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--batch", type=int, default=1, help="vocode the frames as this many clips in one batch")
    ap.add_argument("--base", help="a tts run folder or checkpoint: also time speech end to end as `say` does")
    ap.add_argument("--fast", help="also time this vocoder (a distilled-vocoder run or checkpoint)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    voc = V.load("universal")
    mixed_default = voc.precision
    wave = recordings(args.audio, args.seconds, voc.spec.sample_rate)
    mel = M.log_mel(wave[None], voc.spec)
    if args.batch > 1:
        frames = mel.shape[-1] // args.batch
        mel = mel[..., : frames * args.batch].reshape(80, args.batch, frames).transpose(0, 1)
    seconds = mel.shape[0] * mel.shape[-1] * voc.spec.hop / voc.spec.sample_rate

    times = timed_rounds({p: on_path(voc, p, lambda: voc(mel)) for p in PATHS}, args.repeats)
    outputs = {p: on_path(voc, p, lambda: voc(mel))() for p in PATHS}
    ref = outputs["reference"]
    report = {
        "threads": args.threads, "audio_seconds": round(seconds, 2), "batch": mel.shape[0],
        "repeats": args.repeats, "default_precision": mixed_default, "native_bf16": V.native_bf16(),
        "vocoder": {p: {"x_realtime_wall": round(seconds / t["wall_s"], 2),
                        "x_realtime_cpu": round(seconds / t["cpu_s"], 2),
                        "vs_reference_wall": round(times["reference"]["wall_s"] / t["wall_s"], 2),
                        "vs_reference_cpu": round(times["reference"]["cpu_s"] / t["cpu_s"], 2)}
                    for p, t in times.items()},
        "vs_reference_quality": {p: quality(outputs[p], ref) for p in ("fp32", "mixed")},
        "reference_mel_l1_vs_input": round(float((M.log_mel(ref[:, 0], voc.spec) - mel).abs().mean()), 4),
    }
    flops = count_flops(lambda: on_path(voc, "reference", lambda: voc(mel))())
    report["compute"] = {
        "gflop_per_audio_second": round(flops / seconds / 1e9, 2),
        "gflop_per_s": {p: round(flops / t["cpu_s"] / 1e9, 1) for p, t in times.items()},
        "gflop_per_audio_second_for_5x_at_fp32_throughput": round(flops / times["fp32"]["cpu_s"] / 5 / 1e9, 2)}
    fast = V.load(args.fast) if args.fast else None
    if fast is not None:  # the same frames again, alternating with V1's fp32 path as the reference
        t = timed_rounds({"fast": lambda: fast(mel), "reference": on_path(voc, "reference", lambda: voc(mel))},
                         args.repeats)
        report["fast"] = {"name": args.fast, "x_realtime_wall": round(seconds / t["fast"]["wall_s"], 2),
                          "x_realtime_cpu": round(seconds / t["fast"]["cpu_s"], 2),
                          "vs_v1_reference_cpu": round(t["reference"]["cpu_s"] / t["fast"]["cpu_s"], 2),
                          "gflop_per_audio_second": round(count_flops(lambda: fast(mel)) / seconds / 1e9, 2),
                          "mel_l1_vs_input": round(float((M.log_mel(fast(mel)[:, 0], voc.spec) - mel).abs().mean()),
                                                   4)}
    if args.base:
        from wavesmith import voice as VO

        model, _ = VO.load_base(args.base, "cpu")
        language = "en-us" if "en-us" in model.languages else model.languages[0]
        s = model.table_vector(0)

        def say_all(vocoder=None):
            return [model.to_wave(model.synthesize([t], language, s), vocoder)[0] for t in SENTENCES]

        spoken = sum(w.shape[-1] for w in say_all()) / model.info.sample_rate
        jobs = {p: on_path(voc, p, say_all) for p in PATHS}
        if fast is not None:
            jobs["fast"] = lambda: say_all(args.fast)
        t = timed_rounds(jobs, args.repeats)
        acoustic = timed_rounds({"acoustic": lambda: [model.synthesize([x], language, s) for x in SENTENCES]},
                                args.repeats)["acoustic"]
        report["say_end_to_end"] = {
            "audio_seconds": round(spoken, 2), "sentences": len(SENTENCES), "language": language,
            "acoustic_model_s": round(acoustic["cpu_s"], 3),
            **{p: {"x_realtime_wall": round(spoken / v["wall_s"], 2), "x_realtime_cpu": round(spoken / v["cpu_s"], 2)}
               for p, v in t.items()}}
    voc.precision, voc.planar = mixed_default, True
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
