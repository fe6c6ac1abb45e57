"""Audio in and out, and the transforms every part of wavesmith shares.

Conventions, everywhere in wavesmith:

- a waveform is a float32 array ``(channels, samples)`` in [-1, 1];
- every function that needs a sample rate takes it as an argument: nothing assumes
  16 kHz, and every file read is resampled explicitly (:func:`load`);
- torch transforms (:func:`mulaw_encode`, :func:`log_mel`) work on any leading shape.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr

from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import atomic_path

if TYPE_CHECKING:
    import torch

# Extensions wavesmith looks for when it walks folders. libsndfile reads most of them;
# the rest (m4a, aac, wma, webm...) go through ffmpeg when it is installed.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .caf .w64 .rf64 .voc"
    " .m4a .aac .wma .webm .mka .mp4".split()
)
_FFMPEG_ONLY = frozenset(".m4a .aac .wma .webm .mka .mp4".split())

# Output formats of :func:`write`: extension -> (libsndfile format, subtype).
WRITE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "aiff": ("AIFF", "PCM_16"),
}


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, before decoding."""

    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def info(path: str | os.PathLike) -> AudioInfo:
    """Header information of an audio file; raises :class:`WavesmithError` if unreadable."""
    try:
        i = sf.info(str(path))
    except Exception as e:  # libsndfile errors, permission errors, missing files
        raise WavesmithError(f"cannot read {path}: {one_line(e)}") from None
    return AudioInfo(int(i.samplerate), int(i.channels), int(i.frames), str(i.format))


def read(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a file at its own rate: ``(float32 (channels, samples), sample_rate)``.

    ``max_seconds`` decodes only the start of the file, in memory bounded by that length
    (a 2-hour file costs what its first ``max_seconds`` cost).
    """
    path = Path(path)
    if path.suffix.lower() in _FFMPEG_ONLY:
        return _read_ffmpeg(path, max_seconds)
    try:
        with sf.SoundFile(str(path)) as f:
            frames = -1 if max_seconds is None else min(f.frames, math.ceil(max_seconds * f.samplerate))
            data, rate = f.read(frames, dtype="float32", always_2d=True), f.samplerate
    except MemoryError:  # libsndfile read the header; ffmpeg would only write the same hours to /tmp
        raise WavesmithError(f"cannot decode {path}: too long to decode in memory") from None
    except Exception as e:
        if shutil.which("ffmpeg") and path.exists() and path.stat().st_size > 0:
            try:
                return _read_ffmpeg(path, max_seconds)
            except WavesmithError:
                pass
        raise WavesmithError(f"cannot decode {path}: {one_line(e)}") from None
    return np.ascontiguousarray(data.T), int(rate)


def _read_ffmpeg(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    if not shutil.which("ffmpeg"):
        raise WavesmithError(f"cannot decode {path}: format {path.suffix} needs ffmpeg, which is not installed")
    limit = [] if max_seconds is None else ["-t", f"{max_seconds:.6f}"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), *limit, "-vn", "-c:a", "pcm_f32le", str(out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            msg = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
            raise WavesmithError(f"cannot decode {path}: {msg}")
        data, rate = sf.read(str(out), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Mix down to mono (mean of channels) or expand mono to ``channels`` copies."""
    if x.shape[0] == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True)
    if x.shape[0] == 1:
        return np.repeat(x, channels, axis=0)
    # n -> m with n, m > 1: mix to mono first, then spread; no layout is assumed.
    return np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample ``(channels, samples)`` with soxr's high-quality mode."""
    if rate_in == rate_out or x.shape[-1] == 0:
        return x.astype(np.float32, copy=False)
    y = soxr.resample(np.ascontiguousarray(x.T), rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)


def load(path: str | os.PathLike, sample_rate: int, channels: int = 1) -> np.ndarray:
    """Read a file and convert it to ``sample_rate`` and ``channels``: float32 (channels, samples)."""
    x, rate = read(path)
    return resample(to_channels(x, channels), rate, sample_rate)


def write(
    path: str | os.PathLike,
    audio: np.ndarray | torch.Tensor,
    sample_rate: int,
    format: str | None = None,
) -> Path:
    """Write ``(channels, samples)`` atomically (temporary file, then rename).

    The format follows ``format`` or else the file's extension (wav, flac, ogg, mp3, aiff);
    samples are clipped to [-1, 1]. A reader never sees a half-written file.
    """
    path = Path(path)
    fmt = check_format(format or path.suffix, f"cannot write {path}: ")
    major, subtype = WRITE_FORMATS[fmt]
    try:
        with atomic_path(path) as tmp:
            sf.write(str(tmp), _frames(audio), int(sample_rate), format=major, subtype=subtype)
    except Exception as e:
        raise WavesmithError(f"cannot write {path}: {one_line(e)}") from None
    return path


def check_format(format: str, context: str = "") -> str:
    """``format`` (``"FLAC"``, ``".wav"``, ``"aif"``...) as a key of :data:`WRITE_FORMATS`.

    A format wavesmith cannot write is a :class:`WavesmithError` listing the ones it can,
    its message prefixed with ``context``.
    """
    fmt = format.lower().lstrip(".")
    fmt = "aiff" if fmt in ("aif", "aifc") else fmt
    if fmt not in WRITE_FORMATS:
        raise WavesmithError(f"{context}unsupported format {format!r}; use one of {', '.join(WRITE_FORMATS)}")
    return fmt


