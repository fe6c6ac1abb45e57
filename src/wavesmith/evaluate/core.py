"""Evaluation on plain arrays: every metric, with its calibration (real floor, noise, silence).

The sets involved:

- ``generated``: the clips under evaluation;
- ``reference``: real held-out clips every figure is measured against (the database's test split);
- ``floor``: other real held-out clips (the valid split, or the other half of the reference):
  the same figure for them is the best a model can hope for, the *real floor*;
- ``noise`` and ``silence``: white noise (at the floor clips' loudness) and digital silence,
  the far end of each scale;
- ``train``: the training clips, for the memorization check and the classifier.

Sample sizes bias Frechet distances and the like, so the calibration sets have the floor's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavesmith.evaluate import memorization as M
from wavesmith.evaluate import metrics as m
from wavesmith.evaluate.classifier import Classifier
from wavesmith.evaluate.features import Features, extract

# name -> (which way is better, one-line meaning); the order of the printed table.
METRICS = {
    "fd_logmel": ("lower", "Frechet distance of log-mel frame statistics"),
    "loudness_w1": ("lower", "Wasserstein-1 of clip loudness (dB)"),
    "duration_w1": ("lower", "Wasserstein-1 of non-silent duration (s)"),
    "centroid_w1": ("lower", "Wasserstein-1 of spectral centroid (Hz)"),
    "f0_w1": ("lower", "Wasserstein-1 of f0 of pitched clips (semitones)"),
    "loudness_ks": ("lower", "Kolmogorov-Smirnov statistic of loudness"),
    "centroid_ks": ("lower", "Kolmogorov-Smirnov statistic of spectral centroid"),
    "classifier_accuracy": ("higher", "classifier accuracy on the requested labels"),
    "inception_score": ("higher", "Inception Score (classifier)"),
    "modified_inception_score": ("higher", "modified Inception Score"),
    "am_score": ("lower", "AM score"),
    "fd_classifier": ("lower", "Frechet distance of classifier features"),
    "ndb_k": ("lower", "NDB/K: share of k-means bins that differ (5% test)"),
    "memorization": ("lower", "share of clips flagged as copies of training clips"),
}
CALIBRATION = ("real_floor", "noise", "silence")


@dataclass
class RealSets:
    """The real clips (float32 ``(C, T)`` at ``sample_rate``) and what is known about them."""

    sample_rate: int
    reference: list[np.ndarray]
    floor: list[np.ndarray]
    train: list[np.ndarray]
    train_names: list[str]
    reference_labels: np.ndarray | None = None  # label ids, -1 unknown
    floor_labels: np.ndarray | None = None
    # For the memorization check's reference distances: clips, REFERENCE (the reference clips
    # themselves, whose features are then computed once), or None (leave-one-out on train).
    held_out: list[np.ndarray] | str | None = None


REFERENCE = "reference"  # RealSets.held_out: the held-out clips are the reference clips


def calibration_clips(floor: list[np.ndarray], seed: int = 0) -> dict[str, list[np.ndarray]]:
    """White noise with each floor clip's length and RMS, and silence of the same lengths."""
    rng = np.random.default_rng(seed)
    noise, silence = [], []
    for c in floor:
        rms = float(np.sqrt(np.mean(np.square(c, dtype=np.float64)))) or 0.1
        noise.append(np.clip(rng.standard_normal(c.shape) * rms, -1, 1).astype(np.float32))
        silence.append(np.zeros_like(c, dtype=np.float32))
    return {"noise": noise, "silence": silence}


def _distribution_metrics(gen: Features, ref: Features) -> dict[str, float | None]:
    def semitones(f0):
        return 12 * np.log2(f0 / 440.0)

    return {
        "fd_logmel": m.frechet_of(gen.frames, ref.frames) if len(gen.frames) and len(ref.frames) else None,
        "loudness_w1": m.wasserstein1(gen.loudness, ref.loudness),
        "duration_w1": m.wasserstein1(gen.duration, ref.duration),
        "centroid_w1": m.wasserstein1(gen.centroid, ref.centroid),
        # f0 only where both sides have pitched clips; otherwise "not meaningful" (None).
        "f0_w1": m.wasserstein1(semitones(gen.f0), semitones(ref.f0))
        if np.isfinite(gen.f0).sum() >= 3 and np.isfinite(ref.f0).sum() >= 3 else None,
        "loudness_ks": m.ks_statistic(gen.loudness, ref.loudness),
        "centroid_ks": m.ks_statistic(gen.centroid, ref.centroid),
    }


