"""Decoding one input file into database clips (runs in worker processes).

decode -> check samples -> mix/expand channels -> resample (soxr HQ) -> trim silence
-> cut long files -> duration limits -> int16 -> content hash. Every way a file can be
bad ends as a one-line reason, never as an exception escaping the worker.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from wavesmith import audio
from wavesmith.errors import WavesmithError

# Trimming keeps audio within 40 dB of the clip's own peak: relative, so quiet recordings
# are not trimmed away, and a 5 ms margin so attacks and decays are not clipped hard.
TRIM_BELOW_PEAK_DB = 40.0
TRIM_MARGIN_S = 0.005


@dataclass(frozen=True)
class Settings:
    """How ``db add`` turns files into clips (the same for every file of one run)."""

    sample_rate: int
    channels: int
    trim_silence: bool = False
    split_long: float | None = None  # cut files longer than this into pieces of this many seconds
    min_duration: float = 0.0  # seconds, after trimming; shorter clips are skipped
    max_duration: float | None = None  # seconds; longer clips are skipped (unless split_long cuts them)


@dataclass(slots=True)  # slots: a million pending jobs stay small
class Job:
    """One input file and what is known about it before decoding."""

    path: str
    size: int = -1
    mtime: float = 0.0
    label: str | None = None
    speaker: str | None = None
    text: str | None = None
    error: str | None = None  # known bad before decoding (missing, unreadable)


@dataclass
class Piece:
    """One clip made from a file: int16 ``(frames, channels)`` plus its measurements."""

    pcm: np.ndarray
    hash: str
    segment: int
    duration: float
    peak: float
    rms_db: float


@dataclass
class Decoded:
    """What a worker sends back for one job."""

    job: Job
    orig_rate: int = 0
    orig_channels: int = 0
    orig_format: str = ""
    pieces: list[Piece] = field(default_factory=list)
    error: str | None = None


def decode(job: Job, settings: Settings) -> Decoded:
    """Decode ``job`` into clips, or say why it cannot be used."""
    out = Decoded(job)
    if job.error:
        out.error = job.error
        return out
    try:
        x, rate, fmt = _read(job.path)
    except (WavesmithError, OSError) as e:
        out.error = _strip_path(str(e), job.path)
        return out
    out.orig_rate, out.orig_channels, out.orig_format = rate, x.shape[0], fmt
    if x.shape[1] == 0:
        out.error = "no audio samples in the file"
        return out
    if not np.isfinite(x).all():
        out.error = "samples are NaN or infinite"
        return out
    y = audio.resample(audio.to_channels(x, settings.channels), rate, settings.sample_rate)
    if settings.trim_silence:
        y = trim_silence(y, settings.sample_rate)
        if y.shape[1] == 0:
            out.error = "silent (nothing left after --trim-silence)"
            return out
    sr = settings.sample_rate
    if settings.split_long and y.shape[1] > settings.split_long * sr:
        step = max(1, int(round(settings.split_long * sr)))
        parts = [y[:, i : i + step] for i in range(0, y.shape[1], step)]
    else:
        parts = [y]
    for segment, part in enumerate(parts):
        seconds = part.shape[1] / sr
        if seconds < settings.min_duration or part.shape[1] == 0:
            if len(parts) > 1 and segment == len(parts) - 1:
                continue  # the short tail of a cut file is dropped, not an error
            out.error = f"shorter than the minimum duration ({seconds:.3f} s < {settings.min_duration:g} s)"
            return out
        if settings.max_duration and seconds > settings.max_duration:
            out.error = f"longer than the maximum duration ({seconds:.1f} s > {settings.max_duration:g} s)"
            return out
        pcm = to_int16(part)
        out.pieces.append(
            Piece(
                pcm=pcm,
                hash=content_hash(pcm),
                segment=segment,
                duration=seconds,
                peak=audio.peak(part),
                rms_db=audio.rms_db(part),
            )
        )
    return out


def _read(path: str) -> tuple[np.ndarray, int, str]:
    """Decode a file: ``(float32 (channels, frames), rate, format name)``."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in audio.AUDIO_EXTENSIONS:
        raise WavesmithError(f"unsupported format {suffix or '(no extension)'!r}")
    if os.path.getsize(path) == 0:
        raise WavesmithError("empty file (0 bytes)")
    try:
        with sf.SoundFile(path) as f:
            fmt = f.format
            data = f.read(dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(f.samplerate), fmt
    except Exception:
        # libsndfile cannot: audio.read retries with ffmpeg when it is installed and
        # otherwise raises a WavesmithError with libsndfile's reason.
        x, rate = audio.read(path)
        return x, rate, suffix.lstrip(".").upper()


def to_int16(x: np.ndarray) -> np.ndarray:
    """float ``(channels, frames)`` in [-1, 1] -> int16 ``(frames, channels)`` (full scale = 32768)."""
    y = np.rint(x.T * 32768.0)
    return np.clip(y, -32768, 32767).astype(np.int16)


def content_hash(pcm: np.ndarray) -> str:
    """Identity of stored audio: blake2b-128 of the int16 samples (same audio, same hash)."""
    return hashlib.blake2b(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), digest_size=16).hexdigest()


def trim_silence(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading and trailing audio more than 40 dB below the clip's peak."""
    level = np.abs(x).max(axis=0)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0.0:
        return x[:, :0]
    loud = np.flatnonzero(level >= peak * 10 ** (-TRIM_BELOW_PEAK_DB / 20))
    margin = int(TRIM_MARGIN_S * sample_rate)
    start = max(0, int(loud[0]) - margin)
    end = min(x.shape[1], int(loud[-1]) + 1 + margin)
    return x[:, start:end]


def _strip_path(message: str, path: str) -> str:
    """Reasons are stored next to their path: drop the path from the message."""
    for prefix in (f"cannot decode {path}: ", f"cannot read {path}: "):
        if message.startswith(prefix):
            message = "cannot decode: " + message[len(prefix) :]
    # libsndfile names the file too: "Error opening '/x/y.wav': Format not recognised."
    message = message.replace(f"Error opening {path!r}: ", "").replace(f"Error opening '{path}': ", "")
    return message.replace(path, "<file>")
