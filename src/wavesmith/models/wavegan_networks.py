"""WaveGAN's two networks (Donahue, McAuley and Puckette, ICLR 2019, table 2) and the WGAN-GP penalty.

The generator maps a latent (and a label) to a whole clip in one forward pass:

    z -> dense -> (16, 16d) -> [transposed conv k25 s4, ReLU] x 4 -> transposed conv -> tanh

and the critic mirrors it with strided convolutions, LeakyReLU(0.2) and phase shuffle
(section 3.3), ending in one linear score. :mod:`wavesmith.models.wavegan` trains them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith.models import wavegan_fast

if TYPE_CHECKING:
    from wavesmith.models.wavegan import Config


def _strides(window: int) -> list[int]:
    """Upsampling factors from length 16 to ``window``: 16*4^5 = 16384, then x2 or x4 (later release)."""
    return [4] * min(5, round(math.log(window // 16, 4))) + {32768: [2], 65536: [4]}.get(window, [])


def _widths(d: int, window: int) -> list[int]:
    """Channels from the dense layer down to the last hidden layer: 16d..d (32d..d for long windows)."""
    top = 32 if window > 16384 else 16
    return [d * top >> i for i in range(len(_strides(window)))]


# --- building blocks ----------------------------------------------------------------------


def phase_shuffle(x: torch.Tensor, n: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Shift each example of ``(B, C, L)`` by a random ``-n..n`` samples, reflecting at the edges.

    Section 3.3: the critic must not learn to reject the generator's checkerboard phase, so
    each layer sees its input at a random phase. One shift per example (the release draws
    one per batch; per example gives the critic more varied views at no cost). ``shift``
    ``(B,)`` fixes the shifts (tests). ``n=0`` is the identity.
    """
    if n == 0 and shift is None:
        return x
    b, c, length = x.shape
    if shift is None:
        shift = torch.randint(-n, n + 1, (b,), device=x.device)
    idx = torch.arange(length, device=x.device)[None] - shift.view(b, 1)  # out[t] = x[t - shift]
    idx = idx.abs()  # reflect on the left: x[-k] -> x[k]
    idx = torch.where(idx > length - 1, 2 * (length - 1) - idx, idx)  # and on the right
    return x.gather(2, idx[:, None, :].expand(b, c, length))


