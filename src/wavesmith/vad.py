"""Voice activity detection, and a check that a recording is speech (for ``wavesmith clone``).

Cloning a voice from a recording of music, noise or silence would "work" and make
nonsense, so every reference is measured first. Everything here is cheap, classical
signal processing on 10 ms frames at 16 kHz (no model, no new dependency):

- **Voice activity** (:func:`analyse`, ``active``): a frame is active when its level is
  above a threshold set from the recording itself: 40 dB under its loud frames (99th
  percentile), or 10 dB over its floor (10th percentile) when that is lower, and never
  under -65 dBFS. Pauses between words count as silence; the seconds of speech a clone
  needs are counted on active frames.
- **Is it speech?** (:func:`check_speech`) Speech alternates voiced sounds, whose pitch
  glides through the range of a speaking voice, with unvoiced consonants and pauses, at a
  syllable rate of a few per second, and its spectral shape keeps changing. The features
  below, measured on active frames, refuse what lacks that (the "low-energy frames" and
  "4 Hz modulation" ideas are Scheirer & Slaney's speech/music discriminator, 1997):

  * voiced share: frames WORLD's DIO finds periodic with f0 in 60-500 Hz (noise, chords
    and most percussion fall under 25%);
  * spectral flatness (geometric over arithmetic mean of the power spectrum, 100 Hz-6 kHz):
    hiss and white noise;
  * steady pitch: the share of voiced frame pairs whose pitch moves less than 3 cents in
    10 ms (a held note or a tone; speech glides);
  * pitch jumps: the median pitch change between voiced frames (glides of tens of cents in
    speech; hundreds where the tracker hops between the notes of a chord or an inharmonic sound);
  * level spread: the standard deviation of the active frames' level (a drone is flat);
  * spectral change: how much the shape of the spectrum below 4 kHz moves in 20 ms (vowels
    and consonants follow each other; sustained instruments hold theirs);
  * voiced onsets per second (syllables come at 1-6 a second; fast rhythmic loops pass that).

The thresholds are set on real speech (30 voices, 20 languages, the clips of
``shared/tools/get-speech``), espeak-ng's synthetic speech, the real-audio samples (music
loops, instruments, drums, ambience) and synthetic noise, tones and chords;
``benchmarks/speech_check.py --json`` measures how often each is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld

from wavesmith import audio as A
from wavesmith.errors import WavesmithError

RATE = 16000  # every measure is taken at this rate
HOP = 160  # 10 ms frames
WIN = 512  # 32 ms windows
F0_RANGE = (60.0, 500.0)  # Hz: speaking voices, children's included
MIN_LEVEL_DB = -65.0  # frames under this are never active
SILENT_PEAK_DB = -60.0  # a recording whose loud frames stay under this is silent

# Limits of check_speech (see the module docstring and benchmarks/speech_check.py).
MIN_VOICED_SHARE = 0.25
MAX_FLATNESS = 0.25
MAX_STEADY_SHARE = 0.4
MAX_PITCH_JUMP_CENTS = 90.0
MIN_LEVEL_SPREAD_DB = 2.5
MIN_SPECTRAL_CHANGE = 0.8
MAX_ONSETS_PER_S = 8.5


@dataclass
class SpeechReport:
    """What :func:`analyse` measured on one recording (frames of 10 ms)."""

    active: np.ndarray  # (frames,) bool: voice activity
    peak_db: float  # level of the loud frames (99th percentile), dBFS
    voiced_share: float  # share of active frames voiced in F0_RANGE
    flatness: float  # median spectral flatness of active frames
    steady_share: float  # share of voiced frame pairs with pitch moving < 3 cents
    pitch_jump: float  # median pitch change between voiced frames, cents per 10 ms
    level_spread: float  # std of active frames' level, dB
    spectral_change: float  # median change of the log band spectrum over 20 ms
    onsets_per_s: float  # voiced onsets per second of activity

    @property
    def seconds(self) -> float:
        """Seconds of voice activity."""
        return float(self.active.sum()) * HOP / RATE

    def problem(self) -> str | None:
        """Why this is not speech (a phrase for an error message), or None when it passes."""
        if self.peak_db < SILENT_PEAK_DB or not self.active.any():
            return "is silent"
        if self.flatness > MAX_FLATNESS:
            return "sounds like noise (a flat, hiss-like spectrum)"
        if self.voiced_share < MIN_VOICED_SHARE:
            return (f"has too little voice in it (only {100 * self.voiced_share:.0f}% of its sound is pitched in the "
                    "range of a speaking voice): noise, percussion or chords")
        if self.steady_share > MAX_STEADY_SHARE:
            return "holds steady pitches, like a tone or music, where speech glides"
        if self.level_spread < MIN_LEVEL_SPREAD_DB:
            return "keeps a steady level, like a drone or a tone, where speech comes in syllables"
        if self.pitch_jump > MAX_PITCH_JUMP_CENTS:
            return "has a pitch that jumps about, like chords or an inharmonic sound, where speech glides"
        if self.spectral_change < MIN_SPECTRAL_CHANGE:
            return "keeps the same spectrum, like a sustained instrument, where speech moves from sound to sound"
        if self.onsets_per_s > MAX_ONSETS_PER_S:
            return "has faster rhythmic onsets than syllables of speech, like a music loop"
        return None


def _frames(x: np.ndarray) -> np.ndarray:
    """Hann-windowed frames ``(n, WIN)`` centred every HOP samples."""
    n = len(x) // HOP + 1
    padded = np.pad(x, (WIN // 2, WIN // 2 + HOP))
    return padded[np.arange(n)[:, None] * HOP + np.arange(WIN)[None]] * np.hanning(WIN)


def activity(level_db: np.ndarray) -> np.ndarray:
    """Voice activity of frames with levels ``level_db`` (see the module docstring)."""
    if level_db.size == 0:
        return np.zeros(0, dtype=bool)
    peak, floor = np.percentile(level_db, 99), np.percentile(level_db, 10)
    threshold = max(peak - 40.0, min(floor + 10.0, peak - 15.0), MIN_LEVEL_DB)
    return level_db > threshold


def analyse(x: np.ndarray, sample_rate: int) -> SpeechReport:
    """Voice activity and speech features of mono ``x`` (``(T,)`` or ``(1, T)``) at ``sample_rate``."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    x = A.resample(np.nan_to_num(x)[None], sample_rate, RATE)[0].astype(np.float64)
    if len(x) < WIN:
        x = np.pad(x, (0, WIN - len(x)))
    power = np.abs(np.fft.rfft(_frames(x), axis=1)) ** 2
    # A full-scale sine reads about -3 dB (as a sine's power, a^2 / 2).
    level = 10 * np.log10(power.sum(1) * 2 / (WIN * (np.hanning(WIN) ** 2).sum()) + 1e-12)
    f0, t = pyworld.dio(x, RATE, f0_floor=F0_RANGE[0], f0_ceil=F0_RANGE[1], frame_period=1000 * HOP / RATE)
    f0 = pyworld.stonemask(x, f0, t, RATE)
    n = min(len(f0), len(level))
    f0, level, power = f0[:n], level[:n], power[:n]
    active = activity(level)
    voiced = (f0 > 0) & active
    count = max(1, int(active.sum()))

    band = power[:, int(100 / RATE * WIN): int(6000 / RATE * WIN)] + 1e-12
    flat = np.exp(np.log(band).mean(1)) / band.mean(1)
    pairs = voiced[1:] & voiced[:-1]
    moves = np.abs(np.diff(np.log2(np.maximum(f0, 1.0))))[pairs] * 1200
    low = np.log(power[:, 1:121] + 1e-10).reshape(n, 24, 5).mean(2)  # 24 bands below 3.75 kHz
    low -= low.mean(1, keepdims=True)  # shape, not level
    change = np.sqrt(((low[2:] - low[:-2]) ** 2).mean(1))[active[2:] & active[:-2]]
    return SpeechReport(
        active=active,
        peak_db=float(np.percentile(level, 99)),
        voiced_share=float(voiced.sum() / count),
        flatness=float(np.median(flat[active])) if active.any() else 1.0,
        steady_share=float((moves < 3).mean()) if len(moves) else 0.0,
        pitch_jump=float(np.median(moves)) if len(moves) else 0.0,
        level_spread=float(np.std(level[active])) if active.any() else 0.0,
        spectral_change=float(np.median(change)) if len(change) else 0.0,
        onsets_per_s=float((voiced[1:] & ~voiced[:-1]).sum() / (count * HOP / RATE)),
    )


