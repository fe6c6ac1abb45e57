"""HiFi-GAN's discriminators and losses (Kong, Kim and Bae, NeurIPS 2020), written from the paper.

- Multi-period discriminator (section 2.2): for each period p in 2, 3, 5, 7, 11 the
  waveform is folded into a 2-D grid of height T / p and width p, and 2-D convolutions with
  kernels (5, 1) look at every p-th sample, so each sub-discriminator judges one periodic
  structure. Channels 32, 128, 512, 1024 with stride 3 along time, then 1024 and a 1-channel
  output; LeakyReLU 0.1; weight normalisation.
- Multi-scale discriminator (section 2.3, from MelGAN): the same grouped 1-D convolution
  stack on the raw waveform and on two average-pooled copies (x2, x4), judging smoothed,
  consecutive patterns. The raw-scale one uses spectral normalisation, the others weight
  normalisation.

``width`` scales every hidden channel count (1.0 is the paper's; a smaller one makes
fine-tuning on a CPU affordable, at the cost of a weaker critic).

Losses (section 2.4): least-squares GAN (Mao et al., 2017), feature matching (the L1
distance between the discriminators' intermediate features of real and generated audio)
and the generator's mel L1. Every function returns a sum over sub-discriminators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

SLOPE = 0.1
PERIODS = (2, 3, 5, 7, 11)
Features = list[torch.Tensor]


def _ch(n: int, width: float, groups: int = 1) -> int:
    """``n * width`` rounded to a multiple of ``groups`` (at least ``groups``)."""
    return max(groups, round(n * width / groups) * groups)


class PeriodDiscriminator(nn.Module):
    """One sub-discriminator of the multi-period discriminator."""

    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = period
        chans = [1] + [_ch(c, width) for c in (32, 128, 512, 1024)]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
                                   for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        b, c, t = x.shape
        if t % self.period:  # fold needs a whole number of periods
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        return _run_stack(self.convs, self.post, x.view(b, c, -1, self.period))


def _run_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
    """A sub-discriminator's layers, LeakyReLU after each but the last: its scores and every layer's output
    (the features that feature matching compares)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class ScaleDiscriminator(nn.Module):
    """One sub-discriminator of the multi-scale discriminator (MelGAN's grouped stack)."""

    # (in, out, kernel, stride, groups) at width 1
    LAYERS = ((1, 128, 15, 1, 1), (128, 128, 41, 2, 4), (128, 256, 41, 2, 16), (256, 512, 41, 4, 16),
              (512, 1024, 41, 4, 16), (1024, 1024, 41, 1, 16), (1024, 1024, 5, 1, 1))

    def __init__(self, spectral: bool, width: float = 1.0):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        layers = []
        for cin, cout, k, s, g in self.LAYERS:
            # Hidden widths stay multiples of 16 so every group count divides them.
            a = 1 if cin == 1 else _ch(cin, width, 16)
            layers.append(norm(nn.Conv1d(a, _ch(cout, width, 16), k, s, groups=g, padding=k // 2)))
        self.convs = nn.ModuleList(layers)
        self.post = norm(nn.Conv1d(layers[-1].out_channels, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Features]:
        return _run_stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """The multi-period and multi-scale discriminators together: 8 sub-discriminators."""

    def __init__(self, width: float = 1.0, periods: tuple[int, ...] = PERIODS):
        super().__init__()
        self.period = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)
        self.scale = nn.ModuleList(ScaleDiscriminator(i == 0, width) for i in range(3))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[Features]]:
        """Scores and feature maps of every sub-discriminator for waveforms ``(B, 1, T)``."""
        scores, features = [], []
        for d in self.period:
            s, f = d(x)
            scores.append(s)
            features.append(f)
        for i, d in enumerate(self.scale):
            if i:
                x = self.pool(x)
            s, f = d(x)
            scores.append(s)
            features.append(f)
        return scores, features


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: push real scores to 1 and generated ones to 0."""
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for r, f in zip(real, fake, strict=True))


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: push generated scores to 1."""
    return sum(((1 - f) ** 2).mean() for f in fake)


def feature_loss(real: list[Features], fake: list[Features]) -> torch.Tensor:
    """L1 between real and generated feature maps, summed over layers and sub-discriminators."""
    return sum((r.detach() - f).abs().mean() for rs, fs in zip(real, fake, strict=True)
               for r, f in zip(rs, fs, strict=True))
