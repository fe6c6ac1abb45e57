"""``evaluate`` and ``quick_metrics``: folders and databases in, a JSON-ready dict out.

This module reads files and the database, picks the real sets (see :mod:`.core`), caches the
classifier, and writes the JSON and the HTML report. The numbers come from :mod:`.core`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.evaluate import classifier, features
from wavesmith.evaluate import metrics as m
from wavesmith.evaluate.core import CALIBRATION, METRICS, REFERENCE, RealSets, evaluate_arrays
from wavesmith.files import write_text

MAX_REAL = 2000  # real clips per set at most (random subset beyond): bounded time on big databases
MAX_TRAIN = 5000


def _subset(items: list, limit: int, seed: int) -> list:
    if len(items) <= limit:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in keep]


def _audio(db, clip, max_seconds: float | None = None) -> np.ndarray:
    """A database clip's first :data:`features.MAX_SECONDS` (a 2-hour clip costs what 30 s cost), or fewer."""
    return db.audio(clip.id, max_seconds=min(features.MAX_SECONDS, max_seconds or features.MAX_SECONDS))


def _open_db(db):
    from wavesmith.db import Database

    return db if isinstance(db, Database) else Database.open(db)


def classifier_for(db, log=None, **train_kw) -> tuple[classifier.Classifier | None, dict]:
    """The database's classifier, from its cache or trained now; ``(None, why)`` without labels."""
    train = [c for c in db.clips("train") if c.label]
    names = db.labels
    if len({c.label for c in train}) < 2:
        return None, {"available": False, "reason": "the database's train split has fewer than two labels"}
    fp = db.fingerprint()
    cache = Path(db.path) / "evaluate" / f"classifier-{fp}.pt"
    cached = False
    clf = None
    if cache.exists():
        try:
            clf = classifier.Classifier.load(cache)
            cached = clf.labels == names
        except Exception:  # an unreadable or older cache is retrained, never trusted
            clf = None
    if not cached:
        if log:
            log(f"training the evaluation classifier on {len(train)} labelled clips (cached afterwards)")
        test = [c for c in db.clips("test") if c.label] or [c for c in db.clips("valid") if c.label]
        train = _subset(train, MAX_TRAIN, 0)
        clf = classifier.train([_audio(db, c) for c in train], np.array([names.index(c.label) for c in train]),
                               names, db.sample_rate, [_audio(db, c) for c in test],
                      np.array([names.index(c.label) for c in test]), log=log, **train_kw)
        clf.fingerprint = fp
        if os.access(db.path, os.W_OK):
            for old in cache.parent.glob("classifier-*.pt") if cache.parent.exists() else []:
                old.unlink(missing_ok=True)
            clf.save(cache)
        elif log:  # a read-only database is still evaluated, only not cached
            log(f"the database {db.path} is read-only: the classifier is not cached")
    return clf, {"available": True, "cached": cached, "path": str(cache), "labels": clf.labels,
                 "test_accuracy": clf.test_accuracy, "seconds_trained": round(clf.seconds_trained, 1)}


def real_from_db(db, split: str, seed: int = 0, max_seconds: float | None = None) -> tuple[RealSets, dict]:
    """Reference (``split``), floor (another held-out split, else half of ``split``) and train clips.

    ``max_seconds``: each clip's first seconds only (see :func:`evaluate`'s ``reference_seconds``).
    """
    ref_clips = db.clips(split)
    if not ref_clips:
        counts = Counter(c.split for c in db.clips())
        have = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no clips at all"
        raise WavesmithError(f"database {db.path} has no clips in its {split!r} split ({have}); "
                             "choose another with --split")
    train = db.clips("train") if split != "train" else []
    others = [s for s in ("valid", "test") if s != split and db.clips(s)]
    if others:
        floor, floor_source = db.clips(others[0]), f"the {others[0]} split"
    else:
        perm = np.random.default_rng(seed).permutation(len(ref_clips))
        half = len(ref_clips) // 2
        floor = [ref_clips[i] for i in sorted(perm[:half])]
        ref_clips = [ref_clips[i] for i in sorted(perm[half:])]
        floor_source = f"half of the {split} split (the other half is the reference)"
    if len(ref_clips) < 2 or len(floor) < 2:
        raise WavesmithError(f"database {db.path}: its {split!r} split is too small to evaluate against "
                             f"({len(ref_clips) + len(floor)} clips)")
    ref_clips, floor, = _subset(ref_clips, MAX_REAL, seed), _subset(floor, MAX_REAL, seed + 1)
    if not train:
        train = [c for c in db.clips() if c.split != split]
    train = _subset(train, MAX_TRAIN, seed + 2)
    names = db.labels

    def ids(cs):
        return np.array([names.index(c.label) if c.label in names else -1 for c in cs])

    reference = [_audio(db, c, max_seconds) for c in ref_clips]
    real = RealSets(db.sample_rate, reference, [_audio(db, c, max_seconds) for c in floor],
                    [_audio(db, c, max_seconds) for c in train], [f"{c.id}: {c.source}" for c in train],
                    ids(ref_clips), ids(floor), held_out=REFERENCE)
    return real, {"database": str(db.path), "split": split, "floor_source": floor_source,
                  "n_reference": len(ref_clips), "n_floor": len(floor), "n_train": len(train)}