def as_float32(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy array of ``audio``: a numpy array, or a torch tensor on any device."""
    if hasattr(audio, "detach"):  # a torch tensor (torch is imported lazily: db commands start fast)
        audio = audio.detach().float().cpu().numpy()
    return np.asarray(audio, dtype=np.float32)


def _frames(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(channels, samples)`` as libsndfile takes it: ``(samples, channels)``, clipped, no NaN."""
    audio = as_float32(audio)
    if audio.ndim == 1:
        audio = audio[None]
    return np.clip(np.nan_to_num(audio.T, nan=0.0), -1.0, 1.0)


def as_written(audio: np.ndarray, sample_rate: int = 16000, format: str = "wav") -> np.ndarray:
    """``audio`` (C, T) as :func:`write` would store it in ``format``, read back, in memory:
    what a file holds after 16-bit rounding (libsndfile truncates) or a lossy codec."""
    major, subtype = WRITE_FORMATS[format]
    buf = io.BytesIO()
    sf.write(buf, _frames(audio), int(sample_rate), format=major, subtype=subtype)
    buf.seek(0)
    return sf.read(buf, dtype="float32", always_2d=True)[0].T


def peak(x: np.ndarray) -> float:
    """Largest absolute sample value."""
    return float(np.max(np.abs(x))) if x.size else 0.0


def rms_db(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    if x.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(max(rms, 1e-6))


# --- mu-law (ITU-T G.711 style companding, as used by WaveNet section 2.2) ---------------


def mulaw_encode(x: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Compand [-1, 1] with mu = Q - 1 and quantize to integers in [0, Q)."""
    import torch

    mu = quantization_channels - 1
    x = x.clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long().clamp(0, mu)


def mulaw_decode(q: torch.Tensor, quantization_channels: int = 256) -> torch.Tensor:
    """Inverse of :func:`mulaw_encode`: integers in [0, Q) to float in [-1, 1]."""
    import torch

    mu = quantization_channels - 1
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


# --- log-mel -----------------------------------------------------------------------------


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None, scale: str = "htk"
) -> torch.Tensor:
    """Triangular filters, area-normalised as Slaney's: ``(n_mels, n_fft // 2 + 1)``.

    ``scale`` places the centres: ``"htk"`` (2595 log10(1 + f/700)) or ``"slaney"``
    (linear to 1 kHz, logarithmic above; the Auditory Toolbox's and librosa's default,
    which the pretrained HiFi-GAN vocoders were trained with).
    """
    import torch

    fmax = fmax or sample_rate / 2
    if scale not in ("htk", "slaney"):
        raise ValueError(f"mel scale must be 'htk' or 'slaney', not {scale!r}")
    step, knee, log_step = 200.0 / 3, 1000.0, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        if scale == "htk":
            return 2595.0 * np.log10(1.0 + f / 700.0)
        return np.where(f < knee, f / step, knee / step + np.log(np.maximum(f, 1e-9) / knee) / log_step)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        if scale == "htk":
            return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
        return np.where(m < knee / step, m * step, knee * np.exp(log_step * (m - knee / step)))

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / np.maximum(centre - lower, 1e-9)
    down = (upper - freqs[None]) / np.maximum(upper - centre, 1e-9)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= (2.0 / np.maximum(upper - lower, 1e-9))  # equal area, as Slaney's normalisation
    return torch.from_numpy(fb.astype(np.float32))


_FILTERBANKS: dict[tuple, torch.Tensor] = {}


def log_mel(
    x: torch.Tensor,
    sample_rate: int,
    n_fft: int = 1024,
    hop_length: int = 256,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    center: bool = True,
) -> torch.Tensor:
    """Natural-log mel magnitudes of ``(..., samples)``: ``(..., n_mels, frames)``.

    With ``center=True`` frame ``i`` is centred on sample ``i * hop_length`` and there are
    ``samples // hop_length + 1`` frames. Magnitudes are floored at 1e-5 before the log.
    """
    import torch

    key = (sample_rate, n_fft, n_mels, fmin, fmax)
    if key not in _FILTERBANKS:
        _FILTERBANKS[key] = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    fb = _FILTERBANKS[key].to(x.device)
    shape = x.shape
    flat = x.reshape(-1, shape[-1]).float()
    if center and flat.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than that
        flat = torch.nn.functional.pad(flat, (0, n_fft // 2 + 1 - flat.shape[-1]))
    spec = torch.stft(
        flat,
        n_fft,
        hop_length,
        window=torch.hann_window(n_fft, device=x.device),
        center=center,
        return_complex=True,
    ).abs()
    mel = torch.log(torch.clamp(fb @ spec, min=1e-5))
    return mel.reshape(*shape[:-1], n_mels, mel.shape[-1])




def sound_end(x: np.ndarray, sample_rate: int, below_db: float = 50.0, tail: float = 0.02) -> int:
    """Samples of ``x`` ``(channels, samples)`` up to where its sound has died away.

    The end is the last sample within ``below_db`` of the clip's peak, plus ``tail`` seconds
    (capped at the clip's length); a silent clip keeps its length.
    """
    level = np.abs(x).max(axis=0) if x.size else np.zeros(0)
    if not level.size or level.max() <= 0:
        return x.shape[-1]
    loud = np.flatnonzero(level > level.max() * 10 ** (-below_db / 20))
    return int(min(x.shape[-1], loud[-1] + 1 + round(tail * sample_rate)))
