"""Analysis features of any clip: f0 with voicing, loudness, and the WORLD decomposition.

Everything here works on one mono float waveform at a rate the caller gives, on a grid of
frames centred on ``i * frame_period`` seconds (the WORLD convention), and knows nothing of
models or databases: DDSP conditioning, pitch shifting and evaluation all read it.

Four f0 trackers sit behind :func:`track_f0` (``benchmarks/pitch_timbre.py --json``, key
``trackers``, measures them on synthetic tones and soundfont notes):

- ``harvest`` (Morise 2017, WORLD): the most accurate here, on speech and in noise above all,
  and :func:`track_f0`'s default; 5-7x real time;
- ``dio`` + StoneMask refinement (Morise et al. 2009/2016, WORLD): about 30x faster, with
  more voicing and octave mistakes;
- ``dio-yin``: dio's contour with each frame's octave settled by yin and by its neighbours,
  then StoneMask: dio's octave slips gone (soundfont notes: no gross error, against 8.6% for
  dio) at about 80x real time; on speech it agrees with harvest no better than dio does;
- ``yin`` (de Cheveigne & Kawahara 2002) with parabolic interpolation of the dip (their
  step 5), so the period is not rounded to whole samples: rounding alone costs up to
  ~50 cents at 440 Hz and 16 kHz.

:func:`decompose` / :func:`synthesize` split a clip into WORLD's excitation (f0 and band
aperiodicity) and spectral envelope (CheapTrick, Morise 2015) and put them back together;
changing one while keeping the others is how :mod:`wavesmith.pitch` moves pitch or formants.

:func:`polyphony` says how far a clip is from one voice: pitch shifting and timbre transfer
follow one f0, and a chord or a mix loses everything that f0 does not explain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld

from wavesmith.errors import WavesmithError

FRAME_PERIOD_MS = 5.0  # WORLD's default hop: fine enough for vibrato and consonant onsets
F0_FLOOR = 50.0  # Hz; low male speech and a cello's C2 (65 Hz) fit
F0_CEIL = 1100.0  # Hz; a soprano's top and a flute's upper register fit
TRACKERS = ("harvest", "dio-yin", "dio", "yin")
APERIODICITY_STRIDE = 2  # D4C runs on every second frame (see _aperiodicity)
OCTAVE_WINDOW = 21  # dio-yin: frames (about 0.1 s at 5 ms) of the running median that settles stray octaves
YIN_THRESHOLD = 0.15  # de Cheveigne & Kawahara, step 4: absolute threshold on the normalised difference
SILENCE_DB = -60.0  # frames quieter than this (dBFS, unweighted) are never voiced by yin
# polyphony(): a clip whose score passes this is not one voice. Calibrated by
# benchmarks/polyphony.py: no speech clip (max 0.17) and 2% of single soundfont notes pass
# it, every synthetic chord and 92% of soundfont dyads do; a second note needs to be within
# about 5 dB of the first (its share of the energy is what is measured).
POLYPHONY_WARN = 0.22


@dataclass
class F0Track:
    """An f0 contour: ``f0[i]`` in Hz at time ``times[i]``, 0 where ``voiced[i]`` is false."""

    f0: np.ndarray  # (frames,) float64 Hz, 0 on unvoiced frames
    voiced: np.ndarray  # (frames,) bool
    times: np.ndarray  # (frames,) seconds, frame centres
    frame_period: float  # seconds between frames

    def cents(self, reference_hz: float | np.ndarray) -> np.ndarray:
        """1200 log2(f0 / reference) on every frame, NaN where unvoiced."""
        out = np.full(len(self.f0), np.nan)
        v = self.voiced
        ref = np.broadcast_to(np.asarray(reference_hz, dtype=np.float64), self.f0.shape)
        out[v] = 1200.0 * np.log2(self.f0[v] / ref[v])
        return out


@dataclass(frozen=True)
class FeatureSpec:
    """Which contours a model wants with its training batches (f0 and loudness), on what frame grid."""

    frame_rate: int = 100  # frames per second
    tracker: str = "harvest"  # f0 tracker of wavesmith.analysis

    @property
    def key(self) -> str:
        return f"f0-loudness-{self.tracker}-{self.frame_rate}hz"


@dataclass
class WorldFeatures:
    """WORLD's decomposition of a clip: excitation (``f0``, ``aperiodicity``) and ``envelope``."""

    f0: np.ndarray  # (frames,) Hz, 0 where unvoiced
    envelope: np.ndarray  # (frames, fft_size // 2 + 1) power spectral envelope
    aperiodicity: np.ndarray  # (frames, fft_size // 2 + 1) in [0, 1]
    sample_rate: int
    frame_period_ms: float
    samples: int  # length of the analysed clip, so synthesis returns exactly as many


