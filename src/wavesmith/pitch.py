"""Change pitch and keep timbre, or move formants and keep pitch: ``wavesmith pitch``.

A clip is split by WORLD (:func:`wavesmith.analysis.decompose`) into an excitation (f0 and
band aperiodicity) and a spectral envelope: pitch lives in the first, timbre (the formants,
the resonances of a voice or an instrument body) in the second; Zotkin et al. (ICASSP
2003) pull the same two apart at fine and coarse spectral scales. Then

- ``semitones`` multiplies f0 by ``2 ** (semitones / 12)`` and keeps the envelope, so the
  harmonics move and the resonances that shape them stay put (no chipmunk voice);
- ``formants`` stretches the envelope and the aperiodicity along frequency by
  ``2 ** (formants / 12)`` and keeps f0: a voice sounds smaller or larger at the same note.

Frames stay where they were, so the duration is the input's to the sample. Stereo clips
share one f0 contour (tracked on the mix) and keep their channels' own envelopes. Audio
below 16 kHz is processed at 16 kHz (see :data:`MIN_WORLD_RATE`) and written at its own rate.
A clip that is not one voice (a chord, a mix: :func:`wavesmith.analysis.polyphony`) is
shifted all the same, with a one-line warning on stderr: only the pitch followed moves
cleanly. Outputs are written by :func:`wavesmith.generate.save_clips` like every wavesmith output:
watermarked, C2PA-signed, one ``generated.jsonl`` record per file naming its ``source``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wavesmith import analysis as AN
from wavesmith import audio as A
from wavesmith.errors import WavesmithError

MAX_SEMITONES = 24.0  # two octaves each way; past that WORLD's envelope sampling breaks down
MAX_FORMANTS = 12.0  # an octave of envelope stretch is already a different creature
PEAK = 0.99  # outputs louder than this are scaled down rather than clipped
# D4C's voicing test (WORLD's aperiodicity) finds no periodic band in audio below about
# 16 kHz and makes everything noise: 8 kHz speech came out unvoiced. Such audio is
# analysed and resynthesised at this rate and resampled back.
MIN_WORLD_RATE = 16000


@dataclass
class PitchSettings:
    """What ``wavesmith pitch`` does to each clip."""

    semitones: float = 0.0  # pitch change; timbre (the spectral envelope) is kept
    formants: float = 0.0  # envelope stretch along frequency, in semitones; pitch is kept
    tracker: str = "dio-yin"  # f0 tracker (analysis.TRACKERS): dio-yin is fast, harvest best on speech

    def check(self) -> None:
        """Raise :class:`WavesmithError` for settings out of range."""
        if not np.isfinite(self.semitones) or abs(self.semitones) > MAX_SEMITONES:
            raise WavesmithError(f"--semitones must be within +-{MAX_SEMITONES:g}, not {self.semitones:g}")
        if not np.isfinite(self.formants) or abs(self.formants) > MAX_FORMANTS:
            raise WavesmithError(f"--formants must be within +-{MAX_FORMANTS:g}, not {self.formants:g}")
        if self.tracker not in AN.TRACKERS:
            raise WavesmithError(f"unknown --tracker {self.tracker!r}; use one of {', '.join(AN.TRACKERS)}")


def shift(x: np.ndarray, sample_rate: int, settings: PitchSettings) -> tuple[np.ndarray, AN.F0Track]:
    """``x`` ``(C, T)`` with pitch and formants moved by ``settings``: ``(float32 (C, T), f0 of the input)``."""
    settings.check()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (channels, samples), not shape {x.shape}")
    if sample_rate < MIN_WORLD_RATE:
        y, track = shift(A.resample(x, sample_rate, MIN_WORLD_RATE), MIN_WORLD_RATE, settings)
        y = A.resample(y, MIN_WORLD_RATE, sample_rate)[:, : x.shape[-1]]
        return np.pad(y, ((0, 0), (0, x.shape[-1] - y.shape[-1]))), track
    track = AN.track_f0(x, sample_rate, settings.tracker)
    pitch_ratio = 2.0 ** (settings.semitones / 12.0)
    formant_ratio = 2.0 ** (settings.formants / 12.0)
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        feats = AN.decompose(x[c], sample_rate, track)
        feats.f0 = feats.f0 * pitch_ratio
        if settings.formants:
            feats.envelope = AN.warp_frequency(feats.envelope, formant_ratio)
            feats.aperiodicity = np.clip(AN.warp_frequency(feats.aperiodicity, formant_ratio), 0.0, 1.0)
        out[c] = AN.synthesize(feats)
    return out, track


def pitch_files(
    paths: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: PitchSettings,
    format: str = "wav",
    watermark: bool = True,
) -> list[Path]:
    """Shift every file of ``paths`` into ``out_dir`` (numbered files + ``generated.jsonl``).

    Every input is read and processed before the first file is written, so a missing or
    corrupt input, or a bad setting, leaves ``out_dir`` as it was. Each output keeps its
    input's sample rate and channels.
    """
    from wavesmith.generate import check_output_folder, open_output_folder, save_clips

    settings.check()
    if not paths:
        raise WavesmithError("give at least one audio file")
    fmt = A.check_format(format)
    out = check_output_folder(out_dir)
    results, warnings = [], []
    for path in paths:
        x, rate = A.read(path)
        if x.shape[-1] == 0:
            raise WavesmithError(f"{path} holds no audio")
        y, track = shift(x, rate, settings)
        poly = AN.polyphony(x, rate, track)
        warning = AN.polyphony_warning(path, poly)
        if not track.voiced.any() and settings.semitones:
            warning = (f"{path}: no pitched frames found{' (a chord or a mix?)' if warning else ''}, "
                       "so its pitch is unchanged")
        if warning:
            warnings.append(warning)
        gain = min(1.0, PEAK / max(A.peak(y), 1e-9))
        results.append((Path(path), y * gain, rate, gain, float(track.voiced.mean()), poly))
    open_output_folder(out, warnings)
    written = []
    for i, (path, y, rate, gain, voiced, poly) in enumerate(results):
        record = {"index": i, "model": "world-pitch", "source": str(path), "sample_rate": rate,
                  "settings": {**asdict(settings), "format": fmt, "watermark": watermark},
                  "gain": round(gain, 4), "voiced_fraction": round(voiced, 4),
                  "polyphony": round(poly, 4)}
        written += save_clips(y[None], rate, out, [record], format=fmt, watermark=watermark, model="world-pitch")
    return written
