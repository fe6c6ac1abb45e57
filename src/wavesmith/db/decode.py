"""Decoding one input file into database clips (runs in worker processes).

decode -> check samples -> mix/expand channels -> resample (soxr HQ) -> trim silence
-> cut long files -> duration limits -> int16 -> content hash. Every way a file can be
bad ends as a one-line reason, never as an exception escaping the worker.

Long files (past :data:`LONG_SECONDS`) are read, mixed and resampled block by block, so
memory holds the stored result and one block, not every intermediate of the whole file;
a file whose stored audio would pass :data:`MAX_STORED_BYTES` is refused from its header
before anything is decoded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import soxr

from wavesmith import audio
from wavesmith.errors import WavesmithError

# Trimming keeps audio within 40 dB of the clip's own peak: relative, so quiet recordings
# are not trimmed away, and a 5 ms margin so attacks and decays are not clipped hard.
TRIM_BELOW_PEAK_DB = 40.0
TRIM_MARGIN_S = 0.005
LONG_SECONDS = 600.0  # files longer than this are decoded in blocks of BLOCK_SECONDS
BLOCK_SECONDS = 30.0
MAX_STORED_BYTES = 2**30  # largest stored audio one file may give (9.3 h of 16 kHz mono)


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
    language: str | None = None  # an espeak-ng voice name (en-us, fr-fr, ...)
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
    """Decode ``job`` into clips, or say why it cannot be used (any failure: a recorded reason)."""
    try:
        return _decode(job, settings)
    except (WavesmithError, OSError) as e:
        return Decoded(job, error=_strip_path(str(e), job.path))
    except Exception as e:  # noqa: BLE001 - a decoder bug or MemoryError: one file's reason, never the run's end
        text = str(e).strip().splitlines()
        return Decoded(job, error=_strip_path(f"cannot decode: {type(e).__name__}: {text[-1] if text else ''}",
                                              job.path))


def decode_file(path: str | os.PathLike, sample_rate: int | None = None,
                channels: int | None = None) -> tuple[np.ndarray, int]:
    """One file through ``db add``'s checked path, for callers outside ingest (the studio's uploads).

    The same checks and conversions as :func:`decode` (known format, not empty, not too
    long, finite samples, at least one sample), at ``sample_rate`` and ``channels``
    (default: the file's own, from its header; 48 kHz stereo where only ffmpeg reads it).
    Returns float32 ``(channels, frames)`` and the rate; a file ``db add`` would skip raises
    :class:`WavesmithError` with the reason it would record.
    """
    if sample_rate is None or channels is None:
        try:
            head = audio.info(path)
            sample_rate, channels = sample_rate or head.sample_rate, channels or head.channels
        except WavesmithError:
            sample_rate, channels = sample_rate or 48000, channels or 2
    out = decode(Job(str(path)), Settings(int(sample_rate), int(channels)))
    if out.error:
        raise WavesmithError(f"{os.path.basename(path)}: {out.error}")
    pcm = out.pieces[0].pcm
    return np.ascontiguousarray(pcm.T, dtype=np.float32) / 32768.0, int(sample_rate)


def _decode(job: Job, settings: Settings) -> Decoded:
    out = Decoded(job)
    if job.error:
        out.error = job.error
        return out
    x, rate, fmt = _read(job.path, settings)
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
        peak, rms_db = _levels(pcm)
        out.pieces.append(Piece(pcm=pcm, hash=content_hash(pcm), segment=segment, duration=seconds, peak=peak,
                                rms_db=rms_db))
    return out


def _read(path: str, settings: Settings) -> tuple[np.ndarray, int, str]:
    """Decode a file: ``(float32 (channels, frames), rate, format name)``.

    A long file comes back already at the database's rate and channels (``rate`` is then
    ``settings.sample_rate``, and the later conversions are no-ops).
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in audio.AUDIO_EXTENSIONS:
        raise WavesmithError(f"unsupported format {suffix or '(no extension)'!r}")
    if os.path.getsize(path) == 0:
        raise WavesmithError("empty file (0 bytes)")
    try:
        f = sf.SoundFile(path)
    except Exception:
        # libsndfile cannot: audio.read retries with ffmpeg when it is installed and
        # otherwise raises a WavesmithError with libsndfile's reason.
        x, rate = audio.read(path)
        return x, rate, suffix.lstrip(".").upper()
    with f:
        stored = f.frames * settings.sample_rate / f.samplerate * settings.channels * 2
        if stored > MAX_STORED_BYTES:
            hours = f.frames / f.samplerate / 3600
            limit = MAX_STORED_BYTES / (settings.sample_rate * settings.channels * 2) / 3600
            raise WavesmithError(f"too long: {hours:.1f} h, and one file may give at most {limit:.1f} h "
                                 "of stored audio at this database's rate; cut it into shorter files first")
        if f.frames > LONG_SECONDS * f.samplerate:
            return _read_blocks(f, settings), settings.sample_rate, f.format
        data = f.read(dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(f.samplerate), f.format


def _read_blocks(f: sf.SoundFile, settings: Settings) -> np.ndarray:
    """A long file mixed and resampled block by block: float32 ``(channels, frames)`` at the database rate."""
    c, rate_out = settings.channels, settings.sample_rate
    stream = soxr.ResampleStream(f.samplerate, rate_out, c, dtype="float32", quality="HQ") \
        if f.samplerate != rate_out else None
    out = np.empty((c, int(np.ceil(f.frames * rate_out / f.samplerate)) + 1024), dtype=np.float32)
    n = 0
    block = int(BLOCK_SECONDS * f.samplerate)
    while True:
        x = f.read(block, dtype="float32", always_2d=True)
        last = len(x) < block
        if not np.isfinite(x).all():
            raise WavesmithError("samples are NaN or infinite")
        y = audio.to_channels(np.ascontiguousarray(x.T), c)
        if stream is not None:
            y = stream.resample_chunk(np.ascontiguousarray(y.T), last=last).T
        if n + y.shape[1] > out.shape[1]:  # the estimate fell short by a few frames
            out = np.concatenate([out[:, :n], np.empty((c, y.shape[1] + 1024), np.float32)], axis=1)
        out[:, n : n + y.shape[1]] = y
        n += y.shape[1]
        if last:
            return out[:, :n]


def _levels(pcm: np.ndarray) -> tuple[float, float]:
    """Peak (full scale 1) and RMS in dBFS of int16 ``(frames, channels)``, a block at a time."""
    peak, squares, step = 0, 0.0, 1 << 20
    for i in range(0, len(pcm), step):
        block = pcm[i : i + step].astype(np.float64)
        peak = max(peak, float(np.abs(block).max())) if block.size else peak
        squares += float(np.square(block).sum())
    if pcm.size == 0:
        return 0.0, -120.0
    rms = np.sqrt(squares / pcm.size) / 32768.0
    return peak / 32768.0, 20.0 * float(np.log10(max(rms, 1e-6)))


def to_int16(x: np.ndarray) -> np.ndarray:
    """float ``(channels, frames)`` in [-1, 1] -> int16 ``(frames, channels)`` (full scale = 32768)."""
    out = np.empty((x.shape[1], x.shape[0]), dtype=np.int16)
    step = 1 << 20  # a block at a time: an hour of audio needs no float64 copy of itself
    for i in range(0, x.shape[1], step):
        out[i : i + step] = np.clip(np.rint(x[:, i : i + step].T * 32768.0), -32768, 32767)
    return out


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
