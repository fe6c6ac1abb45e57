"""Fit a low-rank HiFi-GAN generator to a full one in closed form, layer by layer.

A V1 generator spends nearly all its operations in the residual blocks' ``C -> C``
convolutions. :func:`wavesmith.models.hifigan_nets.lowrank` replaces each by a rank-``r``
pair (``C -> r`` with the kernel, then ``r -> C`` pointwise). Cutting V1's weights to rank
``r`` by their singular values wrecks its output: the errors of 72 convolutions compound.
What works is to fit each convolution to the data it will see (reduced-rank regression;
the "data-aware" factorisation of network compression, e.g. Zhang et al., 2016, for
convolutions):

1. run the teacher and the student side by side over log-mel frames of real audio;
2. at each residual convolution, with ``X`` the student's own input there (unfolded over the
   kernel, plus a constant for the bias) and ``Y`` the teacher's output at the same place,
   solve the ridge regression ``A = Y X^T (X X^T + lambda I)^-1``;
3. keep the ``r`` principal directions ``U`` of the fitted outputs ``A X``: the student's
   ``reduce`` is ``U^T A`` and its ``expand`` is ``U``, the best rank-``r`` map of those
   inputs to those outputs in squared error;
4. go on from the student's output, so each later layer corrects the drift of the earlier ones.

No gradient step is taken; gradient distillation can start from the result (the
``hifigan-lowrank`` student of ``distilled-vocoder`` does both).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith.models.hifigan_nets import SLOPE, Generator, LowRankConv1d


def _unfold(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``(B, C, T)`` to ``(B, C * K, T)``: each output position's receptive field."""
    return F.unfold(x[:, :, None], (1, conv.kernel_size[0]), dilation=(1, conv.dilation[0]),
                    padding=(0, conv.padding[0]))


@torch.no_grad()
def fit_conv(student: LowRankConv1d, teacher: nn.Conv1d, x: torch.Tensor, target: torch.Tensor,
             columns: int = 60_000, ridge: float = 1e-3, generator: torch.Generator | None = None) -> None:
    """Set ``student``'s weights so that ``student(x)`` best matches ``target`` ``(B, C, T)`` at its rank.

    ``columns``: positions sampled (evenly over the batch) for the normal equations;
    ``ridge``: lambda relative to the inputs' mean power.
    """
    c_in, kernel = teacher.in_channels, teacher.kernel_size[0]
    rank = student.reduce.out_channels
    dim = c_in * kernel + 1
    dev = x.device  # the normal equations are summed where the activations are (a GPU's float64 is slow, not wrong)
    sxx = torch.zeros(dim, dim, dtype=torch.float64, device=dev)
    syx = torch.zeros(target.shape[1], dim, dtype=torch.float64, device=dev)
    per = max(1, columns // x.shape[0])
    for b in range(x.shape[0]):
        cols = _unfold(x[b: b + 1].float(), teacher)[0]
        pick = torch.randperm(cols.shape[1], generator=generator)[:per].to(dev)
        xb = torch.cat([cols[:, pick], torch.ones(1, len(pick), device=dev)]).double()
        sxx += xb @ xb.T
        syx += target[b][:, pick].double() @ xb.T
    diag = torch.ones(dim, dtype=torch.float64, device=dev)
    diag[-1] = 0.0  # the bias is not shrunk
    lam = ridge * float(sxx.diagonal()[:-1].mean())
    a = torch.linalg.solve(sxx + lam * torch.diag(diag), syx.T).T  # (C_out, dim)
    values, vectors = torch.linalg.eigh(a @ sxx @ a.T)
    u = vectors[:, values.argsort(descending=True)[:rank]]  # (C_out, r)
    b_ = u.T @ a
    student.reduce.weight.copy_(b_[:, :-1].reshape(rank, c_in, kernel).float())
    student.reduce.bias.copy_(b_[:, -1].float())
    student.expand.weight.copy_(u[:, :, None].float())
    student.expand.bias.zero_()


@torch.no_grad()
def fit_generator(student: Generator, teacher: Generator, mels: torch.Tensor, columns: int = 60_000,
                  ridge: float = 1e-3, seed: int = 0) -> list[float]:
    """Fit every :class:`LowRankConv1d` of ``student`` (in place) to ``teacher`` on log-mel frames ``(B, 80, F)``.

    Every other weight of ``student`` is set to the teacher's. Both must share the teacher's
    shape but for rank. Returns each stage's relative squared error after it was fitted.
    """
    if teacher.shape.rank < 1 or dataclasses.replace(student.shape, rank=1.0) != teacher.shape:
        raise ValueError("the student must be a low-rank copy of a full-rank teacher's shape")
    own = {k: v for k, v in teacher.state_dict().items() if not k.startswith("resblocks.")}
    student.load_state_dict(own, strict=False)
    g = torch.Generator().manual_seed(seed)
    n = len(teacher.shape.block_kernels)
    xt = teacher.conv_pre(mels)
    xs = xt.clone()
    errors = []
    for i, (up_t, up_s) in enumerate(zip(teacher.ups, student.ups, strict=True)):
        xt, xs = up_t(F.leaky_relu(xt, SLOPE)), up_s(F.leaky_relu(xs, SLOPE))
        sum_t, sum_s = 0, 0
        for j in range(n):
            bt, bs = teacher.resblocks[i * n + j], student.resblocks[i * n + j]
            ht, hs = xt, xs
            for k in range(len(bt.convs1)):
                pairs = [(bt.convs1[k], bs.convs1[k])] + ([(bt.convs2[k], bs.convs2[k])] if bt.convs2 else [])
                yt, ys = ht, hs
                for conv_t, conv_s in pairs:
                    inp = F.leaky_relu(ys, SLOPE)
                    yt = conv_t(F.leaky_relu(yt, SLOPE))
                    if isinstance(conv_s, LowRankConv1d):
                        fit_conv(conv_s, conv_t, inp, yt, columns, ridge, g)
                    ys = conv_s(inp)
                ht, hs = ht + yt, hs + ys
            sum_t, sum_s = sum_t + ht, sum_s + hs
        xt, xs = sum_t / n, sum_s / n
        errors.append(float((xs - xt).pow(2).mean() / xt.pow(2).mean().clamp_min(1e-12)))
    return errors