def _classifier_metrics(p: np.ndarray, f: np.ndarray, ref_f: np.ndarray, centres: np.ndarray,
                        prior: np.ndarray, labels: np.ndarray | None) -> dict[str, float | None]:
    return {
        "classifier_accuracy": m.accuracy(p, labels) if labels is not None else None,
        "inception_score": m.inception_score(p),
        "modified_inception_score": m.modified_inception_score(p),
        "am_score": m.am_score(p, prior),
        "fd_classifier": m.frechet_of(f, ref_f),
        "ndb_k": m.ndb_k(ref_f, f, centres),
    }


def evaluate_arrays(
    generated: list[np.ndarray],
    files: list[str],
    real: RealSets,
    classifier: Classifier | None = None,
    requested_labels: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Every metric of ``generated`` against ``real``, and the per-clip arrays the report draws.

    Returns ``(metrics, arrays)``: ``metrics`` holds one ``{"value", "real_floor", "noise",
    "silence", ...}`` per metric (plain JSON); ``arrays`` the features, the classifier's
    outputs and the memorization distances.
    """
    sr = real.sample_rate
    calib = calibration_clips(real.floor, seed)
    sets = {"value": generated, "real_floor": real.floor, **calib}
    feats = {k: extract(v, sr, seed=seed) for k, v in sets.items()}
    ref = extract(real.reference, sr, seed=seed)
    rows: dict[str, dict] = {}
    for k, f in feats.items():
        for name, v in _distribution_metrics(f, ref).items():
            rows.setdefault(name, {})[k] = v
    out: dict = {}
    clf_out = {}
    if classifier is not None:
        pr, fr = classifier.predict(real.reference)
        k_bins = int(np.clip(len(fr) // 10, 2, 50))
        centres = m.kmeans(fr, k_bins, seed=seed)
        labels_for = {"value": requested_labels, "real_floor": real.floor_labels,
                      "noise": real.floor_labels, "silence": real.floor_labels}
        for k, clips in sets.items():
            p, f = classifier.predict(clips)
            clf_out[k] = p
            for name, v in _classifier_metrics(p, f, fr, centres, classifier.prior, labels_for[k]).items():
                rows.setdefault(name, {})[k] = v
        rows["ndb_k"]["bins"] = k_bins
        if requested_labels is not None:  # which labels the model gets wrong, and for what
            floor = m.accuracy_per_label(clf_out["real_floor"], real.floor_labels, classifier.labels) \
                if real.floor_labels is not None else {}
            per = m.accuracy_per_label(clf_out["value"], requested_labels, classifier.labels)
            rows["classifier_accuracy"]["per_label"] = {
                name: {**r, "real_floor": floor[name]["value"] if name in floor else None}
                for name, r in per.items()}
        else:
            rows["classifier_accuracy"]["note"] = "no requested labels (generated.jsonl with labels) for these files"
    train_f = extract(real.train, sr, seed=seed)
    if real.held_out is None:
        held = None
    elif isinstance(real.held_out, str):
        if real.held_out != REFERENCE:
            raise ValueError(f"RealSets.held_out must be clips, {REFERENCE!r} or None, not {real.held_out!r}")
        held = ref.embedding
    else:
        held = extract(real.held_out, sr, seed=seed).embedding
    mem = M.check(feats["value"].embedding, train_f.embedding, held, files, real.train_names,
                  extra={"real_floor": feats["real_floor"].embedding, "noise": feats["noise"].embedding,
                         "silence": feats["silence"].embedding})
    for name, (better, meaning) in METRICS.items():
        if name == "memorization":
            out[name] = {**{k: mem.pop(k) for k in ("value", *CALIBRATION)}, "better": better,
                         "meaning": meaning, **mem}
        elif name in rows:
            row = rows[name]
            out[name] = {"value": row.get("value"), **{k: row.get(k) for k in CALIBRATION},
                         "better": better, "meaning": meaning,
                         **{k: v for k, v in row.items() if k not in ("value", *CALIBRATION)}}
    arrays = {"features": feats, "reference": ref, "train": train_f, "probs": clf_out,
              "distances": out["memorization"].pop("distances"),
              "held_out_distances": out["memorization"].pop("held_out_distances")}
    return out, arrays
