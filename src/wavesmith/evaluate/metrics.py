"""The numbers: Frechet distance, Inception-style scores, NDB/K and 1-D distribution distances.

numpy only. Sources of the definitions (no code taken from them):
- Frechet distance between Gaussians: Dowson & Landau 1982; as FID in Heusel et al. 2017, eq. 6.
- Inception Score: Salimans et al. 2016, section 4; modified IS: Gurumurthy et al. 2017 (DeLiGAN),
  eq. 9; AM score: Zhou et al. 2018 (Activation Maximization GAN), eq. 12. The WaveGAN paper
  (Donahue et al. 2019) uses IS with a spectrogram classifier on SC09, which this follows.
- NDB/K: Richardson & Weiss 2018 ("On GANs and GMMs"), section 4: k-means bins on real data,
  a two-proportion z-test per bin, the share of bins that differ.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-12


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples) in float64."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return x.mean(0) if len(x) else np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
    return x.mean(0), np.cov(x, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Squared Frechet distance of two Gaussians: |mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) equals tr((A S2 A)^(1/2)) with A = S1^(1/2); the latter matrix is
    symmetric positive semi-definite, so both roots come from eigen-decompositions and stay
    real (no complex parts to discard, as with a general matrix square root).
    """
    a = _psd_sqrt(s1)
    w = np.linalg.eigvalsh(a @ s2 @ a)
    tr_cov = float(np.sqrt(np.clip(w, 0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_cov)
    return max(d, 0.0)


def frechet_of(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two sample sets."""
    return frechet(*gaussian(x), *gaussian(y))


def inception_score(p: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) for class probabilities ``p`` of shape (n, classes)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1)
    py = p.mean(0, keepdims=True)
    return float(math.exp((p * (np.log(p) - np.log(py))).sum(1).mean()))


def modified_inception_score(p: np.ndarray, max_pairs: int = 1_000_000) -> float:
    """exp(E_{x,x'} KL(p(y|x) || p(y|x'))): also rewards diversity within a class (DeLiGAN)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1)
    if len(p) > int(math.sqrt(max_pairs)):
        p = p[np.random.default_rng(0).choice(len(p), int(math.sqrt(max_pairs)), replace=False)]
    logp = np.log(p)
    # KL(p_i || p_j) = sum p_i log p_i - sum p_i log p_j; average over all ordered pairs.
    neg_ent = (p * logp).sum(1)
    cross = p @ logp.T
    kl = neg_ent[:, None] - cross
    return float(math.exp(kl.mean()))


def am_score(p: np.ndarray, train_prior: np.ndarray) -> float:
    """KL(p_train(y) || p(y)) + E_x H(p(y|x)): 0 is best (confident and balanced like the data)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1)
    q = np.clip(np.asarray(train_prior, dtype=np.float64), EPS, 1)
    q = q / q.sum()
    py = p.mean(0)
    return float((q * (np.log(q) - np.log(py))).sum() + (-(p * np.log(p)).sum(1)).mean())


def kmeans(x: np.ndarray, k: int, iters: int = 30, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; returns the (k, d) centres."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
        centres.append(x[rng.choice(len(x), p=probs)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.stack(centres)
    for _ in range(iters):
        assign = assign_bins(x, c)
        new = np.stack([x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c


def assign_bins(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of each row."""
    d = (x**2).sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None]
    return d.argmin(1)


def ndb_k(real: np.ndarray, test: np.ndarray, centres: np.ndarray, z_crit: float = 1.96) -> float:
    """Share of bins whose proportion differs between ``real`` and ``test`` (two-proportion z-test, 5%)."""
    k = len(centres)
    a = np.bincount(assign_bins(real, centres), minlength=k).astype(np.float64)
    b = np.bincount(assign_bins(test, centres), minlength=k).astype(np.float64)
    n1, n2 = a.sum(), b.sum()
    p1, p2 = a / n1, b / n2
    pooled = (a + b) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = np.abs(p1 - p2) / np.maximum(se, EPS)
    return float(((z > z_crit) & (se > 0) | ((se == 0) & (p1 != p2))).mean())


def _sorted_finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sort(x[np.isfinite(x)])


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float | None:
    """Earth mover's distance between two 1-D samples (NaNs dropped): the integral of |F_a - F_b|."""
    a, b = _sorted_finite(a), _sorted_finite(b)
    if len(a) == 0 or len(b) == 0:
        return None
    grid = np.concatenate([a, b])
    grid.sort()
    fa = np.searchsorted(a, grid[:-1], side="right") / len(a)
    fb = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float((np.abs(fa - fb) * np.diff(grid)).sum())


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs."""
    a, b = _sorted_finite(a), _sorted_finite(b)
    if len(a) == 0 or len(b) == 0:
        return None
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def accuracy(p: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of rows whose arg-max class equals ``labels`` (rows with label -1 ignored)."""
    labels = np.asarray(labels)
    keep = labels >= 0
    if not keep.any():
        return None
    return float((np.asarray(p)[keep].argmax(1) == labels[keep]).mean())


def accuracy_per_label(p: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, dict]:
    """Per requested label: ``n`` rows, ``value`` (their accuracy), and ``taken_for``, the label
    most often predicted in its place with the share of rows it took (None when never wrong)."""
    labels = np.asarray(labels)
    pred = np.asarray(p).argmax(1)
    out = {}
    for k, name in enumerate(names):
        rows = labels == k
        if not rows.any():
            continue
        wrong = np.bincount(pred[rows & (pred != k)], minlength=len(names))
        worst = int(wrong.argmax())
        out[name] = {"n": int(rows.sum()), "value": float((pred[rows] == k).mean()),
                     "taken_for": names[worst] if wrong[worst] else None,
                     "taken_for_share": float(wrong[worst] / rows.sum())}
    return out
