"""How well and how fast a vocoder resynthesizes real audio it never saw.

    taskset -c 1 python benchmarks/vocoder_quality.py --json [--vocoder NAME|RUN] [--db DB --split test]

Each clip (at most ``--seconds``) is resampled to 22.05 kHz, analysed into log-mel frames
(the :mod:`wavesmith.melspec` convention) and vocoded back; the output is compared with the
input by

- ``mel_l1``: mean absolute difference of the log-mel frames (natural log; 0 to 8 kHz);
- ``mel_l1_in_band``: the same over the bands below the clip's original Nyquist frequency
  only (8 kHz speech has nothing above 4 kHz, where any vocoder output counts as error);
- ``mr_stft``: multi-resolution STFT distance (Yamamoto et al., 2020: spectral convergence
  plus log-magnitude L1, averaged over FFT sizes 512, 1024, 2048), and ``mr_stft_in_band``
  over the bins below the clip's original Nyquist frequency.

Mel L1 favours Griffin-Lim, which fits the magnitudes it was given directly; its phase
errors show in the STFT distance at other resolutions and in listening.

A plain reference runs on the same clips: Griffin-Lim (32 iterations) from the same frames
through the filterbank's pseudo-inverse. Speed (``--speed``) times generators on a batch
of 16 one-second clips and reports multiples of real time (V1 with the universal weights;
V2 and V3 with random weights, since only their shape matters for speed), with
``torch.no_grad`` against ``torch.inference_mode`` and 1 against 2 threads.

Sets: ``--speech`` (default $WAVESMITH_REAL_AUDIO/speech-en, 8 kHz; WAVESMITH_REAL_AUDIO
defaults to /work/real-audio), ``--drums`` (default $WAVESMITH_REAL_AUDIO/drums), or
``--db DB --split SPLIT`` (a clip database's split, e.g. the held-out test split of the
database a vocoder was fine-tuned on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wavesmith import audio as A
from wavesmith import melspec as M
from wavesmith import vocoder as V
from wavesmith.models.hifigan_nets import VARIANTS, Generator

SR, HOP = M.HIFIGAN.sample_rate, M.HIFIGAN.hop
AUDIO_EXT = {".wav", ".flac", ".aiff", ".aif"}


def clips_from_dir(folder: Path, n: int, seconds: float, seed: int) -> list[tuple[str, torch.Tensor, int]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXT)
    random.Random(seed).shuffle(files)
    out = []
    for p in files:
        rate = A.info(p).sample_rate
        x = A.load(p, SR, 1)[0, : int(seconds * SR)]
        if len(x) >= SR // 20 and np.abs(x).max() > 1e-3:
            out.append((str(p.relative_to(folder)), torch.from_numpy(np.ascontiguousarray(x)), rate))
        if len(out) == n:
            break
    return out


def clips_from_db(path: str, split: str, n: int, seconds: float, seed: int) -> list[tuple[str, torch.Tensor, int]]:
    from wavesmith.db import Database

    db = Database.open(path)
    chosen = list(db.clips(split))
    random.Random(seed).shuffle(chosen)
    out = []
    for clip in chosen[:n]:
        x = torch.from_numpy(np.ascontiguousarray(db.audio(clip.id)[0]))
        x = M.to_rate(x, clip.sample_rate, SR)
        out.append((f"{clip.label or ''}/{clip.id}", x[: int(seconds * SR)], int(clip.orig_rate or clip.sample_rate)))
    return out


def band_tops() -> torch.Tensor:
    """Highest frequency (Hz) each mel band of the convention weighs."""
    bank = M.filters(M.HIFIGAN)
    bins = torch.arange(bank.shape[1]) * SR / M.HIFIGAN.n_fft
    return torch.stack([bins[row > 0].max() for row in bank])


def _magnitude(s: torch.Tensor, n_fft: int, hop: int, win: int, keep: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(s, n_fft, hop, win, window=torch.hann_window(win), return_complex=True)
    return spec.abs().clamp_min(1e-7)[keep]


def mr_stft(y: torch.Tensor, x: torch.Tensor, max_hz: float = SR / 2) -> float:
    short = max(0, 2049 - len(x))  # the largest FFT's reflect padding needs more samples (silence added)
    y, x = F.pad(y, (0, short)), F.pad(x, (0, short))
    total = 0.0
    for n_fft, hop, win in ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200)):
        keep = torch.arange(n_fft // 2 + 1) * SR / n_fft <= max_hz
        my, mx = _magnitude(y, n_fft, hop, win, keep), _magnitude(x, n_fft, hop, win, keep)
        total += float(torch.linalg.norm(mx - my) / torch.linalg.norm(mx)) + float((mx.log() - my.log()).abs().mean())
    return total / 3


def griffin_lim(mel: torch.Tensor, iters: int = 32) -> torch.Tensor:
    """A waveform from log-mel frames by the filterbank's pseudo-inverse and Griffin-Lim."""
    spec = M.HIFIGAN
    magnitude = (torch.linalg.pinv(M.filters(spec)) @ mel.exp()).clamp_min(0)
    magnitude = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)  # centred frames: one more per clip
    window = torch.hann_window(spec.win)
    g = torch.Generator().manual_seed(0)
    angles = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=g))
    length = mel.shape[-1] * spec.hop
    for _ in range(iters):
        y = torch.istft(magnitude * angles, spec.n_fft, spec.hop, spec.win, window=window, length=length)
        angles = torch.exp(1j * torch.angle(torch.stft(y, spec.n_fft, spec.hop, spec.win, window=window,
                                                       return_complex=True)))
    y = torch.istft(magnitude * angles, spec.n_fft, spec.hop, spec.win, window=window, length=length)
    # stft(center=True) frames sit at i * hop; the convention's at i * hop + hop / 2.
    return F.pad(y, (spec.hop // 2, 0))[:length]


def score(clips, decode) -> dict:
    tops = band_tops()
    rows = []
    t0 = time.perf_counter()
    for _, x, rate in clips:
        x = F.pad(x, (0, -len(x) % HOP))
        mel = M.log_mel(x)
        y = decode(mel).reshape(-1)[: len(x)]
        err = (M.log_mel(y) - mel).abs()
        in_band = tops <= rate / 2
        rows.append((float(err.mean()), float(err[in_band].mean()), mr_stft(y, x), mr_stft(y, x, rate / 2),
                     len(x) / SR))
    seconds = time.perf_counter() - t0
    a = np.array(rows)
    return {"mel_l1": round(float(a[:, 0].mean()), 4), "mel_l1_in_band": round(float(a[:, 1].mean()), 4),
            "mr_stft": round(float(a[:, 2].mean()), 4), "mr_stft_in_band": round(float(a[:, 3].mean()), 4),
            "audio_seconds": round(float(a[:, 4].sum()), 2), "x_realtime": round(float(a[:, 4].sum()) / seconds, 3)}


def quality(vocoder, sets: dict) -> dict:
    out = {}
    for name, clips in sets.items():
        with torch.inference_mode():
            out[name] = {"clips": len(clips), "vocoder": score(clips, lambda m: vocoder(m[None])),
                         "griffin_lim_32": score(clips, griffin_lim)}
    return out


def speed(clips: int = 16, seconds: float = 1.0) -> dict:
    frames = M.HIFIGAN.frames(seconds)
    mel = M.log_mel(torch.randn(clips, frames * HOP) * 0.1)
    audio = clips * frames * HOP / SR
    out = {}
    tries = [("v1", "inference_mode", 1), ("v1", "no_grad", 1), ("v1", "inference_mode", 2),
             ("v2", "inference_mode", 1), ("v3", "inference_mode", 1)]
    for variant, mode, threads in tries:
        torch.set_num_threads(threads)
        gen = V.load("universal").generator if variant == "v1" else Generator(VARIANTS[variant]).eval()
        context = torch.inference_mode if mode == "inference_mode" else torch.no_grad
        with context():
            gen(mel[:1, :, :8])  # warm-up
            t0 = time.perf_counter()
            gen(mel)
            took = time.perf_counter() - t0
        out[f"{variant}_{mode}_{threads}threads"] = {"seconds": round(took, 3), "x_realtime": round(audio / took, 3)}
    torch.set_num_threads(1)
    return {"batch": clips, "clip_seconds": seconds, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocoder", default="universal", help="shipped vocoder name or hifigan run folder")
    real = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio"))
    ap.add_argument("--speech", default=str(real / "speech-en"))
    ap.add_argument("--drums", default=str(real / "drums"))
    ap.add_argument("--db", help="score a clip database's split instead of the speech and drums folders")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clips", type=int, default=16, help="clips per set")
    ap.add_argument("--seconds", type=float, default=1.5, help="longest clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="also time generators on 16 one-second clips")
    ap.add_argument("--speed-only", action="store_true", help="time generators only (no quality sets)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    result = {"vocoder": a.vocoder, "cpu_affinity": sorted(os.sched_getaffinity(0)),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    if not a.speed_only:
        if a.db:
            sets = {f"db_{a.split}": clips_from_db(a.db, a.split, a.clips, a.seconds, a.seed)}
        else:
            sets = {"speech": clips_from_dir(Path(a.speech), a.clips, a.seconds, a.seed),
                    "drums": clips_from_dir(Path(a.drums), a.clips, a.seconds, a.seed)}
        result["quality"] = quality(V.load(a.vocoder), sets)
    if a.speed or a.speed_only:
        result["speed"] = speed()
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    sys.exit(main())
