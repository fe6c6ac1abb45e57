"""How well the waveform watermark survives common processing, and how often it cries wolf.

    python benchmarks/watermark_robustness.py --json [--audio DIR] [--report DIR] [--per-category N]

Marks up to N files (>= MIN_SECONDS) of each category under DIR (default
/work/real-audio when present, else generated audio), rounds them to 16-bit PCM as
wavesmith writes them, applies each attack and detects;
then runs the detector over every unmarked file under DIR for false positives. Prints one
JSON object: per attack the detection rate, payload bit accuracy and share of files
detected with the whole payload right (with how many files each covers),
false_positives, files_checked, snr_db (per clip and per 32 ms frame), realtime_factor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wavesmith import audio as A
from wavesmith import plot
from wavesmith.errors import WavesmithError
from wavesmith.watermark import MIN_SECONDS, detect, embed
from wavesmith.watermark.spread import MIN_MARK_DBFS, TARGET_SNR_DB
from wavesmith.watermark.spread_embed import frame_snr_db

ATTACKS = ["none", "mp3_64k", "opus_32k", "resample_8k", "noise_20db", "gain_-10db", "gain_+10db",
           "lowpass_4k", "crop_1s", "shift_fraction", "mix_0db", "speed_5pct"]
CODECS = {"mp3_64k": (["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
          "opus_32k": (["-c:a", "libopus", "-b:a", "32k"], "ogg")}


def _codec(x: np.ndarray, rate: int, name: str) -> np.ndarray:
    args, ext = CODECS[name]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / f"out.{ext}"
        A.write(src, x, rate)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
        y, r = A.read(dst)
    return A.resample(y, r, rate)


def attack(name: str, y: np.ndarray, rate: int, rng: np.random.Generator, other: np.ndarray) -> np.ndarray | None:
    """``y`` after the attack ``name`` (None when the clip is too short for it)."""
    if name == "none":
        return y
    if name in CODECS:
        return _codec(y, rate, name)
    if name == "resample_8k":
        return A.resample(A.resample(y, rate, 8000), 8000, rate)
    if name == "noise_20db":
        return y + rng.standard_normal(y.shape).astype(np.float32) * np.sqrt(np.mean(y**2)) * 0.1
    if name.startswith("gain_"):
        return np.clip(y * 10 ** (float(name[5:-2]) / 20), -1, 1)
    if name == "lowpass_4k":
        spec = np.fft.rfft(y, axis=-1)
        spec[:, np.fft.rfftfreq(y.shape[-1], 1 / rate) > 4000] = 0
        return np.fft.irfft(spec, n=y.shape[-1], axis=-1).astype(np.float32)
    if name == "crop_1s":
        if y.shape[-1] < 2 * rate:
            return None
        start = int(rng.integers(0, y.shape[-1] - rate))
        return y[:, start : start + rate]
    if name == "shift_fraction":  # drop a fraction of a 16 ms frame
        return y[:, int(rng.uniform(0.1, 0.9) * 0.016 * rate) :]
    if name == "mix_0db":
        o = np.resize(other.mean(axis=0), y.shape[-1])
        o *= np.sqrt(np.mean(y**2) / max(np.mean(o**2), 1e-12))
        return np.clip(y + o[None], -1, 1)
    if name == "speed_5pct":  # 5% faster: play the samples back at a higher rate
        return A.resample(y, int(round(rate * 1.05)), rate)
    raise ValueError(name)


def _files(root: Path) -> dict[str, list[Path]]:
    cats: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in A.AUDIO_EXTENSIONS:
            cats.setdefault(path.relative_to(root).parts[0], []).append(path)
    return cats


def _median(values: list) -> float | None:
    return float(np.median(values)) if len(values) else None


def _round(value: float | None) -> float | None:
    """Rounded for the JSON report; None (null) where there was nothing to measure."""
    return None if value is None else round(float(value), 2)


def _generated(n: int = 40) -> dict[str, list[tuple[str, np.ndarray, int]]]:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        t = np.arange(int(16000 * rng.uniform(1.5, 5))) / 16000
        f0 = 100 + 60 * rng.random()
        x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 25)) * np.abs(np.sin(2 * np.pi * 2 * t))
        clips.append((f"gen{i}", (0.2 * x / np.abs(x).max() + 0.002 * rng.standard_normal(len(t)))[None]
                      .astype(np.float32), 16000))
    return {"generated": clips}


def _load(path: Path) -> tuple[np.ndarray, int] | None:
    try:
        x, r = A.read(path)
    except WavesmithError:
        return None
    return (x, r) if x.size else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object (default: the same, indented)")
    p.add_argument("--audio", type=Path, default=Path("/work/real-audio"), help="folder of recordings")
    p.add_argument("--report", type=Path, help="folder for spectrograms of original | difference (PNG)")
    p.add_argument("--per-category", type=int, default=60, help="marked files per category (0 = all)")
    p.add_argument("--codec-every", type=int, default=1, help="run codec attacks on every k-th marked file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    have_ffmpeg = shutil.which("ffmpeg") is not None

    if args.audio.is_dir():
        loaded = {c: [(str(f), *xr) for f in fs if (xr := _load(f))] for c, fs in _files(args.audio).items()}
    else:
        loaded = _generated()
    all_clips = [c for cs in loaded.values() for c in cs]

    # False positives: every unmarked recording.
    fp, fp_files, fp_long, fp_max = 0, [], 0, 0.0
    for name, x, r in all_clips:
        d = detect(x, r)
        fp_long += x.shape[-1] / r >= MIN_SECONDS
        fp_max = max(fp_max, d.z)
        if d.present:
            fp += 1
            fp_files.append(name)

    # Robustness: files long enough to carry the mark; short drum hits joined into 4 s loops.
    pool: dict[str, list[tuple[str, np.ndarray, int]]] = {}
    for cat, clips in loaded.items():
        long = [c for c in clips if c[1].shape[-1] / c[2] >= MIN_SECONDS]
        short = [c for c in clips if c[1].shape[-1] / c[2] < MIN_SECONDS and c[1].shape[-1] > 0]
        if cat == "drums" and short:
            rate = 44100
            hits = [A.to_channels(A.resample(x, r, rate), 2) for _, x, r in short]
            for i in range(0, len(hits) - 8, 8):
                loop = np.concatenate(hits[i : i + 8], axis=-1)[:, : 4 * rate]
                if loop.shape[-1] >= 2 * rate:
                    long.append((f"drums-loop-{i}", loop, rate))
        if args.per_category and len(long) > args.per_category:
            idx = np.sort(rng.choice(len(long), args.per_category, replace=False))
            long = [long[i] for i in idx]
        pool[cat] = long

    results = {a: {"detected": 0, "bits_right": 0, "exact": 0, "files": 0} for a in ATTACKS}
    per_cat: dict[str, dict[str, list[int]]] = {}
    per_dur: dict[str, dict[str, list[int]]] = {}
    snr: dict[str, list[tuple[float, bool]]] = {}
    frame_snr: dict[str, list[np.ndarray]] = {}
    t_mark = t_detect = seconds = 0.0
    report_done: set[str] = set()
    for cat, clips in pool.items():
        for k, (_name, x, r) in enumerate(clips):
            payload = int(rng.integers(0, 2**16))
            t0 = time.perf_counter()
            y = embed(x, r, payload)
            t1 = time.perf_counter()
            detect(y, r)
            t2 = time.perf_counter()
            t_mark, t_detect, seconds = t_mark + t1 - t0, t_detect + t2 - t1, seconds + x.shape[-1] / r
            p_x = max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20)
            snr_db = 10 * np.log10(p_x / max(float(np.mean(np.square(y - x, dtype=np.float64))), 1e-20))
            snr.setdefault(cat, []).append((float(snr_db), bool(10 * np.log10(p_x) < MIN_MARK_DBFS + TARGET_SNR_DB)))
            frame_snr.setdefault(cat, []).append(frame_snr_db(x, y, r))
            if args.report and cat not in report_done:
                args.report.mkdir(parents=True, exist_ok=True)
                # Original, a short gap, then the difference (marked - original), drawn as
                # one picture so both share one dB scale: the mark's level shows as it is.
                gap = np.zeros((x.shape[0], r // 10), np.float32)
                both = np.concatenate([x, gap, y - x], axis=-1)
                (args.report / f"watermark_difference_{cat}.png").write_bytes(plot.spectrogram_png(both, r))
                report_done.add(cat)
            other = all_clips[int(rng.integers(len(all_clips)))][1]
            y = A.as_written(y, r)
            for a in ATTACKS:
                if a in CODECS and (not have_ffmpeg or k % args.codec_every):
                    continue
                z = attack(a, y, r, rng, other)
                if z is None:
                    continue
                d = detect(z, r)
                bits = sum(((payload >> b) & 1) == (v > 0) for b, v in enumerate(d.bit_z))
                res = results[a]
                res["files"] += 1
                res["detected"] += d.present
                res["bits_right"] += bits
                res["exact"] += bool(d.present and d.payload == payload)
                dur = x.shape[-1] / r
                bucket = "1-2s" if dur < 2 else "2-4s" if dur < 4 else ">=4s"
                for table, key in ((per_cat, cat), (per_dur, bucket)):
                    table.setdefault(a, {}).setdefault(key, [0, 0])
                    table[a][key][0] += d.present
                    table[a][key][1] += 1
        print(f"{cat}: {len(clips)} files marked", file=sys.stderr)

    out = {
        "attacks": {
            a: {
                "detection_rate": round(v["detected"] / v["files"], 4) if v["files"] else None,
                "bit_accuracy": round(v["bits_right"] / (16 * v["files"]), 4) if v["files"] else None,
                # detected with all 16 payload bits right
                "payload_exact": round(v["exact"] / v["files"], 4) if v["files"] else None,
                "files": v["files"],
                "by_category": {c: round(d / n, 3) for c, (d, n) in per_cat.get(a, {}).items()},
                "by_duration": {c: [round(d / n, 3), n] for c, (d, n) in sorted(per_dur.get(a, {}).items())},
            }
            for a, v in results.items()
        },
        "false_positives": fp,
        "false_positive_files": fp_files,
        "files_checked": len(all_clips),
        "files_checked_long_enough": int(fp_long),
        "max_unmarked_z": round(fp_max, 3),
        # Files quieter than MIN_MARK_DBFS + TARGET_SNR_DB get the mark at the absolute floor
        # (so 16-bit output keeps it): their SNR is lower by design, and counted apart.
        "snr_db": {c: {"median": round(float(np.median([s for s, _ in v])), 2),
                       "min": round(float(np.min([s for s, _ in v])), 2),
                       "min_above_floor": _round(min((s for s, q in v if not q), default=None)),
                       "files_at_floor": sum(q for _, q in v),
                       # Per 32 ms frame (above -70 dBFS): the median over files of each
                       # file's median and 5th percentile, so quiet passages show too.
                       "frame_median": _round(_median([np.median(f) for f in frame_snr[c] if f.size])),
                       "frame_p5": _round(_median([np.percentile(f, 5) for f in frame_snr[c] if f.size]))}
                   for c, v in snr.items()},
        "realtime_factor": {"mark": round(seconds / t_mark, 1), "detect": round(seconds / t_detect, 1)},
        "marked_seconds": round(seconds, 1),
        "ffmpeg": have_ffmpeg,
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
