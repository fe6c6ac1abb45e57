"""One diffusion core: noise schedules, training targets, samplers and guidance.

Every diffusion model in wavesmith (``mel-diffusion``, ``diffwave``) imports this module
and carries no sampler of its own. It is written in continuous time: ``t`` runs from 0
(data) to 1 (noise) and a schedule gives the log signal-to-noise ratio ``logsnr(t)``, with

    x_t = alpha_t x_0 + sigma_t eps,   alpha_t^2 = sigmoid(logsnr),  sigma_t^2 = sigmoid(-logsnr)

(the variance-preserving process of Ho et al., 2020, in the notation of Kingma et al.,
"Variational Diffusion Models", 2021). Discrete schedules such as DiffWave's linear betas
become continuous by interpolating ``log alpha_bar`` between their steps, so a model
trained on one may be sampled on any grid of times.

Predictions (Salimans and Ho, 2022, section 4): ``eps`` (the noise), or ``v = alpha eps
- sigma x_0``, which stays well scaled at both ends of the schedule.

Samplers, each a loop over a decreasing grid of times:

- ``ddpm``: ancestral sampling from the true posterior q(x_s | x_t, x_0) (Ho et al., eq. 7);
- ``ddim``: the deterministic DDIM update (Song et al., 2021, eq. 12 with eta = 0);
- ``dpm++``: DPM-Solver++(2M) (Lu et al., 2022, algorithm 2), a second-order multistep
  solver of the probability-flow ODE in data prediction, good in 10 to 25 steps.

Classifier-free guidance (Ho and Salimans, 2022): the model is trained with its condition
dropped some of the time, and sampling mixes ``uncond + w (cond - uncond)``; ``w = 1`` is
the plain conditional model, ``w = 0`` the unconditional one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from wavesmith.errors import WavesmithError

# denoise(x_t, t) -> the model's prediction (eps or v); t is (B,) in [0, 1].
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SAMPLERS = ("ddpm", "ddim", "dpm++")
PREDICTIONS = ("v", "eps")


@dataclass(frozen=True)
class Schedule:
    """A noise schedule as ``logsnr(t)``.

    ``cosine``: the cosine schedule (Nichol and Dhariwal, 2021) with its log-SNR clipped
    to [``logsnr_min``, ``logsnr_max``] by shifting the angle (as in Hoogeboom et al., 2023,
    "simple diffusion"), so no time has an infinite SNR. ``linear``: ``steps`` betas evenly
    from ``beta_start`` to ``beta_end`` (DDPM, DiffWave: 1e-4 to 0.05 over 50 steps).
    """

    kind: str = "cosine"
    logsnr_min: float = -15.0
    logsnr_max: float = 15.0
    beta_start: float = 1e-4
    beta_end: float = 0.05
    steps: int = 50

    def __post_init__(self):
        if self.kind not in ("cosine", "linear"):
            raise WavesmithError(f"noise schedule must be 'cosine' or 'linear', not {self.kind!r}")
        if not self.logsnr_min < self.logsnr_max:
            raise WavesmithError("the schedule needs logsnr_min < logsnr_max")
        if self.kind == "linear" and not (0 < self.beta_start <= self.beta_end < 1 and self.steps >= 1):
            raise WavesmithError("a linear schedule needs 0 < beta_start <= beta_end < 1 and steps >= 1")

    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        t = t.double()
        if self.kind == "cosine":
            lo = math.atan(math.exp(-0.5 * self.logsnr_max))
            hi = math.atan(math.exp(-0.5 * self.logsnr_min))
            out = -2.0 * torch.log(torch.tan(lo + t.clamp(0, 1) * (hi - lo)))
        else:
            betas = torch.linspace(self.beta_start, self.beta_end, self.steps, dtype=torch.float64)
            log_ab = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.log1p(-betas), 0)])
            pos = t.clamp(0, 1) * self.steps
            k = pos.floor().clamp(max=self.steps - 1).long()
            frac = pos - k
            la = log_ab[k] * (1 - frac) + log_ab[k + 1] * frac  # log alpha_bar, piecewise linear in t
            out = la - torch.log(-torch.expm1(la).clamp(max=-1e-300))
        return out.clamp(self.logsnr_min, self.logsnr_max).float()

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t)`` at times ``t``."""
        snr = self.logsnr(t)
        return torch.sigmoid(snr).sqrt(), torch.sigmoid(-snr).sqrt()


