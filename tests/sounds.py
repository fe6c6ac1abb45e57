"""Test sounds, generated, never downloaded: tones, a vowel-like voice, a corpus of every format and rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

# (extension, libsndfile format, subtype)
FORMATS = [
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_16"),
    ("ogg", "OGG", "VORBIS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
    ("aiff", "AIFF", "PCM_16"),
]
RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]


def tone(freq: float, rate: int, seconds: float, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """``(frames, channels)`` sine (soundfile's layout; ``.T`` for wavesmith's), a different phase
    per channel so the mix is not trivial."""
    t = np.arange(int(round(rate * seconds))) / rate
    cols = [amp * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, fmt: str | None = None) -> Path:
    ext = fmt or path.suffix.lstrip(".")
    _, major, subtype = next(f for f in FORMATS if f[0] == ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, format=major, subtype=subtype)
    return path


def make_corpus(root: Path, n: int = 20, seconds: float = 0.5, labels=("kick", "snare")) -> list[Path]:
    """``n`` distinct tones in every format, rate and channel count, as ``root/<label>/<i>.<ext>``."""
    paths = []
    for i in range(n):
        ext = FORMATS[i % len(FORMATS)][0]
        rate = RATES[i % len(RATES)]
        if ext == "mp3" and rate > 48000:
            rate = 44100  # MPEG audio stops at 48 kHz
        channels = 1 + (i // 3) % 2
        data = tone(200.0 + 37.0 * i, rate, seconds, channels)
        paths.append(write(root / labels[i % len(labels)] / f"clip{i:03d}.{ext}", data, rate))
    return paths


def voiced(seconds: float = 0.75, rate: int = 22050) -> torch.Tensor:
    """A vowel-like test signal: a gliding 140 Hz pulse train through a formant, with breath noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k * np.exp(-(((k * 140 - 700) / 600) ** 2)) for k in range(1, 40))
    x = 0.3 * x / np.abs(x).max() + 0.003 * rng.standard_normal(len(t))
    return torch.tensor(x, dtype=torch.float32)[None, None]