def mono64(x: np.ndarray) -> np.ndarray:
    """A ``(T,)`` or ``(C, T)`` waveform as one contiguous float64 channel (mean of channels)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected (T,) or (C, T) audio, not shape {x.shape}")
    return np.ascontiguousarray(np.nan_to_num(x))


def track_f0(x: np.ndarray, sample_rate: int, method: str = "harvest", fmin: float = F0_FLOOR,
             fmax: float = F0_CEIL, frame_period_ms: float = FRAME_PERIOD_MS) -> F0Track:
    """f0 and voicing of ``x`` (``(T,)`` or ``(C, T)`` at ``sample_rate``) with one of :data:`TRACKERS`."""
    if method not in TRACKERS:
        raise WavesmithError(f"unknown f0 tracker {method!r}; use one of {', '.join(TRACKERS)}")
    if not 0 < fmin < fmax < sample_rate / 2:
        raise WavesmithError(f"need 0 < fmin < fmax < {sample_rate / 2:g} Hz, not {fmin:g} and {fmax:g}")
    x = mono64(x)
    if method == "yin":
        f0, times = _yin(x, sample_rate, fmin, fmax, frame_period_ms)
    elif method == "dio-yin":
        f0, times = _dio_yin(x, sample_rate, fmin, fmax, frame_period_ms)
    elif method == "harvest":
        f0, times = pyworld.harvest(x, sample_rate, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_period_ms)
    else:
        f0, times = pyworld.dio(x, sample_rate, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_period_ms)
        f0 = pyworld.stonemask(x, f0, times, sample_rate)
    f0 = np.asarray(f0, dtype=np.float64)
    return F0Track(f0, f0 > 0, np.asarray(times, dtype=np.float64), frame_period_ms / 1000.0)


def loudness(x: np.ndarray, sample_rate: int, frame_period_ms: float = FRAME_PERIOD_MS,
             window_ms: float = 64.0) -> np.ndarray:
    """A-weighted loudness in dB of each frame (centred on ``i * frame_period``), floored at -120.

    As DDSP's loudness feature (Engel et al. 2020, section B.2): the power spectrum of a Hann
    window weighted by the A-curve (IEC 61672), summed, in dB. A full-scale 1 kHz sine reads
    about -3 dB (A(1 kHz) is 0 dB).
    """
    x = mono64(x)
    hop = frame_period_ms / 1000.0 * sample_rate
    n_frames = int(len(x) / hop) + 1
    n_fft = 2 ** int(np.ceil(np.log2(window_ms / 1000.0 * sample_rate)))
    window = np.hanning(n_fft)
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + 1))
    starts = np.round(np.arange(n_frames) * hop).astype(np.int64)
    frames = padded[starts[:, None] + np.arange(n_fft)[None]] * window
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    weight = 10 ** (a_weighting_db(freqs) / 10)
    # Parseval with the window's energy: a sine of amplitude a gives a^2 / 2.
    total = (power * weight).sum(-1) * 2 / (n_fft * (window**2).sum())
    return 10 * np.log10(np.maximum(total, 1e-12))


def contours(x: np.ndarray, sample_rate: int, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """f0 and loudness of a clip ``(C, T)`` on ``spec``'s grid: ``T // hop + 1`` frames each, float32."""
    ms = 1000.0 / spec.frame_rate
    n = x.shape[-1] // (sample_rate // spec.frame_rate) + 1
    f0 = track_f0(x, sample_rate, spec.tracker, frame_period_ms=ms).f0
    ld = loudness(x, sample_rate, frame_period_ms=ms)
    f0 = np.pad(f0, (0, max(0, n - len(f0))))[:n]
    ld = np.pad(ld, (0, max(0, n - len(ld))), constant_values=-120.0)[:n]
    return f0.astype(np.float32), ld.astype(np.float32)


def a_weighting_db(freqs: np.ndarray) -> np.ndarray:
    """The A-weighting curve in dB at ``freqs`` Hz (IEC 61672-1, 0 dB at 1 kHz), -inf-safe at 0 Hz."""
    f2 = np.asarray(freqs, dtype=np.float64) ** 2
    ra = (12194.0**2 * f2**2) / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20 * np.log10(np.maximum(ra, 1e-12)) + 2.0