def _expand(a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return a.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def to_x0_eps(pred: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
              prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean signal and the noise that a prediction of ``x`` implies."""
    a, s = _expand(alpha, x), _expand(sigma, x)
    if prediction == "v":
        return a * x - s * pred, s * x + a * pred
    return (x - s * pred) / a, pred


def check_min_snr(gamma: float, name: str = "min_snr") -> float:
    """``gamma`` if it is a usable Min-SNR-gamma (a number >= 0; 0 turns the weighting off)."""
    if not (math.isfinite(gamma) and gamma >= 0):
        raise WavesmithError(f"{name} must be a number >= 0 (0 = off), not {gamma}")
    return gamma


def training_loss(denoise: Denoiser, x0: torch.Tensor, schedule: Schedule, prediction: str = "v",
                  mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  min_snr: float = 0.0) -> torch.Tensor:
    """Mean squared error of the prediction at a uniformly drawn time per example.

    ``mask`` (broadcastable to ``x0``) weights positions, e.g. zero past a clip's end.
    ``min_snr`` > 0 weighs each example by Min-SNR-gamma (Hang et al., 2023): its error in
    ``x_0`` counts with weight ``min(SNR, gamma)``, so nearly clean examples, whose denoising
    is easy and whose gradients conflict with the noisy ones', stop dominating. In terms of
    the predicted target that is ``min(SNR, gamma) / (SNR + 1)`` for ``v`` and
    ``min(SNR, gamma) / SNR`` for ``eps``.
    """
    if prediction not in PREDICTIONS:
        raise WavesmithError(f"prediction must be one of {', '.join(PREDICTIONS)}, not {prediction!r}")
    check_min_snr(min_snr)
    n = x0.shape[0]
    t = torch.rand(n, generator=generator, device=x0.device if generator is None else generator.device)
    t = t.to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=t.device if generator is None else generator.device)
    eps = eps.to(x0.device, x0.dtype)
    alpha, sigma = schedule.alpha_sigma(t)
    a, s = _expand(alpha, x0), _expand(sigma, x0)
    xt = a * x0 + s * eps
    target = a * eps - s * x0 if prediction == "v" else eps
    err = (denoise(xt, t) - target) ** 2
    if min_snr > 0:
        snr = (alpha.double() / sigma.double()) ** 2
        weight = snr.clamp(max=min_snr) / (snr + 1 if prediction == "v" else snr)
        err = err * _expand(weight, err)
    if mask is None:
        return err.mean()
    mask = mask.expand_as(err).to(err.dtype)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def time_grid(steps: int, schedule: Schedule, spacing: str = "logsnr") -> torch.Tensor:
    """``steps + 1`` decreasing times from 1 to 0: evenly in ``t`` or in log-SNR."""
    if steps < 1:
        raise WavesmithError(f"sampling needs at least 1 step, not {steps}")
    if spacing == "time":
        return torch.linspace(1.0, 0.0, steps + 1)
    if spacing != "logsnr":
        raise WavesmithError(f"grid spacing must be 'time' or 'logsnr', not {spacing!r}")
    # Invert logsnr(t) numerically: it is monotone, and a fine table is exact enough.
    fine = torch.linspace(0.0, 1.0, 4097)
    table = schedule.logsnr(fine)
    targets = torch.linspace(float(table[-1]), float(table[0]), steps + 1)
    idx = torch.searchsorted(-table.contiguous(), -targets).clamp(1, len(fine) - 1)
    lo, hi = table[idx - 1], table[idx]
    frac = ((lo - targets) / (lo - hi).clamp_min(1e-12)).clamp(0, 1)
    grid = fine[idx - 1] + frac * (fine[idx] - fine[idx - 1])
    grid[0], grid[-1] = 1.0, 0.0
    return grid


def grid_for_betas(betas: list[float], schedule: Schedule) -> torch.Tensor:
    """Times whose noise levels equal those of a short discrete schedule (DiffWave's fast sampling).

    The ``k``-th time (from the end) has ``alpha_bar = prod(1 - betas[:k+1])``; the grid
    ends at 0.
    """
    if not betas or not all(0 < b < 1 for b in betas):
        raise WavesmithError("a fast schedule needs betas in (0, 1)")
    ab = torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0)
    snr = torch.log(ab / (1 - ab)).float()
    fine = torch.linspace(0.0, 1.0, 4097)
    table = schedule.logsnr(fine)
    idx = torch.searchsorted(-table.contiguous(), -snr).clamp(0, len(fine) - 1)
    times = fine[idx].flip(0)
    return torch.cat([times, torch.zeros(1)])


def guided(denoise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], scale: float,
           active: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Denoiser:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)``, both halves in one batched call.

    ``denoise(x, t, conditioned)`` predicts with the model's condition where the bool tensor
    ``conditioned`` (B,) is true and with it dropped elsewhere. ``scale == 1`` needs only the
    conditional half, ``scale == 0`` only the unconditional one. ``active(t)`` (a bool per
    row) limits guidance to some noise levels: elsewhere the plain conditional prediction
    is used, at half the cost (guidance in a limited interval: Kynkaanniemi et al., 2024).
    """
    if not math.isfinite(scale) or scale < 0:
        raise WavesmithError(f"the guidance scale must be at least 0, not {scale}")

    def one_half(x: torch.Tensor, t: torch.Tensor, conditioned: bool) -> torch.Tensor:
        return denoise(x, t, torch.full((len(x),), conditioned, device=x.device))

    if scale in (0.0, 1.0):
        return lambda x, t: one_half(x, t, scale == 1.0)

    def both(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        on = None if active is None else active(t).to(x.device)
        if on is not None and not bool(on.any()):
            return one_half(x, t, True)
        n = len(x)
        keep = torch.arange(2 * n, device=x.device) < n
        cond, uncond = denoise(torch.cat([x, x]), torch.cat([t, t]), keep).split(n)
        mixed = uncond + scale * (cond - uncond)
        if on is None or bool(on.all()):
            return mixed
        return torch.where(on.reshape(-1, *([1] * (x.dim() - 1))), mixed, cond)

    return both


@torch.no_grad()
def sample(denoise: Denoiser, shape: tuple[int, ...], schedule: Schedule, steps: int = 25,
           sampler: str = "dpm++", prediction: str = "v", generator: torch.Generator | None = None,
           device: torch.device | str = "cpu", grid: torch.Tensor | None = None,
           noise: torch.Tensor | None = None) -> torch.Tensor:
    """Draw ``shape`` samples by integrating from noise at t = 1 to data at t = 0.

    ``grid`` overrides the times (decreasing, from 1 to 0); otherwise ``steps`` steps even
    in log-SNR. Noise comes from ``generator`` (drawn on its device, then moved), so a
    seed gives the same result on any device.
    """
    if sampler not in SAMPLERS:
        raise WavesmithError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if prediction not in PREDICTIONS:
        raise WavesmithError(f"prediction must be one of {', '.join(PREDICTIONS)}, not {prediction!r}")
    ts = time_grid(steps, schedule) if grid is None else grid.float()
    gen_device = generator.device if generator is not None else device

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=gen_device).to(device)

    x = randn() if noise is None else noise.to(device)
    alphas, sigmas = schedule.alpha_sigma(ts)
    lambdas = torch.log(alphas / sigmas)
    previous_x0, previous_h = None, None
    n = shape[0]
    for i in range(len(ts) - 1):
        t = ts[i]
        at, st, as_, ss = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        pred = denoise(x, torch.full((n,), float(t), device=device))
        x0, eps = to_x0_eps(pred, x, at.expand(n), st.expand(n), prediction)
        if sampler == "ddim":
            x = as_ * x0 + ss * eps
        elif sampler == "ddpm":
            a_ts = at / as_
            var_ts = (st**2 - a_ts**2 * ss**2).clamp_min(0)
            mean = (a_ts * ss**2 / st**2) * x + (as_ * var_ts / st**2) * x0
            x = mean if i == len(ts) - 2 else mean + (var_ts * ss**2 / st**2).sqrt() * randn()
        else:
            h = lambdas[i + 1] - lambdas[i]
            last = i == len(ts) - 2
            if previous_x0 is None or last:
                d = x0  # first step, and the last (lower order at the end keeps few-step runs stable)
            else:
                r = previous_h / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0
            x = (ss / st) * x - as_ * torch.expm1(-h) * d
            previous_x0, previous_h = x0, h
    return x
