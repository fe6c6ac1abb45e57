"""Known damage, to check that the metrics rank it, and synthetic labelled clips (used by the evaluate tests
and benchmarks/evaluate_ordering.py; not part of the package).

Each damage has a strength; a metric that works gets worse as the strength grows.
"""

from __future__ import annotations

import numpy as np


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the clip's own power."""
    p = float(np.mean(np.square(x, dtype=np.float64))) or 1e-8
    return (x + rng.standard_normal(x.shape) * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)


def lowpass(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Brick-wall low-pass in the frequency domain (zero every bin above ``cutoff_hz``)."""
    n = x.shape[-1]
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(n, 1 / sample_rate) > cutoff_hz] = 0
    return np.fft.irfft(spec, n=n, axis=-1).astype(np.float32)


def hard_clip(x: np.ndarray, keep: float) -> np.ndarray:
    """Clip at ``keep`` times the clip's peak, then restore the peak level (loudness rises, shape flattens)."""
    peak = float(np.abs(x).max()) or 1.0
    y = np.clip(x, -keep * peak, keep * peak) / keep
    return np.clip(y, -1, 1).astype(np.float32)


def damage(clips: list[np.ndarray], kind: str, strength: float, sample_rate: int, seed: int = 0) -> list[np.ndarray]:
    """Apply one damage to every clip: ``noise`` (SNR dB), ``lowpass`` (cut-off Hz) or ``clip`` (kept share of peak)."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return [add_noise(x, strength, rng) for x in clips]
    if kind == "lowpass":
        return [lowpass(x, sample_rate, strength) for x in clips]
    if kind == "clip":
        return [hard_clip(x, strength) for x in clips]
    raise ValueError(f"unknown damage {kind!r}")


LABELS = ("chirp", "noise_burst", "tone_high", "tone_low")


def synthetic_clips(n: int, sample_rate: int = 16000, seed: int = 0, seconds: float = 1.0
                    ) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` labelled clips of four classes (decaying low / high harmonic tones, chirps, noise bursts).

    Every clip is different (random pitch, decay, level, start), so nearest-neighbour
    distances between real clips are never zero, as with real recordings.
    """
    rng = np.random.default_rng(seed)
    length = int(seconds * sample_rate)
    t = np.arange(length) / sample_rate
    clips, labels = [], []
    for i in range(n):
        k = i % len(LABELS)
        start = rng.uniform(0, 0.1)
        tt = np.clip(t - start, 0, None)
        env = np.exp(-tt * rng.uniform(3, 8)) * (t >= start)
        if LABELS[k] == "tone_low":
            f0 = rng.uniform(110, 220)
            y = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in (1, 2, 3))
        elif LABELS[k] == "tone_high":
            f0 = rng.uniform(500, 900)
            y = np.sin(2 * np.pi * f0 * tt) + 0.3 * np.sin(2 * np.pi * 2 * f0 * tt)
        elif LABELS[k] == "chirp":
            f_a, f_b = rng.uniform(300, 600), rng.uniform(1500, 3000)
            y = np.sin(2 * np.pi * (f_a * tt + (f_b - f_a) * tt**2 / (2 * seconds)))
        else:
            y = rng.standard_normal(length)
            env = np.exp(-tt * rng.uniform(10, 20)) * (t >= start)
        y = y * env
        y = y / (np.abs(y).max() + 1e-9) * 10 ** (rng.uniform(-12, -3) / 20)
        clips.append(y[None].astype(np.float32))
        labels.append(k)
    return clips, np.asarray(labels)