def decompose(x: np.ndarray, sample_rate: int, track: F0Track | None = None, method: str = "harvest",
              fmin: float = F0_FLOOR, fmax: float = F0_CEIL) -> WorldFeatures:
    """WORLD analysis of ``x``: f0, CheapTrick envelope and D4C aperiodicity.

    The f0 is ``track`` when given (one contour shared by the channels of a stereo clip),
    else :func:`track_f0` with ``method``; frames follow the track's frame period.
    """
    x = mono64(x)
    if track is None:
        track = track_f0(x, sample_rate, method, fmin, fmax)
    frame_period_ms = track.frame_period * 1000.0
    f0, times = track.f0, track.times
    # CheapTrick's window follows f0_floor: 3 periods of the lowest f0 set the FFT size.
    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate, fmin)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate, fft_size=fft_size)
    ap = _aperiodicity(x, f0, times, sample_rate, fft_size)
    return WorldFeatures(f0, sp, ap, sample_rate, frame_period_ms, len(x))


def _aperiodicity(x: np.ndarray, f0: np.ndarray, times: np.ndarray, sample_rate: int, fft_size: int) -> np.ndarray:
    """D4C band aperiodicity on every :data:`APERIODICITY_STRIDE`-th frame (and the last), linear in between.

    D4C is the costliest stage of a shift after the tracker (42x real time on speech at every
    5 ms frame), and aperiodicity changes slowly: benchmarks/pitch_timbre.py measures the
    shift's timbre and speaker similarity with this in place.
    """
    picked = np.arange(0, len(f0), APERIODICITY_STRIDE)
    if len(f0) and picked[-1] != len(f0) - 1:
        picked = np.append(picked, len(f0) - 1)
    if len(picked) == len(f0):
        return pyworld.d4c(x, f0, times, sample_rate, fft_size=fft_size)
    sparse = pyworld.d4c(x, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), sample_rate,
                         fft_size=fft_size)
    lower = np.clip(np.searchsorted(picked, np.arange(len(f0)), side="right") - 1, 0, len(picked) - 2)
    w = ((np.arange(len(f0)) - picked[lower]) / (picked[lower + 1] - picked[lower]))[:, None]
    return np.ascontiguousarray(sparse[lower] * (1 - w) + sparse[lower + 1] * w)


def synthesize(features: WorldFeatures) -> np.ndarray:
    """The waveform of ``features``, float32 ``(samples,)`` as long as the analysed clip."""
    f = features
    y = pyworld.synthesize(np.ascontiguousarray(f.f0), np.ascontiguousarray(f.envelope),
                           np.ascontiguousarray(f.aperiodicity), f.sample_rate, f.frame_period_ms)
    # WORLD renders whole frames: trim (or pad) to the input's length so duration is kept exactly.
    y = y[: f.samples] if len(y) >= f.samples else np.pad(y, (0, f.samples - len(y)))
    return y.astype(np.float32)


def warp_frequency(spectra: np.ndarray, ratio: float) -> np.ndarray:
    """Spectra ``(frames, bins)`` stretched along frequency by ``ratio``: out(f) = in(f / ratio).

    Interpolated linearly between bins; above the input's top (``ratio < 1``) the last bin is held.
    """
    bins = spectra.shape[-1]
    src = np.arange(bins) / ratio
    lo = np.clip(np.floor(src).astype(np.int64), 0, bins - 1)
    hi = np.clip(lo + 1, 0, bins - 1)
    frac = np.clip(src - lo, 0.0, 1.0)[None]
    return spectra[:, lo] * (1 - frac) + spectra[:, hi] * frac


