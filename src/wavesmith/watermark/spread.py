"""A keyed spread-spectrum watermark in the STFT magnitude of the waveform.

How it works (all analysis at ``RATE`` = 16 kHz, whatever the file's own rate):

* **Embedding.** The channel mix is resampled to 16 kHz and cut into STFT frames
  (``N_FFT`` = 512, ``HOP`` = 256). Every cell (frame ``t``, bin ``k``) of the band
  ``BAND_HZ`` (60-3800 Hz: it survives a 4 kHz low-pass, 8 kHz resampling and speech
  codecs, and reaches down to kick drums and bass) gets a keyed sign ``p(t, k) = +-1`` from
  a pattern that repeats every ``PERIOD`` frames. ``SYNC_FRACTION`` (70%) of the cells of
  a period carry a fixed *synchronisation* pattern, the rest carry the 16 payload bits
  (each bit on ~1/53 of the cells, sign = bit). Each cell is scaled by ``1 + a * p``
  (a real factor: the phase is kept, or flipped where ``a > 1``): a multiplicative mark, so
  it follows the signal's own spectrum and is invariant to gain. The strength ``a`` is
  shaped (``_shape``) for the most detection per unit of mark energy against noise
  ``DESIGN_NOISE`` (17 dB) below the clip's mean cell power: ``a ~ 1 / (|X|^2 + noise)``,
  capped at ``MAX_CHANGE``, so the energy goes to cells near that noise level (quiet
  partials, spectral valleys, decay tails) rather than to the loudest cells, where it
  would buy little, or to cells the noise would bury. Quiet frames (a pause, a decay
  tail) are held back by ``FRAME_MASK``: the allocation alone would put the mark within a
  few dB of the signal there, for all that the clip-wide SNR is 30 dB (``frame_snr_db``
  measures it). The change is resynthesised (ISTFT), resampled to the file's rate, scaled
  so its energy there is ``TARGET_SNR_DB`` below the original's (but not below ``MIN_MARK_DBFS``, so near-silent
  clips keep a mark that 16-bit output does not round away; and never past ``MAX_CHANGE``,
  so where the band holds too little the mark stays quieter), and added to every channel
  (so any down-mix keeps it).
* **Detection.** The received mix is resampled to 16 kHz and analysed at 4 sub-hop phases;
  the whitened log magnitude ``d(t, k)`` (log |Y| minus its mean over +-2 bins and over
  +-``TIME_WHITEN`` frames, which removes formants and held notes) is folded modulo
  ``PERIOD`` frames and correlated with the sync pattern at every cyclic frame offset.
  That search finds crops and shifts of any length down to ``MIN_SECONDS``. It reads ``d``
  in two ``VIEWS``: as it is, and with each cell weighted by its estimated share of signal
  over the noise floor, ``max(0, 1 - floor / P)``, which finds marks under added noise
  (cells the noise covers carry no mark but would add their variance). Each view is
  tested on its own; neither is best everywhere (the weighting loses some of a clean
  crop's quiet cells).
* **False positives.** For unmarked audio the key's chip signs are independent of ``d``
  and of the weights (both come from the received audio alone), so the normalised
  correlation ``z = sum(p d) / sqrt(sum(d^2))`` is a Rademacher sum with unit variance,
  whatever the audio. Pinelis (1994) bounds its tail by ``4.46 Q(tau)`` (``Q`` the
  standard normal tail; Hoeffding's ``exp(-tau^2/2)`` also holds). The tests share the
  budget ``DESIGN_FPR`` = 1e-4 per file: in each of the 2 views, the aligned offset
  (``TAU_ALIGNED``, 4.39: 2 x 4.46 Q(4.39) = 5e-5) and the maximum over all ``PHASES *
  PERIOD`` = 64 offsets (``TAU_SEARCH``, 5.22: union bound 128 x 4.46 Q(5.22) = 5e-5).
* **Limits** (``benchmarks/watermark_robustness.py`` measures them): no search over time
  scale, so a 5% speed change removes the mark; mixing with other audio at 0 dB is found
  reliably only in clips of several seconds; short clips whose energy lies outside the
  band (a sub-bass boom, a cymbal) hold too little mark to be found under 20 dB of white
  noise, and a crop holding only a decay tail 25 dB or more below the clip's mean carries
  little of it; clips quieter than about -60 dBFS get the ``MIN_MARK_DBFS`` floor, so
  their SNR is below ``TARGET_SNR_DB``; the payload of a 1 s clip has a few percent of its
  bits wrong. A mark made before the band moved to 60-3800 Hz is not found by this one.

This module holds the mark's constants and what embedding and detection share (the keyed
pattern, the analysis STFT); :mod:`~wavesmith.watermark.spread_embed` embeds the mark and
:mod:`~wavesmith.watermark.spread_detect` finds it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith.errors import WavesmithError

RATE = 16000  # analysis rate of the mark (Hz)
N_FFT = 512  # STFT size at RATE (32 ms)
HOP = 256  # STFT hop at RATE (16 ms)
PERIOD = 16  # frames per repetition of the pattern (0.256 s)
PHASES = 4  # sub-hop phases searched by the detector (HOP / PHASES = 4 ms steps)
BAND_HZ = (60.0, 3800.0)  # band carrying the mark
BITS = 16  # payload bits
SYNC_FRACTION = 0.7  # share of cells carrying the synchronisation pattern
TARGET_SNR_DB = 30.2  # mark energy below the signal's, measured at the file's rate
MIN_SECONDS = 1.0  # shortest clip that carries the mark
DESIGN_FPR = 1e-4  # false-positive rate per file the threshold is designed for
SEGMENT_Z = 3.0  # per-window statistic above which a window is reported as marked
WINDOW_FRAMES = 64  # frames per window of the per-window decisions (~1 s)
# Cap of a cell's relative magnitude change. Past 1 a cell's phase flips, which the
# log-magnitude detector reads as a deep notch. Under 20 dB of white noise, 1.5 found 95.8%
# of the marks in 240 real clips against 93.3% for 0.9, at the same mark energy; on the
# benchmark's 379 clips 1.5, 2.0 and 3.0 differ by 1-3 clips, within its noise.
MAX_CHANGE = 1.5
SCALE_PASSES = 4  # passes of the search for the scale that meets the target energy
DESIGN_NOISE = 0.02  # shaping: the noise the mark is optimised against, relative to the mean cell power
SILENT_CELL = 1e-6  # cells this far (-120 dB) below the clip's loudest, in any band, are left alone
SILENT_DBFS = -100.0  # a clip quieter than this (under 16-bit's last bit) is silent: nothing to mark
MIN_MARK_DBFS = -90.0  # absolute floor of the mark's level, so 16-bit output keeps it
FRAME_MASK = 0.003  # a frame this far (25 dB) below the clip's mean energy gets half the change
TIME_WHITEN = 3  # detector: remove the mean over +-frames of the log magnitude
# The detector's readings of the band, each tested on its own (they share the false-positive
# budget): the whitened log magnitudes as they are, and weighted by each cell's share of
# signal over a noise floor, which finds marks under added noise (under 20 dB of white
# noise, z about doubles on the clips the plain reading missed) but loses some of a clean
# crop's quiet cells.
VIEWS = ("plain", "denoised")
NOISE_PERCENTILE = 20  # detector: the noise floor, this percentile of the smoothed cell powers
DEFAULT_KEY = "wavesmith-watermark-v1"  # public, so anyone can check; pass `key` for a private mark

# Cells per chip (frames, bins) sharing one sign. One cell per chip measured best: larger
# chips survive resynthesis better but lose more to the detector's whitening.
CHIP = (1, 1)
# The band as STFT bins K0..K1-1.
K0 = int(math.ceil(BAND_HZ[0] * N_FFT / RATE))
assert K0 >= 2, "the detector's spectral whitening reads 2 bins below the band"
K1 = K0 + (int(math.floor(BAND_HZ[1] * N_FFT / RATE)) + 1 - K0) // CHIP[1] * CHIP[1]
WINDOW = torch.hann_window(N_FFT, dtype=torch.float32)


def one_thread(fn):
    """Run ``fn`` with one torch thread: its FFTs are small, and on a busy machine the
    intra-op thread pool's waiting made marking 20x slower than one thread (measured)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return wrapper