def real_from_folder(folder, seed: int = 0, max_seconds: float | None = None) -> tuple[RealSets, features.Folder, dict]:
    """Two halves of a reference folder (reference, floor); memorization against all of it.

    ``max_seconds``: each file's first seconds only (see :func:`evaluate`'s ``reference_seconds``).
    """
    paths = features.list_audio(folder)
    rates, chans = Counter(), Counter()
    for p in paths:
        try:
            i = A.info(p)
        except WavesmithError:
            continue
        rates[i.sample_rate] += 1
        chans[i.channels] += 1
    if not rates:
        raise WavesmithError(f"reference folder {folder} holds no readable audio files")
    sr, ch = rates.most_common(1)[0][0], chans.most_common(1)[0][0]
    ref = features.read_folder(folder, sr, ch, "reference folder")
    if max_seconds:
        ref.clips = [x[..., : max(1, round(max_seconds * sr))] for x in ref.clips]
    if len(ref.clips) < 4:
        raise WavesmithError(f"reference folder {folder} needs at least 4 clips, it has {len(ref.clips)}")
    perm = np.random.default_rng(seed).permutation(len(ref.clips))
    half = len(ref.clips) // 2
    a, b = sorted(perm[half:]), sorted(perm[:half])
    real = RealSets(sr, [ref.clips[i] for i in a], [ref.clips[i] for i in b], ref.clips, ref.files)
    return real, ref, {"reference": str(folder), "floor_source": "half of the reference folder",
                       "n_reference": len(a), "n_floor": len(b), "n_train": len(ref.clips), "channels": ch}


