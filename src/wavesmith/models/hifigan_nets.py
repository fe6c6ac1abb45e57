"""HiFi-GAN's generator (Kong, Kim and Bae, NeurIPS 2020), written from the paper.

Log-mel frames ``(B, 80, F)`` go up to a waveform ``(B, 1, F * 256)`` through transposed
convolutions (section 2.1, figure 1), each followed by a multi-receptive-field fusion
(MRF): the mean of residual blocks of different kernel sizes and dilations, so every
upsampling stage sees patterns of several lengths at once. The paper's three variants
differ only in width and blocks (table 1 and appendix A):

- V1: hidden 512, upsampling 8, 8, 2, 2, kernels 3, 7, 11 with dilations 1, 3, 5 each
  (13.9 M parameters; the universal pretrained weights are V1);
- V2: the same at hidden 128 (0.9 M);
- V3: hidden 256, upsampling 8, 8, 4, and the lighter two-layer residual block (1.5 M).

The pretrained checkpoints store weight-normalised convolutions (``weight_g``,
``weight_v``); :func:`fold_weight_norm` turns them into plain weights, which is what
inference uses and what fine-tuning starts from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SLOPE = 0.1  # LeakyReLU slope inside the generator (appendix A)


@dataclass(frozen=True)
class GeneratorShape:
    """One generator variant of table 1."""

    hidden: int
    upsample_rates: tuple[int, ...]
    upsample_kernels: tuple[int, ...]
    block_kernels: tuple[int, ...]
    block_dilations: tuple[tuple[int, ...], ...]
    two_layer_blocks: bool  # ResBlock1 (two convolutions per dilation) or ResBlock2 (one)
    # ours: the rank of every residual-block convolution as a fraction of its stage's width
    # (1: full rank). Below 1 each becomes a LowRankConv1d (see lowrank).
    rank: float = 1.0


VARIANTS = {
    "v1": GeneratorShape(512, (8, 8, 2, 2), (16, 16, 4, 4), (3, 7, 11), ((1, 3, 5),) * 3, True),
    "v2": GeneratorShape(128, (8, 8, 2, 2), (16, 16, 4, 4), (3, 7, 11), ((1, 3, 5),) * 3, True),
    "v3": GeneratorShape(256, (8, 8, 4), (16, 16, 8), (3, 5, 7), ((1, 2), (2, 6), (3, 12)), False),
    # ours, not the paper's: V1 with only its kernel-3 residual block in each stage, where V1
    # spends nearly all its time on the kernel-7 and -11 ones; made from V1's weights by
    # lite_from and distilled from V1 (wavesmith.models.distilled_vocoder).
    "v1-lite": GeneratorShape(512, (8, 8, 2, 2), (16, 16, 4, 4), (3,), ((1, 3, 5),), True),
}


def lowrank(fraction: float) -> GeneratorShape:
    """V1 whose residual-block convolutions have rank ``fraction`` of their width (ours, not the paper's):
    about ``fraction`` of V1's operations; fitted to V1 by :mod:`wavesmith.models.lowrank_fit`."""
    return dataclasses.replace(VARIANTS["v1"], rank=fraction)


def lite_from(v1_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``v1-lite`` generator's weights from a V1 generator's (plain weights): each stage keeps its first block."""
    per_stage = len(VARIANTS["v1"].block_kernels)
    out = {}
    for key, value in v1_state.items():
        if key.startswith("resblocks."):
            _, index, rest = key.split(".", 2)
            stage, block = divmod(int(index), per_stage)
            if block:
                continue
            key = f"resblocks.{stage}.{rest}"
        out[key] = value
    return out


def _same(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class LowRankConv1d(nn.Module):
    """A ``C -> C`` convolution of rank ``r``: ``C -> r`` with the kernel (``reduce``), then ``r -> C``
    pointwise (``expand``); ``r / C`` of a full convolution's operations at large kernels."""

    def __init__(self, channels: int, rank: int, kernel: int, dilation: int = 1):
        super().__init__()
        self.reduce = nn.Conv1d(channels, rank, kernel, dilation=dilation, padding=_same(kernel, dilation))
        self.expand = nn.Conv1d(rank, channels, 1)

    @property
    def weight(self) -> torch.Tensor:  # what ResBlock reads its dtype from
        return self.expand.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.reduce(x))


def _conv(channels: int, kernel: int, dilation: int, rank: float) -> nn.Module:
    if rank >= 1:
        return nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=_same(kernel, dilation))
    return LowRankConv1d(channels, max(1, round(channels * rank)), kernel, dilation)


class ResBlock(nn.Module):
    """A residual stack at one kernel size: per dilation, lrelu -> dilated conv (-> lrelu -> conv)."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], two_layer: bool, rank: float = 1.0):
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel, d, rank) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, kernel, 1, rank) for _ in dilations) if two_layer else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus the stack's residuals, computed in the dtype of this block's weights.

        Blocks cast to bfloat16 (as :class:`wavesmith.vocoder.Vocoder` does for speed) take
        ``x`` in and give the sum back in ``x``'s dtype, so the stream between blocks keeps it.
        """
        h = x.to(self.convs1[0].weight.dtype)
        for i, c1 in enumerate(self.convs1):
            y = c1(F.leaky_relu(h, SLOPE))
            if self.convs2 is not None:
                y = self.convs2[i](F.leaky_relu(y, SLOPE))
            h = h + y
        return h.to(x.dtype)


class Generator(nn.Module):
    """Log-mel frames ``(B, n_mels, F)`` to a waveform ``(B, 1, F * hop)`` in [-1, 1]."""

    def __init__(self, shape: GeneratorShape, n_mels: int = 80):
        super().__init__()
        self.shape = shape
        self.hop = 1
        for r in shape.upsample_rates:
            self.hop *= r
        self.conv_pre = nn.Conv1d(n_mels, shape.hidden, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = shape.hidden
        for rate, kernel in zip(shape.upsample_rates, shape.upsample_kernels, strict=True):
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, kernel, rate, padding=(kernel - rate) // 2))
            ch //= 2
            for k, d in zip(shape.block_kernels, shape.block_dilations, strict=True):
                self.resblocks.append(ResBlock(ch, k, d, shape.two_layer_blocks, shape.rank))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        n = len(self.shape.block_kernels)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            blocks = self.resblocks[i * n:(i + 1) * n]
            x = sum(block(x) for block in blocks) / n  # multi-receptive-field fusion
        # The reference implementation's last activation uses LeakyReLU's default slope.
        return torch.tanh(self.conv_post(F.leaky_relu(x, 0.01)))


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``weight_g`` / ``weight_v`` pair by the weight it stands for, ``g * v / |v|``.

    ``torch.nn.utils.weight_norm`` normalises over every dimension but the first, for
    convolutions and transposed convolutions alike.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            stem = key[: -len(".weight_v")]
            g = state[stem + ".weight_g"].float()
            v = value.float()
            norm = v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))
            out[stem + ".weight"] = g * v / norm
        else:
            out[key] = value.float()
    return out
