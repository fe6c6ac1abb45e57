"""Figures that show a WaveGAN failing: collapse, steady tones, checkerboard buzz.

A GAN's losses say little about its sounds (the critic's estimate moves with the critic's
strength), so the training logs carry figures computed on the audio itself, each next to
the same figure on real clips: :func:`spectral_diversity` (collapse and steady tones drive
it towards 0), :func:`spectral_distance` (ranks checkpoints with no critic involved) and
:func:`periodic_buzz_db` (the stride-4 checkerboard lines of Donahue et al. section 3.2).
"""

from __future__ import annotations

import math

import torch

from wavesmith.audio import log_mel


def _log_mel(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Log-mel spectrograms ``(B, 64, frames)`` of the channel mix, for the figures below."""
    return log_mel(audio.float().mean(1), sample_rate, n_fft=1024, hop_length=256, n_mels=64)


def spectral_diversity(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mean pairwise RMS distance between the log-mel spectrograms of a batch's clips.

    Collapse to one sound or a steady tone drives it towards 0; compare it with the same
    figure on real clips (``diversity_ratio`` in the training logs).
    """
    if len(audio) < 2:
        return audio.new_zeros(())
    feats = _log_mel(audio, sample_rate).flatten(1)
    dist = torch.cdist(feats, feats) / math.sqrt(feats.shape[1])
    n = len(audio)
    return dist.sum() / (n * (n - 1))


def spectral_distance(fake: torch.Tensor, real: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """RMS difference of the per-band mean and spread of log-mel energy, generated vs real.

    Needs no critic, so it ranks checkpoints on one scale: a buzz adds energy in bands the
    real clips lack (means), a steady tone or collapse narrows the spread (standard deviations).
    """
    f, r = _log_mel(fake, sample_rate), _log_mel(real, sample_rate)
    mean = (f.mean((0, 2)) - r.mean((0, 2))).square().mean().sqrt()
    spread = (f.std((0, 2)) - r.std((0, 2))).square().mean().sqrt()
    return mean + spread


def periodic_buzz_db(audio: torch.Tensor) -> torch.Tensor:
    """How far (dB) power at multiples of 1/16 of the sample rate stands above neighbouring bins.

    Stride-4 transposed convolutions leave patterns of period 4, 16... samples: the
    checkerboard buzz of section 3.2, lines at multiples of rate/16. Noise-like spectra score
    0-2 dB (a mean over a median of noisy power); a buzz scores tens of dB.
    """
    x = audio.float().mean(1)
    n = x.shape[-1]
    power = torch.fft.rfft(x).abs().square().mean(0)
    peaks = torch.arange(1, 9, device=x.device) * (n // 16)
    offsets = torch.cat([torch.arange(-8, 0), torch.arange(1, 9)]).to(x.device)
    around = power[(peaks[:, None] + offsets).clamp(0, n // 2)].median(dim=1).values
    return 10 * torch.log10((power[peaks] / around.clamp_min(1e-20)).mean())