def check_speech(x: np.ndarray, sample_rate: int, name: str) -> SpeechReport:
    """:func:`analyse`, and a one-line :class:`WavesmithError` naming ``name`` when ``x`` is not speech."""
    report = analyse(x, sample_rate)
    problem = report.problem()
    if problem:
        raise WavesmithError(f"{name} {problem}; a voice is cloned from recordings of speech")
    return report


def speech_only(x: np.ndarray, sample_rate: int, active: np.ndarray, margin_s: float = 0.1) -> np.ndarray:
    """The samples of ``x`` ``(T,)`` within ``margin_s`` of an active frame (pauses cut out)."""
    x = np.asarray(x).reshape(-1)
    if not active.any():
        return x[:0]
    grow = int(round(margin_s * RATE / HOP))
    near = np.convolve(active.astype(np.float32), np.ones(2 * grow + 1), "same") > 0
    centres = (np.arange(len(x)) * RATE / sample_rate / HOP).round().astype(np.int64).clip(0, len(near) - 1)
    return x[near[centres]]


def pauses(active: np.ndarray, min_s: float = 0.15) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the inactive stretches of at least ``min_s`` between active frames."""
    out, start = [], None
    idx = np.flatnonzero(active)
    if len(idx) == 0:
        return []
    for i in range(int(idx[0]), int(idx[-1]) + 1):
        if not active[i] and start is None:
            start = i
        elif active[i] and start is not None:
            if (i - start) * HOP / RATE >= min_s:
                out.append((start * HOP / RATE, i * HOP / RATE))
            start = None
    return out
