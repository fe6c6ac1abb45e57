"""Reading a database out: summary figures (``db info``) and files (``db export``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from wavesmith import audio
from wavesmith.db.catalog import SPLITS
from wavesmith.errors import WavesmithError

# Histogram bin edges: original sample rates are reported exactly; durations in seconds.
DURATION_EDGES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def info(db) -> dict:
    """Clips and hours overall, per split, label, speaker and language; rate and duration histograms."""
    q = db.query
    clips, seconds = q("SELECT COUNT(*), COALESCE(SUM(duration), 0) FROM clips")[0]

    def grouped(column: str) -> tuple[dict, dict]:
        rows = q(
            f"SELECT {column}, COUNT(*), SUM(duration) FROM clips WHERE {column} IS NOT NULL "
            f"GROUP BY {column} ORDER BY {column}"
        )
        return {k: n for k, n, _ in rows}, {k: round(s / 3600.0, 6) for k, _, s in rows}

    splits, split_hours = grouped("split")
    labels, label_hours = grouped("label")
    speakers, speaker_hours = grouped("speaker")
    languages, language_hours = grouped("language") if db.has_language else ({}, {})  # format 1: none
    rates = {
        str(r): n for r, n in q("SELECT orig_rate, COUNT(*) FROM clips GROUP BY orig_rate ORDER BY orig_rate")
    }
    durations = {}
    edges = list(DURATION_EDGES) + [float("inf")]
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        n = q("SELECT COUNT(*) FROM clips WHERE duration >= ? AND duration < ?", (lo, hi))[0][0]
        durations[f"{lo:g}-{hi:g}s" if hi != float("inf") else f">={lo:g}s"] = n
    stats = q("SELECT MIN(duration), MAX(duration), AVG(duration) FROM clips")[0]
    sources, duplicates = q("SELECT COUNT(*), COALESCE(SUM(duplicates), 0) FROM sources")[0]
    return {
        "path": str(db.path),
        "sample_rate": db.sample_rate,
        "channels": db.channels,
        "fingerprint": db.fingerprint(),
        "clips": clips,
        "hours": round(seconds / 3600.0, 6),
        "errors": q("SELECT COUNT(*) FROM errors")[0][0],
        "sources": sources,
        "duplicates": duplicates,
        "splits": {s: splits.get(s, 0) for s in SPLITS},
        "split_hours": {s: split_hours.get(s, 0.0) for s in SPLITS},
        "split_ratios": list(db.split_ratios),
        "labels": labels,
        "label_hours": label_hours,
        "speakers": speakers,
        "speaker_hours": speaker_hours,
        "languages": languages,
        "language_hours": language_hours,
        "duration": {
            "min": stats[0] or 0.0,
            "max": stats[1] or 0.0,
            "mean": round(stats[2] or 0.0, 4),
        },
        "duration_histogram": durations,
        "orig_sample_rates": rates,
        "store_bytes": sum(p.stat().st_size for p in (db.path / "audio").glob("shard-*.pcm")),
    }


def format_info(d: dict) -> str:
    """``db info`` for people: a few aligned lines."""
    lines = [
        f"database     {d['path']}  ({d['sample_rate']} Hz, {d['channels']} channel(s))",
        f"clips        {d['clips']}  ({d['hours'] * 60:.2f} min of audio, {d['store_bytes'] / 1e6:.1f} MB)",
        f"errors       {d['errors']} skipped input(s)" + ("  (see `wavesmith db errors`)" if d["errors"] else ""),
        "splits       " + ", ".join(f"{k} {v} ({d['split_hours'][k] * 60:.2f} min)" for k, v in d["splits"].items()),
    ]
    for key in ("labels", "speakers", "languages"):
        items = d[key]
        shown = ", ".join(f"{k} {v}" for k, v in list(items.items())[:20])
        more = f", ... ({len(items)} in all)" if len(items) > 20 else ""
        lines.append(f"{key:<12} {shown + more if items else '(none)'}")
    lines.append("durations    " + ", ".join(f"{k}: {v}" for k, v in d["duration_histogram"].items() if v))
    lines.append("source rates " + ", ".join(f"{k} Hz: {v}" for k, v in d["orig_sample_rates"].items()))
    return "\n".join(lines)


def export(db, out: str | os.PathLike, format: str = "wav", split: str | None = None) -> list[Path]:
    """Write each clip to ``out/<split>/<label>/<id>.<format>`` with the atomic :func:`audio.write`."""
    format = audio.check_format(format, "cannot export: ")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise WavesmithError(f"{out} exists and is not a folder")
    written = []
    for clip in db.clips(split):
        folder = out / clip.split / _safe(clip.label or "unlabelled")
        written.append(audio.write(folder / f"{clip.id:07d}.{format}", db.audio(clip.id), db.sample_rate, format))
    return written


def _safe(name: str) -> str:
    """A label as a folder name: no separators, no leading dots."""
    return re.sub(r"[/\\\x00]", "_", name).lstrip(".") or "unlabelled"
