"""Is a clip one voice? Calibration of :func:`wavesmith.analysis.polyphony` and its warning threshold.

    python benchmarks/polyphony.py --json [--per-group 100] [--tracker harvest]

``wavesmith pitch`` and ``wavesmith transfer`` follow one f0 and warn when a clip scores
above :data:`wavesmith.analysis.POLYPHONY_WARN`. For each group: how many clips, the share
warned, and the median / 90th percentile / max score.

- one voice: synthetic harmonic tones with vibrato (MIDI 36..84, clean and at 10 dB SNR),
  single soundfont notes (/work/data/gm-notes), speech (/work/speech);
- several: synthetic chords (dyads, triads, sevenths on three roots), dyads of two
  soundfont notes of one instrument and velocity (random pairs), and speech over a
  soundfont note (a voice over music);
- ``samples``: Sonic Pi's loops, ambiences and guitar clips (/work/real-audio/samples),
  unlabelled: mixes, drums and pads, reported per file prefix.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from wavesmith import analysis as AN
from wavesmith import audio as A

GM = Path(os.environ.get("WAVESMITH_GM_NOTES", "/work/data/gm-notes"))
SPEECH = Path(os.environ.get("WAVESMITH_SPEECH", "/work/speech"))
SAMPLES = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio")) / "samples"
SR = 16000
CHORDS = {"minor third": (0, 3), "major third": (0, 4), "fourth": (0, 5), "fifth": (0, 7), "tritone": (0, 6),
          "major": (0, 4, 7), "minor": (0, 3, 7), "major seventh": (0, 4, 7, 11), "spread seventh": (0, 7, 16, 22)}


def tones(midis: list[float], seconds: float = 2.0, snr_db: float | None = None, seed: int = 0) -> np.ndarray:
    """Harmonic tones (partials 1/k) with 5 Hz vibrato of +-20 cents, summed, at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for i, m in enumerate(midis):
        f0 = 440.0 * 2 ** ((m - 69) / 12)
        phase = 2 * np.pi * np.cumsum(f0 * 2 ** (20 / 1200 * np.sin(2 * np.pi * 5 * t + i))) / SR
        for k in range(1, int((SR / 2 - 500) / f0) + 1):
            y += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    y *= 0.3 / np.sqrt(np.mean(y**2))
    if snr_db is not None:
        y += rng.standard_normal(len(y)) * 0.3 * 10 ** (-snr_db / 20)
    return y


def mono(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    x, sr = A.read(path, max_seconds=seconds)
    return x.mean(0).astype(np.float64), sr


def score(x: np.ndarray, sr: int, tracker: str) -> float:
    return AN.polyphony(x, sr, AN.track_f0(x, sr, tracker))


def summary(scores: list[float]) -> dict:
    s = np.asarray(scores)
    return {"clips": len(s), "warned": round(float(np.mean(s > AN.POLYPHONY_WARN)), 3),
            "median": round(float(np.median(s)), 3), "p90": round(float(np.percentile(s, 90)), 3),
            "max": round(float(s.max()), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-group", type=int, default=100, help="real clips per group")
    ap.add_argument("--tracker", default="harvest")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(0)
    t0 = time.time()
    groups: dict[str, list[float]] = defaultdict(list)
    for m in range(36, 85, 4):
        groups["one: synthetic tone"].append(score(tones([m]), SR, args.tracker))
        groups["one: synthetic tone, 10 dB SNR"].append(score(tones([m], snr_db=10), SR, args.tracker))
    for intervals in CHORDS.values():
        for root in (48, 60, 67):
            groups["several: synthetic chord"].append(score(tones([root + i for i in intervals]), SR, args.tracker))
    rows = list(csv.DictReader(open(GM / "metadata.csv")))
    for r in rng.sample(rows, min(args.per_group, len(rows))):
        groups["one: soundfont note"].append(score(*mono(GM / r["path"]), args.tracker))
    by_patch: dict[tuple, dict[int, str]] = defaultdict(dict)
    for r in rows:
        program, note, velocity = Path(r["path"]).stem.split("-")
        by_patch[(r["label"], program, velocity)][int(note)] = r["path"]
    patches = [k for k in sorted(by_patch) if len(by_patch[k]) >= 2]
    speech = sorted(SPEECH.glob("*/*.wav"))
    for _ in range(args.per_group):
        notes = by_patch[rng.choice(patches)]
        a, b = rng.sample(sorted(notes), 2)
        (xa, sr), (xb, _) = mono(GM / notes[a]), mono(GM / notes[b])
        n = min(len(xa), len(xb))
        groups["several: soundfont dyad"].append(score(xa[:n] + xb[:n], sr, args.tracker))
    for p in rng.sample(speech, min(args.per_group, len(speech))):
        groups["one: speech"].append(score(*mono(p), args.tracker))
    for p in rng.sample(speech, min(args.per_group // 2, len(speech))):
        x, sr = mono(p)
        note, _ = mono(GM / rng.choice(rows)["path"])
        note = A.resample(note[None], _, sr)[0] if _ != sr else note
        note = np.resize(note, len(x)) * np.sqrt(np.mean(x**2) / max(np.mean(note**2), 1e-12)) * 0.5
        groups["several: speech over a note (-6 dB)"].append(score(x + note, sr, args.tracker))
    samples: dict[str, list[float]] = defaultdict(list)
    for p in sorted(SAMPLES.glob("*.flac")):
        prefix = p.stem.split("_")[0]
        if prefix in ("loop", "ambi", "guit"):
            samples[prefix].append(score(*mono(p, 8.0), args.tracker))
    result = {"threshold": AN.POLYPHONY_WARN, "tracker": args.tracker,
              "groups": {g: summary(s) for g, s in groups.items()},
              "samples": {f"{g} (unlabelled)": summary(s) for g, s in samples.items()},
              "seconds": round(time.time() - t0, 1)}
    print(json.dumps(result, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