@dataclass(frozen=True)
class Pattern:
    """A key's chip signs and the role of each cell of one period."""

    sign: np.ndarray  # (PERIOD / CHIP[0], K / CHIP[1]) +-1 chip signs
    role: np.ndarray  # same shape: -1 = sync, 0..BITS-1 = payload bit


_PATTERNS: dict[str, Pattern] = {}


def pattern(key: str) -> Pattern:
    """The keyed chip signs and cell roles (deterministic in the key)."""
    if key not in _PATTERNS:
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        shape = (PERIOD // CHIP[0], (K1 - K0) // CHIP[1])
        sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
        n = shape[0] * shape[1]
        n_sync = int(round(n * SYNC_FRACTION))
        roles = np.concatenate([np.full(n_sync, -1), np.arange(n - n_sync) % BITS])
        _PATTERNS[key] = Pattern(sign, rng.permutation(roles).reshape(shape))
    return _PATTERNS[key]


def mix16(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The channel mix of ``audio`` (C, T) at ``RATE``, float32 (T',): what the mark lives in."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise WavesmithError(f"audio must be (channels, samples), got shape {x.shape}")
    return A.resample(x.mean(axis=0, keepdims=True), sample_rate, RATE)[0].astype(np.float32)


def stft(x: np.ndarray) -> torch.Tensor:
    """Complex STFT ``(frames, bins)``; frame ``t`` is centred on sample ``t * HOP``."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.numel() <= N_FFT // 2:
        t = torch.nn.functional.pad(t, (0, N_FFT // 2 + 1 - t.numel()))
    return torch.stft(t, N_FFT, HOP, window=WINDOW, center=True, return_complex=True).T


def chips(key: str, payload: int, frames: int, start: int = 0) -> np.ndarray:
    """Signs ``(frames, K)`` of the mark: sync chips, and payload chips times the bit's sign."""
    pat = pattern(key)
    bits = np.array([1.0 if (payload >> b) & 1 else -1.0 for b in range(BITS)])
    signs = pat.sign * np.where(pat.role < 0, 1.0, bits[np.maximum(pat.role, 0)])
    cells = np.repeat(np.repeat(signs, CHIP[0], axis=0), CHIP[1], axis=1)
    return cells[(np.arange(frames) + start) % PERIOD]
