"""The log-mel convention every mel-domain model and vocoder in wavesmith shares.

A mel-domain model (``mel-diffusion``, later TTS) predicts frames in this convention, and
a vocoder turns them into a waveform. The convention is the one the pretrained universal
HiFi-GAN (Kong et al., 2020) was trained with, so its weights can decode what our models
make: 22,050 Hz, an 1,024-point Hann-windowed STFT every 256 samples, 80 bands on the
Slaney mel scale from 0 to 8 kHz (area-normalised), magnitudes (not power), natural log
floored at 1e-5. The signal is reflect-padded by ``(n_fft - hop) / 2`` on each side
without centring, so a clip of ``k * hop`` samples has exactly ``k`` frames and frame
``i`` covers samples ``i * hop`` to ``(i + 1) * hop`` once vocoded.

A database at another rate is resampled to the convention's rate before analysis and the
vocoder's output back to the database's rate afterwards (:func:`to_rate`): the convention
stays one, whatever the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wavesmith import audio as A

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class MelSpec:
    """One log-mel convention (the defaults are the universal HiFi-GAN's)."""

    sample_rate: int = 22050  # the rate frames are computed at and the vocoder writes
    n_fft: int = 1024  # STFT size
    hop: int = 256  # samples between frames (one frame = hop samples of vocoder output)
    win: int = 1024  # Hann window length
    n_mels: int = 80  # mel bands
    fmin: float = 0.0  # lowest band edge, Hz
    fmax: float = 8000.0  # highest band edge, Hz

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def frames(self, seconds: float) -> int:
        """Frames that cover ``seconds`` of audio (rounded up)."""
        return max(1, int(np.ceil(seconds * self.sample_rate / self.hop)))

    @property
    def silence(self) -> float:
        """The value of a silent band: log of the floor."""
        return float(np.log(LOG_FLOOR))


HIFIGAN = MelSpec()

_BANKS: dict[MelSpec, torch.Tensor] = {}


def filters(spec: MelSpec = HIFIGAN) -> torch.Tensor:
    """The mel filterbank of ``spec``: ``(n_mels, n_fft // 2 + 1)``."""
    if spec not in _BANKS:
        _BANKS[spec] = A.mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, spec.fmin, spec.fmax,
                                        scale="slaney")
    return _BANKS[spec]


def log_mel(wave: torch.Tensor, spec: MelSpec = HIFIGAN) -> torch.Tensor:
    """Log-mel frames of ``wave`` ``(..., samples)`` at ``spec.sample_rate``: ``(..., n_mels, samples // hop)``."""
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1]).float()
    pad = (spec.n_fft - spec.hop) // 2
    if flat.shape[-1] <= pad:  # reflect padding needs more samples than the pad
        flat = F.pad(flat, (0, pad + 1 - flat.shape[-1]))
    flat = F.pad(flat[:, None], (pad, pad), mode="reflect")[:, 0]
    stft = torch.stft(flat, spec.n_fft, spec.hop, spec.win, window=torch.hann_window(spec.win, device=wave.device),
                      center=False, return_complex=True)
    magnitude = torch.sqrt(stft.real**2 + stft.imag**2 + 1e-9)
    mel = torch.log(torch.clamp(filters(spec).to(wave.device) @ magnitude, min=LOG_FLOOR))
    return mel.reshape(*shape[:-1], spec.n_mels, mel.shape[-1])


def to_rate(wave: torch.Tensor, rate_in: int, rate_out: int) -> torch.Tensor:
    """Resample ``(..., samples)`` with soxr (on the CPU; the result returns to ``wave``'s device)."""
    if rate_in == rate_out:
        return wave
    x = wave.detach().float().cpu().numpy()
    out = A.resample(x.reshape(-1, x.shape[-1]), rate_in, rate_out)  # every row as one channel
    return torch.from_numpy(np.ascontiguousarray(out)).reshape(*x.shape[:-1], -1).to(wave.device)
