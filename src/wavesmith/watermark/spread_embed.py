"""Embedding the spread-spectrum watermark (the design is in :mod:`wavesmith.watermark.spread`).

The mark is a keyed +-1 pattern multiplying the STFT magnitudes of the band, shaped for
the most detection per unit of energy (:func:`_shape`), resynthesised and added to the
waveform at ``TARGET_SNR_DB`` below it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.watermark.spread import (
    BAND_HZ,
    BITS,
    DEFAULT_KEY,
    DESIGN_NOISE,
    FRAME_MASK,
    HOP,
    K0,
    K1,
    MAX_CHANGE,
    MIN_MARK_DBFS,
    MIN_SECONDS,
    N_FFT,
    RATE,
    SCALE_PASSES,
    SILENT_CELL,
    SILENT_DBFS,
    TARGET_SNR_DB,
    WINDOW,
    chips,
    mix16,
    one_thread,
    stft,
)


@one_thread
def embed(audio: np.ndarray, sample_rate: int, payload: int, key: str = DEFAULT_KEY) -> np.ndarray:
    """Return ``audio`` (C, T) float32 with the watermark carrying ``payload`` (0..65535) added.

    The result has the input's shape (a 1-D input gives a 1-D result) and is not clipped.
    The mark is computed on the channel mix and added to every channel. Raises
    :class:`WavesmithError` for clips shorter than ``MIN_SECONDS`` or silent clips.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if not 0 <= int(payload) < 2**BITS:
        raise WavesmithError(f"payload must be an integer in 0..{2**BITS - 1}, got {payload}")
    seconds = x.shape[-1] / sample_rate if sample_rate > 0 else 0.0
    if seconds < MIN_SECONDS:
        raise WavesmithError(
            f"clip too short to carry the watermark: {seconds:.2f} s (MIN_SECONDS = {MIN_SECONDS} s)"
        )
    p_sig = float(np.mean(np.square(x, dtype=np.float64)))
    silent = (
        f"cannot watermark a silent clip (nothing in {BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz to carry the mark)"
    )
    if p_sig <= 10 ** (SILENT_DBFS / 10):
        raise WavesmithError(silent)
    m = mix16(x, sample_rate)
    spec = stft(m)
    band = spec[:, K0:K1]
    signs = torch.from_numpy(chips(key, int(payload), spec.shape[0]).astype(np.float32))
    rel = signs * _shape(spec.abs().double().square())
    n = x.shape[-1]

    def mark_for(scale: float) -> np.ndarray:
        delta = torch.zeros_like(spec)
        delta[:, K0:K1] = band * (scale * rel).clamp(-MAX_CHANGE, MAX_CHANGE)
        w = torch.istft(delta.T, N_FFT, HOP, window=WINDOW, center=True, length=len(m)).numpy()
        w = A.resample(w[None].astype(np.float32), RATE, sample_rate)[0]
        return np.pad(w, (0, max(0, n - len(w))))[:n]

    # Scale so the mark's energy, at the file's own rate, sits TARGET_SNR_DB below the
    # signal's, but not below MIN_MARK_DBFS (a near-silent clip's mark would otherwise vanish
    # under 16-bit quantisation). The cells at MAX_CHANGE do not grow with the scale, so it
    # takes a few passes; where the band holds too little to reach the target within the
    # cap, the mark stays quieter (check_file in wavesmith.watermark says when it can no
    # longer be found) rather than turn into noise that masks nothing.
    target = max(p_sig * 10 ** (-TARGET_SNR_DB / 10), 10 ** (MIN_MARK_DBFS / 10))
    scale, mark = 1.0, None
    for _ in range(SCALE_PASSES):
        mark = mark_for(scale)
        p_mark = float(np.mean(np.square(mark, dtype=np.float64)))
        if p_mark <= 1e-18:
            raise WavesmithError(silent)
        scale *= math.sqrt(target / p_mark)
    mark *= min(1.0, math.sqrt(target / p_mark))
    y = (x + mark[None]).astype(np.float32)
    return y[0] if np.ndim(audio) == 1 else y


def frame_snr_db(original: np.ndarray, marked: np.ndarray, sample_rate: int, frame_s: float = 0.032) -> np.ndarray:
    """SNR (dB) of the mark ``marked - original`` in each ``frame_s`` frame of ``original``
    louder than -70 dBFS (quieter ones may hold the ``MIN_MARK_DBFS`` floor): how far below
    the signal the mark sits in quiet passages, which the clip-wide SNR does not show."""
    x = np.atleast_2d(np.asarray(original, dtype=np.float64))
    d = np.atleast_2d(np.asarray(marked, dtype=np.float64)) - x
    n = max(1, int(frame_s * sample_rate))
    f = x.shape[-1] // n
    if f == 0:
        return np.zeros(0)
    sig = np.square(x[:, : f * n]).reshape(-1, f, n).mean(axis=(0, 2))
    mark = np.square(d[:, : f * n]).reshape(-1, f, n).mean(axis=(0, 2))
    keep = sig > 1e-7
    return 10 * np.log10(sig[keep] / np.maximum(mark[keep], 1e-30))


def _shape(power: torch.Tensor) -> torch.Tensor:
    """Relative magnitude change per cell of the band, up to a common scale, from the clip's
    cell powers ``|X|^2`` ``(frames, bins)`` (the whole spectrum: it sets the reference levels).

    Per cell, ``noise / (|X|^2 + noise)`` with ``noise`` = ``DESIGN_NOISE`` times the mean
    cell power: the allocation that gets the most detection out of a fixed mark energy when
    the audio will meet noise of that power. A relative change ``a`` moves a cell's log
    magnitude by about ``a |X|^2 / (|X|^2 + noise)`` after the noise is added, and costs
    ``a^2 |X|^2`` of energy; maximising the sum of the first under a budget on the sum of
    the second (a Lagrange multiplier) gives ``a ~ 1 / (|X|^2 + noise)``. Loud cells get a
    small relative change (they cost much energy and gain nothing more), cells far below
    the noise get little energy (the noise would bury them), and the energy goes where
    the cells are near the noise level: quiet partials, valleys and decay tails.

    Per frame, the change is weighted by ``E / (E + FRAME_MASK * mean E)``, ``E`` the
    frame's energy (the quietest of the frame and its two neighbours, which its synthesis
    window reaches, so no mark leaks ahead of an onset): quiet frames, a pause or a decay
    tail, get less than the allocation alone would give them. Cells ``SILENT_CELL`` below
    the loudest (digital silence, rounding noise) are left alone.
    """
    noise = DESIGN_NOISE * float(power.mean())
    frame = power.sum(dim=1)
    quietest = -torch.nn.functional.max_pool1d(-frame[None, None], 3, 1, 1)[0, 0]
    held = quietest / (quietest + FRAME_MASK * frame.mean()).clamp_min(1e-30)
    p = power[:, K0:K1]
    rel = (noise / (p + noise) if noise > 0 else torch.zeros_like(p)) * held[:, None]
    return torch.where(p <= SILENT_CELL**2 * power.max(), torch.zeros_like(rel), rel).float()


