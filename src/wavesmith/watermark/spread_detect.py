"""Finding the spread-spectrum watermark (the design is in :mod:`wavesmith.watermark.spread`).

The detector whitens the band's log magnitudes, folds them modulo the pattern's period and
correlates them with the key's sync pattern at every sub-hop phase and frame offset, in
two readings (``VIEWS``); the thresholds come from a bound on the correlation's tail in
unmarked audio, so the false-positive rate holds for any audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from wavesmith.watermark.spread import (
    BITS,
    CHIP,
    DEFAULT_KEY,
    DESIGN_FPR,
    HOP,
    K0,
    K1,
    MIN_SECONDS,
    NOISE_PERCENTILE,
    PERIOD,
    PHASES,
    RATE,
    SEGMENT_Z,
    TIME_WHITEN,
    VIEWS,
    WINDOW_FRAMES,
    mix16,
    one_thread,
    pattern,
    stft,
)


@dataclass
class Detection:
    """What :func:`detect` found in one waveform."""

    present: bool  # the sync statistic passed the threshold
    confidence: float  # 1 - (bound on the chance of this statistic in unmarked audio), in [0, 1]
    payload: int | None  # decoded 16-bit payload when present
    segments: list[tuple[float, float]] = field(default_factory=list)  # marked spans (s)
    z: float = 0.0  # normalised sync correlation at the best offset
    threshold: float = 0.0  # z needed for `present`
    bit_z: list[float] = field(default_factory=list)  # per-bit statistics (sign = bit)
    windows: list[dict] = field(default_factory=list)  # per-window {start, end, z, marked}
    offset_s: float = 0.0  # where the pattern's period starts (s, modulo the period)


def features(m: np.ndarray) -> list[list[np.ndarray]]:
    """Whitened log magnitudes ``(frames, K)`` of the band, one array per sub-hop phase, in
    each of the detector's ``VIEWS``: as they are (``plain``), and weighted by each cell's
    estimated share of signal over a noise floor (``denoised``)."""
    views: list[list[np.ndarray]] = [[] for _ in VIEWS]
    step = HOP // PHASES
    for ph in range(PHASES):
        mag = stft(m[ph * step :]).abs()[:, K0 - 2 : K1 + 2].numpy()
        floor = 1e-4 * (mag.max() + 1e-12)  # silence and digital zero carry nothing
        logm = np.log(np.maximum(mag, floor))
        # Spectral envelope: mean over +-2 bins (the mark's chips are independent per bin).
        env = sum(logm[:, i : i + mag.shape[1] - 4] for i in range(5)) / 5.0
        d = logm[:, 2:-2] - env
        # Temporal envelope: mean over +-TIME_WHITEN frames (steady partials, a choir or
        # a held note, would otherwise dominate the host's share of the correlation).
        w = TIME_WHITEN
        c = np.cumsum(np.pad(d, ((w + 1, w), (0, 0)), mode="edge"), axis=0)
        d = d - (c[2 * w + 1 :] - c[: -2 * w - 1]) / (2 * w + 1)
        live = mag[:, 2:-2] > floor
        d[~live] = 0.0
        views[0].append(d)
        views[1].append(d * signal_share(mag[:, 2:-2], live))
    return views


def signal_share(mag: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Each cell's estimated share of signal, ``max(0, 1 - floor / P)``: ``P`` the cell's
    power averaged over +-1 frame and +-2 bins, ``floor`` its ``NOISE_PERCENTILE``-th
    percentile over the live cells (under added noise, the noise's level). The mark shifts a
    cell's log magnitude in proportion to the signal's share of it, while noise adds the
    same variance everywhere, so this weights each cell by what it can carry."""
    power = torch.from_numpy(np.square(mag, dtype=np.float64))[None, None]
    smooth = torch.nn.functional.avg_pool2d(power, (3, 5), 1, (1, 2), count_include_pad=False)[0, 0].numpy()
    if not live.any():
        return np.zeros_like(smooth)
    floor = np.percentile(smooth[live], NOISE_PERCENTILE)
    return np.maximum(0.0, 1.0 - floor / np.maximum(smooth, 1e-30))


def fold(d: np.ndarray) -> np.ndarray:
    """Sum frames modulo PERIOD: ``(PERIOD, K)``."""
    frames = d.shape[0]
    pad = (-frames) % PERIOD
    return np.pad(d, ((0, pad), (0, 0))).reshape(-1, PERIOD, d.shape[1]).sum(axis=0)


