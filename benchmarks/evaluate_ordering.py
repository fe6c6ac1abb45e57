"""Do the evaluation metrics rank known damage on real recordings? (wavesmith.evaluate)

Real drum hits from $WAVESMITH_REAL_AUDIO/drums (default /work/real-audio) (labelled by kit piece from their file names:
kick, snare, hihat, tom, cymbal) or speech from /work/real-audio/speech-en-16k (no labels)
are split by file into train / reference / floor / fresh. The fresh real clips, then the
same clips damaged (white noise at 20/10/0 dB SNR, low-pass at 4/2/1 kHz, hard clipping at
50/10/2 % of peak), then exact copies of training clips, are evaluated like generated audio.

    python benchmarks/evaluate_ordering.py --json            # drums, with classifier metrics
    python benchmarks/evaluate_ordering.py --data speech --json

Prints one JSON object: per condition, the value of each metric next to the real floor,
plus the checks (each damage worse than the clean clips and monotonic in strength; copies
flagged, fresh clips not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import degrade
import numpy as np

from wavesmith import audio as A
from wavesmith.evaluate import classifier
from wavesmith.evaluate.core import RealSets, evaluate_arrays

SR = 16000
MAX_SECONDS = 2.0
REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio"))
# kit piece <- a whole token of the file name (split at punctuation, case and digit changes)
RULES = [("hihat", r"(hh|chh|ohh|hat|hihat|hhat)"), ("kick", r"(kick|bd|bassdrum|kik)"),
         ("snare", r"(snare|sn|sd|rimshot)"), ("tom", r"(tom|tm|floortom)"),
         ("cymbal", r"(crash|ride|rd|splash|china|cym|cymbal)")]
# damage kind (see degrade.damage) -> strengths, mildest first
DAMAGE = {"noise": (20, 10, 0), "lowpass": (4000, 2000, 1000), "clip": (0.5, 0.1, 0.02)}
KEY_METRICS = ("fd_logmel", "fd_classifier", "inception_score", "ndb_k", "centroid_w1", "loudness_w1", "memorization")


def drum_label(path: Path) -> str | None:
    """Kit piece named by exactly one token of the file name, else None (clip unused)."""
    stem = re.sub(r"([a-z])([A-Z])", r"\1 \2", path.stem).lower()
    tokens = re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", stem)
    hits = {lab for lab, rx in RULES for t in tokens if t and re.fullmatch(rx, t)}
    return hits.pop() if len(hits) == 1 else None


def load(data: str, limit: int | None) -> tuple[list[np.ndarray], list[str], list[str | None]]:
    if data == "drums":
        paths = sorted(p for p in (REAL / "drums").rglob("*") if p.suffix.lower() in (".wav", ".flac", ".aiff"))
        paths = [p for p in paths if drum_label(p)]
    else:
        paths = sorted((REAL / "speech-en-16k").glob("*.wav"))
    if limit:
        paths = paths[:limit]
    clips, names, labels = [], [], []
    for p in paths:
        try:
            x = A.load(p, SR, 1)[:, : int(MAX_SECONDS * SR)]
        except Exception:
            continue
        if x.shape[-1] < SR // 20 or A.peak(x) < 1e-3:
            continue
        clips.append(x)
        names.append(str(p.relative_to(REAL)))
        labels.append(drum_label(p) if data == "drums" else None)
    return clips, names, labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("drums", "speech"), default="drums")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N files")
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    args = ap.parse_args()
    t0 = time.monotonic()
    clips, names, labels = load(args.data, args.limit)
    perm = np.random.default_rng(0).permutation(len(clips))
    n = len(clips)
    cut = [0, int(0.6 * n), int(0.75 * n), int(0.875 * n), n]
    part = [sorted(perm[cut[i]: cut[i + 1]]) for i in range(4)]  # train, reference, floor, fresh
    names_sorted = sorted({lab for lab in labels if lab})
    y = np.array([names_sorted.index(lab) if lab else -1 for lab in labels])

    def pick(i):
        return [clips[j] for j in part[i]]

    real = RealSets(SR, pick(1), pick(2), pick(0), [names[j] for j in part[0]], y[part[1]], y[part[2]],
                    held_out=pick(1))
    clf = None
    if names_sorted:
        clf = classifier.train(pick(0), y[part[0]], names_sorted, SR, pick(1), y[part[1]])
    fresh, y_fresh = pick(3), y[part[3]]
    conditions = {"real_fresh": fresh}
    for kind, strengths in DAMAGE.items():
        for s in strengths:
            conditions[f"{kind}={s}"] = degrade.damage(fresh, kind, s, SR)
    conditions["train_copies"] = pick(0)[: len(fresh)]
    results = {}
    for cond, cs in conditions.items():
        lab = y[part[0]][: len(fresh)] if cond == "train_copies" else y_fresh
        r, _ = evaluate_arrays(cs, [f"{cond}/{i}" for i in range(len(cs))], real, clf, lab if clf else None)
        results[cond] = {k: r[k]["value"] for k in KEY_METRICS if k in r}
        if cond == "real_fresh":
            floor = {k: r[k]["real_floor"] for k in KEY_METRICS if k in r}
            noise = {k: r[k]["noise"] for k in KEY_METRICS if k in r}
    checks = {}
    for metric in ("fd_logmel", "fd_classifier"):
        if metric not in floor:
            continue
        clean = results["real_fresh"][metric]
        for kind, strengths in DAMAGE.items():
            vals = [results[f"{kind}={s}"][metric] for s in strengths]
            checks[f"{metric}:{kind}:worse_than_clean"] = bool(vals[0] > clean)
            checks[f"{metric}:{kind}:monotonic"] = bool(vals[0] < vals[1] < vals[2])
        checks[f"{metric}:clean_within_2x_floor"] = bool(clean < 2 * floor[metric])
    checks["copies_flagged_share"] = results["train_copies"]["memorization"]
    checks["fresh_flagged_share"] = results["real_fresh"]["memorization"]
    out = {"benchmark": "evaluate_ordering", "data": args.data, "clips": n,
           "sizes": {"train": len(part[0]), "reference": len(part[1]), "floor": len(part[2]), "fresh": len(part[3])},
           "labels": names_sorted, "classifier_test_accuracy": clf.test_accuracy if clf else None,
           "real_floor": floor, "noise": noise, "results": results, "checks": checks,
           "seconds": round(time.monotonic() - t0, 1)}
    if not args.json:
        for cond, r in results.items():
            print(f"{cond:22s} " + "  ".join(f"{k}={v:.4g}" for k, v in r.items() if v is not None), file=sys.stderr)
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
