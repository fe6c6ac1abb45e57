"""WaveGAN's generator for inference: the same maths as training's, faster on a quiet CPU.

A stride-``s`` transposed convolution is ``s`` ordinary convolutions, one per output phase
(polyphase decomposition): output sample ``t = s*m + r`` only ever meets every ``s``-th
tap of the kernel. Stacking the ``s`` phase kernels into one conv2d weight and running it
on channels-last activations makes the output rows come out already interleaved, so the
upsampled signal is a reshape that copies nothing. The first layer stays the library's
transposed convolution: reading its 13M weights, not arithmetic, bounds it.

:class:`~wavesmith.models.wavegan_networks.Generator` takes this path when its caller
asks for it (``polyphase=True``, under ``torch.no_grad()``); ``benchmarks/wavegan_speed.py``
times it against the plain ``ConvTranspose1d`` stack: about 1.25x as fast in float32 on a
quiet 2-core CPU, but 0.95x on one core of a busy machine (2026-12-01), where its bf16
form still gave 1.97x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def polyphase_weight(w: torch.Tensor, stride: int, pad: int) -> tuple[torch.Tensor, int, int]:
    """Rewrite a transposed-conv weight ``(Cin, Cout, K)`` as one conv weight ``(stride*Cout, Cin, T)``.

    Output sample ``t = stride*m + r`` of the transposed convolution is
    ``sum_j x[m - j] . w[:, :, stride*j + r + pad]``: for each phase ``r`` an ordinary
    convolution with every ``stride``-th tap. Returns the stacked weight (phase-major) and
    the left/right zero padding of the input.
    """
    cin, cout, k = w.shape
    jmin = min(-((r + pad) // stride) for r in range(stride))
    jmax = max((k - 1 - r - pad) // stride for r in range(stride))
    taps = jmax - jmin + 1
    out = w.new_zeros(stride, cout, cin, taps)
    for r in range(stride):
        for u in range(taps):
            tap = stride * (jmax - u) + r + pad
            if 0 <= tap < k:
                out[r, :, :, u] = w[:, :, tap].t()
    return out.reshape(stride * cout, cin, taps).contiguous(), jmax, -jmin


class InferenceWeights:
    """Weights derived from a generator's layers for inference, rebuilt whenever the parameters change."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, str, torch.dtype], tuple] = {}

    def get(self, conv: nn.ConvTranspose1d, kind: str, dtype: torch.dtype) -> tuple:
        """``(weight, bias)`` in ``dtype`` (kind ``"weight"``) or the polyphase ``(w, bias, left, right)``."""
        weight, bias = conv.weight.detach(), conv.bias.detach()
        key = (weight._version, weight.data_ptr(), weight.device)
        slot = (id(conv), kind, dtype)
        if slot not in self.entries or self.entries[slot][0] != key:
            if kind == "polyphase":
                stride = conv.stride[0]
                w, left, right = polyphase_weight(weight, stride, conv.padding[0])
                w = w[:, :, None, :].to(dtype).contiguous(memory_format=torch.channels_last)
                value = (w, bias.repeat(stride).to(dtype), left, right)
            else:
                value = (weight.to(dtype), bias.to(dtype))
            self.entries[slot] = (key, *value)
        return self.entries[slot][1:]


def upsample(x: torch.Tensor, conv: nn.ConvTranspose1d, weights: InferenceWeights) -> torch.Tensor:
    """One transposed convolution, channels-last ``(B, Cin, 1, L)`` to channels-last ``(B, Cout, 1, stride * L)``.

    In channels-last memory the conv2d's output row ``m`` holds output samples
    ``stride*m .. stride*m + stride-1``: already interleaved, so the reshape copies nothing.
    """
    stride = conv.stride[0]
    w, bias, left, right = weights.get(conv, "polyphase", x.dtype)
    if left != right:
        x, left = F.pad(x, (left, right)).contiguous(memory_format=torch.channels_last), 0
    y = F.conv2d(x, w, bias, padding=(0, left))
    b, _, _, length = y.shape
    return y.permute(0, 2, 3, 1).reshape(b, 1, length * stride, -1).permute(0, 3, 1, 2)


def upsampling_stack(
    x: torch.Tensor, convs: list[nn.ConvTranspose1d], weights: InferenceWeights, dtype: torch.dtype | None
) -> torch.Tensor:
    """The generator's transposed convolutions (ReLU between, tanh last) on ``(B, C, 16)``.

    With ``dtype=torch.bfloat16`` the hidden layers compute in bf16 and the last layer in
    float32, so the output keeps float32 resolution.
    """
    dtype = dtype or x.dtype
    first = convs[0]
    w, bias = weights.get(first, "weight", dtype)
    x = F.conv_transpose1d(x.to(dtype), w, bias, first.stride, first.padding, first.output_padding)
    x = F.relu_(x)[:, :, None, :].contiguous(memory_format=torch.channels_last)
    for conv in convs[1:-1]:
        x = F.relu_(upsample(x, conv, weights))
    x = torch.tanh_(upsample(x.float(), convs[-1], weights))
    return x.squeeze(2).contiguous()
