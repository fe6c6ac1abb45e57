"""Did the model replay its training set? Nearest-neighbour distances against real held-out clips.

A generated clip is compared with every training clip in a feature space (the log-mel clip
embedding, standardised per dimension on the training set). How close a *new* real recording
comes to the training set is measured the same way: the nearest-training distance of each
held-out real clip. A generated clip nearer to a training clip than half the distance any
held-out real clip ever comes is flagged as a likely copy: real recordings never get that
close, so a model that does is reproducing, not generating. (The idea follows the
nearest-neighbour memorization tests of Meehan et al. 2020 and the "copy detection" of
diffusion-model studies, e.g. Carlini et al. 2023; the rule here is our own, simple one.)
"""

from __future__ import annotations

import numpy as np

MARGIN = 0.5  # flag below this fraction of the smallest held-out distance


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every set by the training set's per-dimension mean and spread."""
    mu = train.mean(0)
    sd = train.std(0) + 1e-6
    return [(x - mu) / sd for x in (train, *others)]


def nearest(query: np.ndarray, train: np.ndarray, exclude_self: bool = False,
            chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """RMS (per-dimension) Euclidean distance from each query row to its nearest train row, and its index."""
    t2 = (train**2).sum(1)
    dist = np.empty(len(query))
    idx = np.empty(len(query), dtype=np.int64)
    for s in range(0, len(query), chunk):
        q = query[s: s + chunk]
        d2 = (q**2).sum(1)[:, None] - 2 * q @ train.T + t2[None]
        if exclude_self:
            d2[np.arange(len(q)), np.arange(s, s + len(q))] = np.inf
        j = d2.argmin(1)
        idx[s: s + chunk] = j
        dist[s: s + chunk] = np.sqrt(np.clip(d2[np.arange(len(q)), j], 0, None) / train.shape[1])
    return dist, idx


def threshold(held_out_dist: np.ndarray) -> float:
    """Half the smallest nearest-training distance of a real held-out clip.

    Exact duplicates between the held-out and training sets (distance ~0) are ignored here:
    they would make the threshold 0 and hide every copy.
    """
    d = np.asarray(held_out_dist, dtype=np.float64)
    scale = float(np.median(d)) if len(d) else 0.0
    d = d[d > 1e-4 * max(scale, 1e-12)]
    return float(MARGIN * d.min()) if len(d) else 0.0


def check(
    generated: np.ndarray,
    train: np.ndarray,
    held_out: np.ndarray | None,
    files: list[str],
    train_names: list[str],
    extra: dict[str, np.ndarray] | None = None,
) -> dict:
    """The memorization section of the evaluation.

    ``generated``, ``train``, ``held_out``: clip embeddings (rows). With ``held_out=None`` the
    reference distribution is leave-one-out within ``train`` (two folders, no database).
    ``extra`` sets (real floor, noise, silence) get their flagged share as calibration.
    """
    if len(train) == 0:  # every clip is in the evaluated split: nothing to be a copy of
        return {"value": None, "threshold": None, "held_out_min": None, "held_out_median": None, "flagged": [],
                "copies": [], "distances": [], "held_out_distances": [],
                "note": "no training clips outside the evaluated split", **{k: None for k in (extra or {})}}
    sets = [generated] + ([held_out] if held_out is not None else []) + list((extra or {}).values())
    z_train, *z = standardise(train, *sets)
    z_gen = z[0]
    if held_out is not None:
        ref_dist, _ = nearest(z[1], z_train)
    else:
        ref_dist, _ = nearest(z_train, z_train, exclude_self=True)
    thr = threshold(ref_dist)
    dist, idx = nearest(z_gen, z_train)
    flagged_rows = np.flatnonzero(dist < thr)
    out = {
        "value": float(len(flagged_rows) / max(len(dist), 1)),
        "threshold": thr,
        "held_out_min": float(ref_dist.min()) if len(ref_dist) else None,
        "held_out_median": float(np.median(ref_dist)) if len(ref_dist) else None,
        "flagged": [files[i] for i in flagged_rows],
        "copies": [{"file": files[i], "distance": float(dist[i]), "nearest_train": train_names[idx[i]],
                    "nearest_index": int(idx[i])} for i in flagged_rows],
        "distances": dist.tolist(),
        "held_out_distances": ref_dist.tolist(),
    }
    offset = 1 + (held_out is not None)
    for k, name in enumerate((extra or {}).keys()):
        d, _ = nearest(z[offset + k], z_train)
        out[name] = float((d < thr).mean()) if len(d) else None
    return out
