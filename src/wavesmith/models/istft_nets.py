"""A fast vocoder generator: ConvNeXt blocks at the frame rate, then an inverse STFT.

HiFi-GAN climbs from the frame rate (86 frames/s) to the sample rate (22,050/s) through
transposed convolutions, and spends nearly all its time in the residual blocks at the
high rates. This generator never leaves the frame rate: a stack of ConvNeXt blocks
(Liu et al., 2022: depthwise convolution, layer norm, an inverted-bottleneck MLP, a
learned per-channel scale on the residual) turns each log-mel frame into one STFT frame,
a log-magnitude and a phase per bin, and an inverse STFT with overlap-add makes the
waveform. Siuzdak's Vocos (2023), trained adversarially, showed that this design can match
HiFi-GAN's quality at a fraction of its cost; the sizes here are ours, chosen for a CPU
(see :data:`SHAPES`), and the training is distillation (:mod:`wavesmith.models.distilled_vocoder`).

Framing follows :mod:`wavesmith.melspec`: log-mel frame ``i`` covers samples
``[i*hop - (n_fft-hop)/2, i*hop + (n_fft+hop)/2)``, so STFT frame ``i`` is placed there
and ``(n_fft-hop)/2`` samples are trimmed from each end of the overlap-add: ``F`` frames
give exactly ``F * hop`` samples, as HiFi-GAN's generator does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ISTFTShape:
    """The sizes of one iSTFT generator."""

    dim: int  # channels of the ConvNeXt stack
    mult: int  # the MLP's expansion (hidden = dim * mult)
    layers: int  # ConvNeXt blocks
    kernel: int  # depthwise convolution width, in frames
    n_fft: int  # STFT size of the head (window = n_fft, Hann)


SHAPES = {
    # 7.7 M parameters: the student measured in README ("Distilled vocoders").
    "base": ISTFTShape(dim=384, mult=3, layers=8, kernel=7, n_fft=1024),
    # 0.3 M parameters: for tests and quick trials.
    "tiny": ISTFTShape(dim=64, mult=2, layers=2, kernel=7, n_fft=1024),
}

LOG_MAG_MAX = 6.0  # exp(6) = 403: a cap on any bin's magnitude, so a wild frame cannot overflow


class ConvNeXtBlock(nn.Module):
    """x + scale * MLP(LayerNorm(depthwise_conv(x))), on ``(B, dim, F)``."""

    def __init__(self, dim: int, mult: int, kernel: int, scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, dim * mult)
        self.down = nn.Linear(dim * mult, dim)
        self.scale = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(x).transpose(1, 2)
        h = self.down(F.gelu(self.up(self.norm(h))))
        return x + (self.scale * h).transpose(1, 2)


class ISTFTGenerator(nn.Module):
    """Log-mel frames ``(B, n_mels, F)`` to a waveform ``(B, 1, F * hop)``."""

    def __init__(self, shape: ISTFTShape, n_mels: int = 80, hop: int = 256):
        super().__init__()
        if shape.n_fft < hop or (shape.n_fft - hop) % 2:
            raise ValueError(f"n_fft {shape.n_fft} must be at least the hop {hop}, by an even margin")
        self.shape = shape
        self.hop = hop
        self.embed = nn.Conv1d(n_mels, shape.dim, 7, padding=3)
        self.norm = nn.LayerNorm(shape.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(shape.dim, shape.mult, shape.kernel, 1.0 / shape.layers)
                                    for _ in range(shape.layers))
        self.final_norm = nn.LayerNorm(shape.dim, eps=1e-6)
        bins = shape.n_fft // 2 + 1
        self.head = nn.Linear(shape.dim, 2 * bins)  # log-magnitude, then phase, per bin
        with torch.no_grad():  # start quiet: every bin near exp(-4)
            self.head.bias[:bins].fill_(-4.0)
        self.register_buffer("window", torch.hann_window(shape.n_fft), persistent=False)

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """The complex STFT frames ``(B, bins, F)`` the generator makes of ``mel``."""
        x = self.embed(mel)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.final_norm(x.transpose(1, 2)))  # (B, F, 2 * bins)
        log_mag, phase = h.float().chunk(2, dim=-1)
        mag = torch.exp(log_mag.clamp(max=LOG_MAG_MAX))
        return torch.polar(mag, phase).transpose(1, 2)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.overlap_add(self.spectrum(mel))

    def overlap_add(self, spec: torch.Tensor) -> torch.Tensor:
        """Inverse STFT of ``(B, bins, F)`` with the melspec framing: ``(B, 1, F * hop)``."""
        n_fft, hop = self.shape.n_fft, self.hop
        frames = spec.shape[-1]
        chunks = torch.fft.irfft(spec, n=n_fft, dim=1) * self.window[:, None]  # (B, n_fft, F)
        length = (frames - 1) * hop + n_fft
        y = F.fold(chunks, (1, length), (1, n_fft), stride=(1, hop))[:, 0]  # (B, 1, length)
        envelope = F.fold(self.window.square()[None, :, None].expand(1, n_fft, frames), (1, length),
                          (1, n_fft), stride=(1, hop))[:, 0]
        pad = (n_fft - hop) // 2
        y = y[..., pad: pad + frames * hop]
        envelope = envelope[..., pad: pad + frames * hop]
        return y / envelope.clamp_min(1e-8)