class UpConv(nn.Module):
    """Upsample ``(B, Cin, L)`` by ``stride`` to ``(B, Cout, stride * L)``.

    ``zeros`` is the paper's transposed convolution (kernel 25, "same" alignment);
    ``nn`` repeats each sample ``stride`` times and then convolves (section 3.2's
    alternative).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, upsample: str):
        super().__init__()
        self.stride, self.upsample = stride, upsample
        if upsample == "zeros":
            pad = math.ceil((kernel - stride) / 2)  # output_padding below makes the length exactly stride * L
            self.conv = nn.ConvTranspose1d(cin, cout, kernel, stride, pad, output_padding=stride + 2 * pad - kernel)
        else:
            self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "nn":
            return self.conv(x.repeat_interleave(self.stride, dim=-1))
        return self.conv(x)


# --- the two networks ---------------------------------------------------------------------


class Generator(nn.Module):
    """Latent (and label) to ``(B, channels, window)`` in [-1, 1] (paper table 2, left)."""

    def __init__(self, cfg: Config, channels: int, n_labels: int):
        super().__init__()
        widths, strides = _widths(cfg.model_dim, cfg.window), _strides(cfg.window)
        # one extra embedding row for clips without a label (-1), so unlabelled clips still train
        self.embed = nn.Embedding(n_labels + 1, cfg.label_dim) if n_labels else None
        self.project = nn.Linear(cfg.latent_dim + (cfg.label_dim if n_labels else 0), 16 * widths[0])
        outs = widths[1:] + [channels]
        self.ups = nn.ModuleList(
            UpConv(cin, cout, cfg.kernel_size, s, cfg.upsample)
            for cin, cout, s in zip(widths, outs, strides, strict=True)
        )
        # optional learned FIR filter (release's post_proc_filt_len) to remove periodic artefacts
        n = cfg.post_proc_filt_len
        self.post = nn.Conv1d(channels, channels, n, padding=0, bias=False) if n else None
        self.fast_dtype: torch.dtype | None = None  # bf16 hidden layers in inference (opt-in: output differs slightly)
        self.inference = wavegan_fast.InferenceWeights()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, polyphase: bool = False) -> torch.Tensor:
        """``polyphase=True`` (inference only, under ``torch.no_grad()``) runs the transposed
        convolutions as :mod:`~wavesmith.models.wavegan_fast`'s polyphase convolutions, in
        ``fast_dtype``: the same maths, faster. The ``nn`` upsampler has no such form and ignores it.
        """
        if polyphase and torch.is_grad_enabled():
            raise RuntimeError("Generator(polyphase=True) is for inference: its weights get no gradient")
        if self.embed is not None and labels is not None and labels.is_floating_point():
            z = torch.cat([z, labels.to(z.dtype) @ self.embed.weight[:-1]], dim=1)  # mixed labels: (B, n_labels)
        elif self.embed is not None:
            z = torch.cat([z, self.embed(_unknown_last(labels, self.embed, z))], dim=1)
        x = F.relu(self.project(z)).view(len(z), -1, 16)
        if polyphase and self.ups[0].upsample == "zeros":
            x = wavegan_fast.upsampling_stack(x, [up.conv for up in self.ups], self.inference, self.fast_dtype)
        else:
            for i, up in enumerate(self.ups):
                x = up(x)
                x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(x)
        if self.post is not None:  # "same" length: pad (n-1)//2 left, n//2 right
            k = self.post.kernel_size[0]
            x = self.post(F.pad(x, ((k - 1) // 2, k // 2)))
        return x


class Critic(nn.Module):
    """Clip (and label) to one real-valued score per clip (paper table 2, right).

    With labels the score is ``linear(h) + <embed(y), sum_t h_t>`` (projection critic,
    Miyato & Koyama eq. 3), where ``h`` is the last feature map; the pooled projection keeps
    the embedding as small as the last layer is wide.
    """

    def __init__(self, cfg: Config, channels: int, n_labels: int):
        super().__init__()
        strides = _strides(cfg.window)
        widths = [channels] + [cfg.model_dim << i for i in range(len(strides))]
        k = cfg.kernel_size
        self.convs = nn.ModuleList(
            nn.Conv1d(cin, cout, k, s, padding=k // 2)  # odd k: "same" alignment, length / s
            for cin, cout, s in zip(widths[:-1], widths[1:], strides, strict=True)
        )
        self.n = cfg.phase_shuffle
        self.score = nn.Linear(16 * widths[-1], 1)
        self.embed = nn.Embedding(n_labels + 1, widths[-1]) if n_labels else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)
            if i < len(self.convs) - 1 and self.training:
                x = phase_shuffle(x, self.n)
        x = x.float()  # scores and the projection in float32 even under bf16 autocast: losses are their means
        with torch.autocast(x.device.type, enabled=False):
            out = self.score(x.flatten(1)).squeeze(1)
            if self.embed is not None:
                e = self.embed(_unknown_last(labels, self.embed, x))
                out = out + (e * x.sum(-1)).sum(1)
        return out


def _unknown_last(labels: torch.Tensor | None, embed: nn.Embedding, x: torch.Tensor) -> torch.Tensor:
    """Label ids with -1 (no label) mapped to the embedding's extra last row."""
    unknown = embed.num_embeddings - 1
    if labels is None:
        return torch.full((len(x),), unknown, dtype=torch.long, device=x.device)
    return torch.where(labels < 0, unknown, labels).long()


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None):
    """WGAN-GP penalty (Gulrajani et al. 2017, eq. 3): ``E[(||grad D(x_hat)|| - 1)^2]``.

    ``x_hat`` lies on random points of the lines between real and generated clips. The
    gradient is taken with ``create_graph=True`` so the penalty itself back-propagates
    into the critic's weights (double back-propagation).
    """
    alpha = torch.rand(len(real), 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (real + alpha * (fake - real)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, labels).sum(), x_hat, create_graph=True)
    norm = torch.sqrt(grad.float().square().flatten(1).sum(1) + 1e-12)
    return (norm - 1).square().mean()