def chip_sums(folded: np.ndarray, r: int) -> np.ndarray:
    """Per-chip sums when received frame ``t`` is pattern frame ``(t - r) mod PERIOD``."""
    f = np.roll(folded, -r, axis=0)
    ct, ck = CHIP
    return f.reshape(PERIOD // ct, ct, -1, ck).sum(axis=(1, 3))


def z_score(folded: np.ndarray, sign: np.ndarray, mask: np.ndarray) -> float:
    num = float(np.sum(folded * sign * mask))
    den = math.sqrt(float(np.sum(np.square(folded) * mask)))
    return num / den if den > 0 else 0.0


# Pinelis (1994): a Rademacher sum with unit variance exceeds tau with probability at most
# PINELIS_C * Q(tau), Q the standard normal tail: Gaussian-like, and valid for any weights.
PINELIS_C = 2 * math.e**3 / 9


def tail_bound(tau: float) -> float:
    """Upper bound on ``P(z >= tau)`` for one test on unmarked audio (any audio)."""
    return min(1.0, PINELIS_C * 0.5 * math.erfc(tau / math.sqrt(2)), math.exp(-max(tau, 0.0) ** 2 / 2))


def threshold(n_tests: int, fpr: float) -> float:
    """Smallest ``tau`` with ``n_tests * tail_bound(tau) <= fpr`` (union bound over tests)."""
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if n_tests * tail_bound(mid) <= fpr else (mid, hi)
    return hi


# Two decisions per view share the false-positive budget: the aligned test (the file starts
# where the mark starts: untouched, re-encoded or filtered files) and the search over all
# offsets.
TAU_ALIGNED = threshold(len(VIEWS), DESIGN_FPR / 2)
TAU_SEARCH = threshold(len(VIEWS) * PHASES * PERIOD, DESIGN_FPR / 2)


@one_thread
def detect(audio: np.ndarray, sample_rate: int, key: str = DEFAULT_KEY) -> Detection:
    """Look for the watermark in ``audio`` (C, T) at ``sample_rate``; never raises for short audio."""
    m = mix16(audio, sample_rate)
    tau = TAU_SEARCH
    if len(m) < MIN_SECONDS * RATE * 0.5:
        return Detection(False, 0.0, None, threshold=tau)
    pat = pattern(key)
    sync = (pat.role < 0).astype(np.float64)
    views = features(m)
    # Every test: (bound on its chance in unmarked audio, z, threshold, view, phase, offset).
    # The file's decision is the test with the smallest bound; it passes its own threshold.
    # Both families have the budget DESIGN_FPR / 2, so that test passes whenever any does.
    tests = []
    for v, feats in enumerate(views):
        for ph, d in enumerate(feats):
            folded = fold(d)
            for r in range(PERIOD):
                z = z_score(chip_sums(folded, r), pat.sign, sync)
                tests.append((len(VIEWS) * PHASES * PERIOD * tail_bound(z), z, TAU_SEARCH, v, ph, r))
                if ph == 0 and r == 0:  # the same z, also tested alone: the aligned test
                    tests.append((len(VIEWS) * tail_bound(z), z, TAU_ALIGNED, v, 0, 0))
    bound, z, tau, v, ph, r = min(tests, key=lambda t: (t[0], -t[1]))
    bound = min(1.0, bound)
    present = z >= tau
    d = views[v][ph]
    # Per-window decisions at the found offset (reported; `present` is the file's test).
    hop_s = HOP / RATE
    start_s = ph * (HOP // PHASES) / RATE
    windows, segments = [], []
    marked = np.zeros(d.shape[0], dtype=bool)
    for w0 in range(0, max(1, d.shape[0] - WINDOW_FRAMES // 2), WINDOW_FRAMES // 2):
        w1 = min(d.shape[0], w0 + WINDOW_FRAMES)
        # Frame t of the slice is frame t + w0 of the file: shift the offset to match.
        zw = z_score(chip_sums(fold(d[w0:w1]), (r - w0) % PERIOD), pat.sign, sync)
        s, e = start_s + w0 * hop_s, min(len(m) / RATE, start_s + w1 * hop_s)
        windows.append({"start": round(s, 3), "end": round(e, 3), "z": round(zw, 2), "marked": zw >= SEGMENT_Z})
        if present and zw >= SEGMENT_Z:
            marked[w0:w1] = True
            if segments and s <= segments[-1][1]:
                segments[-1] = (segments[-1][0], e)
            else:
                segments.append((s, e))
    # Payload bits from the marked windows only when that holds more evidence than the
    # whole file (a spliced file: the unmarked audio would only add noise).
    chips = chip_sums(fold(d), r)
    if marked.any() and not marked.all():
        only = chip_sums(fold(d * marked[:, None]), r)
        if z_score(only, pat.sign, sync) > z_score(chips, pat.sign, sync):
            chips = only
    bit_z = [z_score(chips, pat.sign, (pat.role == b).astype(np.float64)) for b in range(BITS)]
    payload = sum(1 << b for b, v in enumerate(bit_z) if v > 0) if present else None
    return Detection(
        present=bool(present),
        confidence=round(1.0 - bound, 6),
        payload=payload,
        segments=[(round(a, 3), round(b, 3)) for a, b in segments],
        z=round(z, 3),
        threshold=round(tau, 3),
        bit_z=[round(v, 3) for v in bit_z],
        windows=windows,
        offset_s=round(start_s + r * hop_s, 4),
    )