def _yin(x: np.ndarray, sample_rate: int, fmin: float, fmax: float,
         frame_period_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 per frame with parabolic interpolation of the chosen dip (steps 1-5 of the paper)."""
    hop = frame_period_ms / 1000.0 * sample_rate
    n_frames = int(len(x) / hop) + 1
    times = np.arange(n_frames) * hop / sample_rate
    tau_min = max(2, int(sample_rate / fmax))
    tau_max = int(np.ceil(sample_rate / fmin)) + 1
    win = tau_max  # integration window: one period of the lowest f0 (eq. 6)
    length = win + tau_max + 1
    padded = np.pad(x, (length, length))
    starts = np.round(np.arange(n_frames) * hop).astype(np.int64) + length - length // 2
    f0 = np.zeros(n_frames)
    block = 2048  # frames per batch: bounds memory on long clips
    n = 1 << int(np.ceil(np.log2(length + win)))  # enough for the linear correlation up to tau_max
    for b0 in range(0, n_frames, block):
        idx = starts[b0:b0 + block]
        fr = padded[idx[:, None] + np.arange(length)[None]]
        fr = fr - fr.mean(-1, keepdims=True)
        # d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = e0 + e_tau - 2 r(tau)  (eq. 7)
        r = np.fft.irfft(np.fft.rfft(fr, n) * np.conj(np.fft.rfft(fr[:, :win], n)), n)[:, : tau_max + 1]
        c = np.pad(np.cumsum(fr**2, -1), ((0, 0), (1, 0)))
        e_tau = c[:, win: win + tau_max + 1] - c[:, : tau_max + 1]
        d = np.maximum(c[:, win: win + 1] + e_tau - 2 * r, 0.0)
        taus = np.arange(1, tau_max + 1)
        cmnd = np.ones_like(d)
        cmnd[:, 1:] = d[:, 1:] * taus / np.maximum(np.cumsum(d[:, 1:], -1), 1e-12)  # eq. 8
        level = 10 * np.log10(np.maximum(c[:, win] / win, 1e-12))
        for row in range(len(fr)):
            if level[row] < SILENCE_DB:
                continue
            under = np.flatnonzero(cmnd[row, tau_min:tau_max] < YIN_THRESHOLD)
            if len(under) == 0:
                continue
            t = under[0] + tau_min
            while t + 1 < tau_max and cmnd[row, t + 1] < cmnd[row, t]:  # walk down to the dip's bottom
                t += 1
            # Interpolate on d, not the normalised curve: its running mean tilts the dip and biases it.
            a, b, cc = d[row, t - 1], d[row, t], d[row, t + 1]
            denom = a - 2 * b + cc
            shift = 0.5 * (a - cc) / denom if denom > 0 else 0.0
            f0[b0 + row] = sample_rate / (t + float(np.clip(shift, -0.5, 0.5)))
    return f0, times


def _dio_yin(x: np.ndarray, sample_rate: int, fmin: float, fmax: float,
             frame_period_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """dio's voicing and contour, each voiced frame moved by whole octaves to agree with yin (or
    replaced by yin's value when it is no octave of it), then with a running median of its
    neighbours, then refined by StoneMask.

    dio finds voiced frames well but slips an octave now and then (a violin G3 read as G4 for
    its whole length); yin rarely slips but misses voiced frames. Where both are voiced, yin
    settles the octave (and replaces a dio value that is no octave of its own); where only dio
    is, the neighbours do. The result is refined on the waveform by StoneMask, as the ``dio``
    tracker is.
    """
    f0, times = pyworld.dio(x, sample_rate, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_period_ms)
    f0 = np.asarray(f0, dtype=np.float64)
    y = _yin(x, sample_rate, fmin, fmax, frame_period_ms)[0]
    y = np.pad(y, (0, max(0, len(f0) - len(y))))[: len(f0)]
    both = (f0 > 0) & (y > 0)
    moved = _fold_octaves(f0[both], y[both])
    # Where dio's value is no octave of yin's (a stray subharmonic), yin's is taken.
    f0[both] = np.where(np.abs(np.log2(moved / y[both])) < 1 / 12, moved, y[both])
    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) > 2:
        # Median of log f0 over a window of frames, gaps bridged by interpolation between voiced frames.
        log_f0 = np.interp(np.arange(len(f0)), voiced, np.log2(f0[voiced]))
        h = OCTAVE_WINDOW // 2
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(log_f0, (h, h), mode="edge"), OCTAVE_WINDOW)
        f0[voiced] = _fold_octaves(f0[voiced], 2.0 ** np.median(windows[voiced], -1))
    return pyworld.stonemask(x, np.ascontiguousarray(f0), times, sample_rate), times


def _fold_octaves(f0: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``f0`` moved by the whole number of octaves that brings it nearest ``reference``."""
    return f0 * 2.0 ** np.round(np.log2(reference / f0))


def polyphony(x: np.ndarray, sample_rate: int, track: F0Track, stride: int = 4) -> float:
    """How much of a clip one f0 leaves unexplained: 0 for one voice, near 1 for a chord.

    On every ``stride``-th frame of ``track`` that sounds (within 50 dB of the loudest), a
    100 ms Hann spectrum (40 Hz .. 5 kHz) is searched for tonal peaks: local maxima 10 dB
    above the mean log level of the 150 Hz around them. The energy of those peaks (+-2 bins)
    that lies off the harmonics of the frame's f0, as a share of the frame's energy, is
    averaged over the frames. An unvoiced frame borrows the f0 of the nearest voiced one
    within 100 ms (trackers let go of a note before its window does); further out, its
    strongest peak stands for the f0. Noise has no such peaks, one
    voice's peaks are its harmonics; a second note's partials, or a mix's, are left over.
    An octave (every partial of the upper note a harmonic of the lower) reads as one voice.
    """
    x = mono64(x)
    n_fft = 2 ** int(np.ceil(np.log2(0.1 * sample_rate)))
    idx = np.arange(0, len(track.f0), stride)
    if len(x) == 0 or len(idx) == 0:
        return 0.0
    f0 = _nearest_voiced(track, max_seconds=0.1)[idx]
    centres = np.round(track.times[idx] * sample_rate).astype(np.int64)
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + 1))
    centres = np.clip(centres, 0, len(padded) - n_fft)
    power = np.abs(np.fft.rfft(padded[centres[:, None] + np.arange(n_fft)[None]] * np.hanning(n_fft))) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= 40.0) & (freqs < min(5000.0, 0.45 * sample_rate))
    power, freqs = power[:, band], freqs[band]
    level = 10 * np.log10(power + 1e-20)
    bin_hz = sample_rate / n_fft
    floor = _moving(level, max(3, int(round(150.0 / bin_hz))) // 2 * 2 + 1, np.mean)
    peaks = (level == _moving(level, 5, np.max)) & (level > floor + 10.0)
    tonal = _moving(peaks, 5, np.max)
    # A frame with no f0 near it is read as the harmonics of its strongest peak: a pure tone the
    # tracker does not voice (harvest voices no bare sine) is still one voice.
    f0 = np.where(f0 > 0, f0, freqs[np.argmax(np.where(tonal, power, 0.0), axis=-1)])
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic_no = freqs[None] / np.where(f0 > 0, f0, np.inf)[:, None]
    off_by_hz = np.abs(harmonic_no - np.round(harmonic_no)) * f0[:, None]
    # A partial is the f0's when within the window's main lobe, or a tenth of f0 (vibrato smears).
    explained = (f0[:, None] > 0) & (np.round(harmonic_no) >= 1) & (
        off_by_hz <= np.maximum(2.5 * bin_hz, 0.1 * f0)[:, None])
    total = power.sum(-1)
    sounding = total > total.max() * 1e-5
    if not sounding.any():
        return 0.0
    left = (power * (tonal & ~explained)).sum(-1) / np.maximum(total, 1e-20)
    return float(left[sounding].mean())


def polyphony_warning(path: object, score: float) -> str | None:
    """The one-line warning for a clip of :func:`polyphony` ``score``, or None when it reads as one voice."""
    if score <= POLYPHONY_WARN:
        return None
    return (f"{path} does not sound like one pitched voice (a chord, a mix, a bell?; polyphony {score:.2f} > "
            f"{POLYPHONY_WARN:g}): one pitch is followed, so the result may be poor")


def _nearest_voiced(track: F0Track, max_seconds: float) -> np.ndarray:
    """``track.f0`` with each unvoiced frame given the f0 of the nearest voiced frame within ``max_seconds``."""
    voiced = np.flatnonzero(track.voiced)
    if len(voiced) == 0:
        return track.f0
    pos = np.clip(np.searchsorted(voiced, np.arange(len(track.f0))), 1, max(1, len(voiced) - 1))
    before, after = voiced[pos - 1], voiced[np.minimum(pos, len(voiced) - 1)]
    t = track.times
    nearest = np.where(np.abs(t - t[before]) <= np.abs(t[after] - t), before, after)
    near = np.abs(t[nearest] - t) <= max_seconds
    return np.where(track.voiced, track.f0, np.where(near, track.f0[nearest], 0.0))


def _moving(a: np.ndarray, width: int, reduce) -> np.ndarray:
    """``reduce`` (np.mean or np.max) over a centred window of odd ``width`` along the last axis, edges held."""
    h = width // 2
    padded = np.pad(a, ((0, 0), (h, h)), mode="edge")
    if reduce is np.mean:
        c = np.cumsum(np.pad(padded.astype(np.float64), ((0, 0), (1, 0))), axis=-1)
        return (c[:, width:] - c[:, :-width]) / width
    return np.stack([padded[:, i: i + a.shape[1]] for i in range(width)]).max(0)