def requested_labels(folder: Path, files: list[str], labels: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """Label ids requested per file from ``generated.jsonl`` (``wavesmith generate``), or None."""
    path = Path(folder) / "generated.jsonl"
    if not path.is_file():
        return None, []
    wanted: dict[str, str] = {}
    notes = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            notes.append(f"generated.jsonl line {n} is not JSON; ignored")
            continue
        if isinstance(row, dict) and row.get("file") and row.get("label") is not None:
            wanted[str(row["file"])] = str(row["label"])
            wanted.setdefault(Path(str(row["file"])).name, str(row["label"]))
    if not wanted:
        return None, notes
    ids = np.full(len(files), -1)
    unknown = set()
    for i, f in enumerate(files):
        label = wanted.get(f, wanted.get(Path(f).name))
        if label is None:
            continue
        if label in labels:
            ids[i] = labels.index(label)
        else:
            unknown.add(label)
    if unknown:
        notes.append(f"requested labels unknown to the database ignored: {', '.join(sorted(unknown))}")
    return (ids if (ids >= 0).any() else None), notes


def evaluate(generated_dir, db=None, reference=None, split: str = "test", json_path=None, report_path=None,
             *, log=None, seed: int = 0, reference_seconds: float | None = None) -> dict:
    """Evaluate the audio files of ``generated_dir`` against a database split or a reference folder.

    Returns (and writes to ``json_path``) a dict with one entry per metric of
    :data:`wavesmith.evaluate.core.METRICS`, each ``{"value", "real_floor", "noise", "silence",
    "better", ...}``, plus ``notes`` (conversions made), ``skipped`` (unreadable files) and
    ``classifier`` (its test accuracy). ``report_path`` gets a self-contained HTML report.

    ``reference_seconds`` compares with each real clip's first seconds only (reference, floor
    and training clips alike): like with like, for a model that makes the first seconds of
    sounds (mel-diffusion trained on one-shots from their onsets), where whole clips of up to
    30 s would weigh long decays and loops by their length.
    """
    t0 = time.monotonic()
    if (db is None) == (reference is None):
        raise WavesmithError("evaluate against either a database (--db) or a reference folder (--reference)")
    if not 0 <= seed < 2**32:
        raise WavesmithError(f"--seed must be in [0, 2^32), not {seed}")
    if reference_seconds is not None and not (math.isfinite(reference_seconds) and reference_seconds > 0):
        raise WavesmithError(f"--reference-seconds must be a positive number of seconds, not {reference_seconds}")
    generated_dir = Path(generated_dir)
    clf, clf_info = None, {"available": False, "reason": "no database (two folders compared)"}
    if db is not None:
        opened = _open_db(db)
        try:
            real, info = real_from_db(opened, split, seed, reference_seconds)
            channels = opened.channels
            clf, clf_info = classifier_for(opened, log)
        finally:
            if opened is not db:  # we opened it, we close it; a caller's Database stays open
                opened.close()
    else:
        real, _, info = real_from_folder(reference, seed, reference_seconds)
        channels = info.pop("channels")
    info["reference_seconds"] = reference_seconds
    gen = features.read_folder(generated_dir, real.sample_rate, channels, "generated folder")
    notes = list(gen.notes)
    wanted, label_notes = requested_labels(generated_dir, gen.files, clf.labels if clf else [])
    notes += label_notes
    for s in gen.skipped:
        notes.append(f"skipped unreadable {s['file']}: {s['reason']}")
    if log:
        for n in notes:
            log(n)
    res, arrays = evaluate_arrays(gen.clips, gen.files, real, clf, wanted, seed)
    out = {"generated_dir": str(generated_dir), "n_generated": len(gen.files), **info,
           "sample_rate": real.sample_rate, "channels": channels, "notes": notes, "skipped": gen.skipped,
           "classifier": clf_info, **res, "seconds": round(time.monotonic() - t0, 1)}
    if json_path:
        write_text(json_path, json.dumps(out, indent=2, default=_json_default))
    if report_path:
        from wavesmith.evaluate.report import write_report

        write_report(report_path, out, arrays, gen, real)
    return out


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def format_table(result: dict) -> str:
    """The metrics as an aligned text table (what the CLI prints)."""
    head = ("metric", "value", *CALIBRATION, "better")
    rows = [head]
    for name in METRICS:
        if name not in result:
            continue
        r = result[name]
        rows.append((name, *(_fmt(r.get(k)) for k in ("value", *CALIBRATION)), r["better"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


_QUICK_CACHE: dict[tuple, features.Features] = {}


def quick_metrics(clips: list[np.ndarray], sample_rate: int, db, split: str = "valid") -> dict[str, float]:
    """Cheap label-free figures of ``clips`` against a database split (for the trainer's previews).

    ``clips``: arrays or tensors ``(channels, samples)`` or ``(samples,)`` at ``sample_rate``.

    Returns ``fd_logmel``, ``loudness_w1``, ``centroid_w1`` and ``duration_w1`` (lower is better);
    the split's features are cached in memory per database fingerprint. An empty ``split``
    falls back to ``test``, then ``train``.
    """
    opened = _open_db(db)
    try:
        ref = _quick_reference(opened, split)
    finally:
        if opened is not db:
            opened.close()
    channels, rate = ref.extra["channels"], ref.extra["sample_rate"]
    clips = [A.resample(A.to_channels(_as_array(c), channels), sample_rate, rate) for c in clips]
    gen = features.extract(clips, rate)
    return {
        "fd_logmel": m.frechet_of(gen.frames, ref.frames),
        "loudness_w1": m.wasserstein1(gen.loudness, ref.loudness),
        "centroid_w1": m.wasserstein1(gen.centroid, ref.centroid),
        "duration_w1": m.wasserstein1(gen.duration, ref.duration),
    }


def _as_array(clip) -> np.ndarray:
    """float32 ``(channels, samples)`` from a numpy array or a torch tensor on any device."""
    x = A.as_float32(clip)
    return x.reshape(-1, x.shape[-1])


def _quick_reference(db, split: str) -> features.Features:
    """Features of (up to 500 clips of) a split, cached per database fingerprint."""
    key = (str(db.path), db.fingerprint(), split)
    if key not in _QUICK_CACHE:
        chosen = next((s for s in (split, "test", "train") if db.clips(s)), None)
        if chosen is None:
            raise WavesmithError(f"database {db.path} has no clips")
        ref = _subset(db.clips(chosen), 500, 0)
        feats = features.extract([_audio(db, c) for c in ref], db.sample_rate)
        feats.extra.update(channels=db.channels, sample_rate=db.sample_rate)
        _QUICK_CACHE[key] = feats
    return _QUICK_CACHE[key]
