"""Ingest throughput of ``db add``: generated one-second clips of mixed formats and rates.

    python benchmarks/ingest_speed.py --json [--n 2000] [--workers 2]

Prints clips per second and hours of audio per minute (median of ``--repeats`` fresh
databases); the corpus is generated once in a temporary folder (its generation is not timed).

Each repeat also times a plain reference for the same files, right after the ingest: a
single-process loop that decodes each file (soundfile), mixes it to mono and resamples it
(soxr) to the database's rate, and writes nothing. ``ingest_vs_reference`` is the ratio of
the two speeds (above 1: the worker pool gains more than the catalog, hashing and store
cost); on a busy machine it holds where the absolute figures do not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

# format, subtype, rates: every libsndfile format a user is likely to have
MIX = [
    ("wav", "WAV", "PCM_16", (16000, 44100, 48000, 8000)),
    ("flac", "FLAC", "PCM_16", (44100, 22050, 96000)),
    ("ogg", "OGG", "VORBIS", (44100, 32000)),
    ("mp3", "MP3", "MPEG_LAYER_III", (44100, 22050)),
    ("aiff", "AIFF", "PCM_16", (48000, 11025)),
]


def make_corpus(root: Path, n: int, seconds: float = 1.0) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        ext, major, subtype, rates = MIX[i % len(MIX)]
        rate = rates[(i // len(MIX)) % len(rates)]
        channels = 1 + i % 2
        t = np.arange(int(rate * seconds)) / rate
        x = 0.3 * np.sin(2 * np.pi * (100 + 7 * i) * t)[:, None] + 0.05 * rng.standard_normal((t.size, channels))
        sf.write(str(root / f"c{i:05d}.{ext}"), x.astype(np.float32), rate, format=major, subtype=subtype)


def reference_decode(files: list[Path], sample_rate: int) -> int:
    """The plain loop: decode, mix to mono, resample, int16; returns the samples made."""
    import soxr

    total = 0
    for f in files:
        x, rate = sf.read(str(f), dtype="float32", always_2d=True)
        y = soxr.resample(x.mean(axis=1), rate, sample_rate, quality="HQ")
        total += (np.clip(y, -1, 1) * 32767).astype(np.int16).size
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="clips (default 2000)")
    ap.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    from wavesmith.db import Database
    from wavesmith.db.add import default_workers

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        t0 = time.perf_counter()
        make_corpus(src, args.n)
        generate_s = time.perf_counter() - t0
        files = sorted(src.iterdir())
        times, ref_times, hours = [], [], 0.0
        for r in range(args.repeats):
            db = Database.create(Path(tmp) / f"db{r}")
            t0 = time.perf_counter()
            s = db.add([src], workers=args.workers, progress=False)
            times.append(time.perf_counter() - t0)
            assert s["added"] == args.n and s["errors"] == 0, s
            hours = db.info()["hours"]
            rate = db.sample_rate
            db.close()
            t0 = time.perf_counter()
            reference_decode(files, rate)
            ref_times.append(time.perf_counter() - t0)
    secs, ref_secs = statistics.median(times), statistics.median(ref_times)
    out = {
        "benchmark": "ingest_speed",
        "clips": args.n,
        "workers": args.workers or default_workers(),
        "seconds": round(secs, 2),
        "clips_per_second": round(args.n / secs, 1),
        "audio_hours_per_minute": round(hours / secs * 60, 3),
        "reference_clips_per_second": round(args.n / ref_secs, 1),
        "ingest_vs_reference": round(ref_secs / secs, 3),
        "repeats": args.repeats,
        "corpus_generation_seconds": round(generate_s, 1),
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
