"""diffwave: DiffWave (Kong, Ping, Huang, Zhao and Catanzaro, ICLR 2021) on the raw waveform.

A non-autoregressive denoiser over samples, written from the paper (section 3, figure 2):

- the noisy waveform goes through a 1x1 convolution to C channels and ReLU;
- the diffusion step becomes a 128-d sinusoidal embedding (frequencies 10^(4 i / 63)),
  two fully connected layers of 512 with Swish, and per residual layer a layer-specific
  fully connected layer to C channels added to the layer's input;
- N residual layers: a bidirectional dilated convolution (kernel 3, C -> 2C, the dilation
  doubling from 1 and restarting every ``dilation_cycle`` layers), plus the condition as a
  bias, a gated tanh * sigmoid unit, and a 1x1 convolution to a residual (added, then
  scaled by 1/sqrt(2)) and a skip output;
- the skips' sum (scaled by 1/sqrt(N)) goes through 1x1 conv, ReLU, 1x1 conv (zero at
  first) to one channel.

Label conditioning is global, as the paper's class-conditional SC09 model: a shared
128-d label embedding and a layer-specific 1x1 projection to 2C added after the dilated
convolution. The embedding has one extra "no label" row, used for unlabelled clips and for
``p_uncond`` of the training examples, so sampling can apply classifier-free guidance
(:func:`wavesmith.diffusion.guided`).

Everything diffusion (schedule, targets, samplers) is :mod:`wavesmith.diffusion`. The
default is the cosine schedule with v-prediction, not the paper's linear betas: the paper's
schedules stop short of pure noise (log-SNR -0.9 at the end of the vocoder's 50 steps
from 1e-4 to 0.05, -1.9 for SC09's 200 steps to 0.02), which a mel-conditioned vocoder
tolerates but which leaves unconditional generation starting from N(0, I) at a noise level
it never saw; the clipped cosine schedule ends at log-SNR -15, and v-prediction keeps the
few-step DPM-Solver++ sampler stable. ``schedule="linear"`` with ``prediction="eps"`` is the
paper's recipe, and ``grid="diffwave6"`` samples on the paper's 6-step fast schedule
(betas 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5) whatever the training schedule.

Sizes: the default (C = 64, 30 layers, cycle 10: the paper's DiffWave BASE, 2.6 M
parameters) is what a CPU can train at all; :data:`SC09` is the paper's unconditional SC09
configuration (C = 256, 36 layers, cycle 12, T = 200 betas to 0.02, 24 M), a GPU job
(``--set residual_channels=256 --set layers=36 ...``). The window is fixed (``seconds``
at the database's rate); longer requests are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith import diffusion as D
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, OneLossModel, generator_for

# The paper's fast sampling schedule for its T = 50 models (section 4 and appendix B).
FAST_BETAS = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)
# The paper's unconditional SC09 model (section 5.2): Config(**SC09).
SC09 = {"residual_channels": 256, "layers": 36, "dilation_cycle": 12, "schedule": "linear", "beta_end": 0.02,
        "diffusion_steps": 200, "prediction": "eps", "sample_steps": 200, "sampler": "ddpm"}
STEP_DIM, STEP_HIDDEN, LABEL_DIM = 128, 512, 128


@dataclass
class Config:
    """DiffWave's hyper-parameters; the defaults are the paper's BASE network on the cosine schedule."""

    seconds: float = 1.0  # window length in seconds at the database's rate
    residual_channels: int = 64  # C
    layers: int = 30  # N residual layers
    dilation_cycle: int = 10  # dilations 1, 2, ..., 2^(cycle-1), then again
    conditional: bool = True  # condition on the database's labels when it has any
    schedule: Literal["cosine", "linear"] = "cosine"  # noise schedule (see the module docstring)
    beta_start: float = 1e-4  # linear schedule: first beta
    beta_end: float = 0.05  # linear schedule: last beta (the paper's vocoder; 0.02 for SC09)
    diffusion_steps: int = 50  # linear schedule: T; also scales the step embedding
    prediction: Literal["v", "eps"] = "v"  # what the network predicts
    p_uncond: float = 0.1  # share of training examples with the label dropped (for guidance)
    sample_steps: int = 12  # sampling steps by default (grid="logsnr")
    sampler: Literal["dpm++", "ddim", "ddpm"] = "dpm++"
    grid: Literal["logsnr", "diffwave6"] = "logsnr"  # sampling times: even in log-SNR, or the paper's 6 steps
    guidance: float = 1.0  # classifier-free guidance scale by default (1 = plain conditional)
    lr: float = 2e-4  # Adam learning rate (the paper's)
    crops: Literal["start", "random"] = "start"  # "start" keeps one-shots' onsets; "random" for long clips

    def validate(self) -> None:
        if not (math.isfinite(self.seconds) and 0 < self.seconds <= 30):
            raise WavesmithError(f"diffwave seconds must be in (0, 30], not {self.seconds}")
        if self.residual_channels < 1 or self.layers < 1 or self.dilation_cycle < 1:
            raise WavesmithError("diffwave needs residual_channels, layers and dilation_cycle of at least 1")
        if self.dilation_cycle > 20:
            raise WavesmithError(f"diffwave dilation_cycle must be at most 20, not {self.dilation_cycle}")
        if self.diffusion_steps < 1 or not 0 < self.beta_start <= self.beta_end < 1:
            raise WavesmithError("diffwave needs diffusion_steps >= 1 and 0 < beta_start <= beta_end < 1")
        if not 0 <= self.p_uncond < 1:
            raise WavesmithError(f"diffwave p_uncond must lie in [0, 1), not {self.p_uncond}")
        if self.sample_steps < 1:
            raise WavesmithError(f"diffwave sample_steps must be at least 1, not {self.sample_steps}")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise WavesmithError(f"the guidance scale must be at least 0, not {self.guidance}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise WavesmithError(f"diffwave lr must be above 0, not {self.lr}")


def step_embedding(t: torch.Tensor, scale: float) -> torch.Tensor:
    """The paper's 128-d sinusoidal embedding of the step ``t * scale`` (``t`` in [0, 1])."""
    half = STEP_DIM // 2
    freqs = 10.0 ** (torch.arange(half, device=t.device, dtype=torch.float32) * 4.0 / (half - 1))
    angles = (t.float() * scale)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResidualLayer(nn.Module):
    def __init__(self, channels: int, dilation: int, conditional: bool):
        super().__init__()
        self.step = nn.Linear(STEP_HIDDEN, channels)
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.label = nn.Conv1d(LABEL_DIM, 2 * channels, 1) if conditional else None
        self.out = nn.Conv1d(channels, 2 * channels, 1)
        nn.init.kaiming_normal_(self.dilated.weight)
        nn.init.kaiming_normal_(self.out.weight)

    def forward(self, x: torch.Tensor, step: torch.Tensor, label: torch.Tensor | None):
        h = self.dilated(x + self.step(step)[..., None])
        if self.label is not None and label is not None:
            h = h + self.label(label[..., None])
        a, b = h.chunk(2, dim=1)
        residual, skip = self.out(torch.tanh(a) * torch.sigmoid(b)).chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWaveNet(nn.Module):
    """The denoiser: noisy waveform ``(B, 1, T)``, times ``(B,)``, label embeddings to a prediction."""

    def __init__(self, c: Config, conditional: bool):
        super().__init__()
        ch = c.residual_channels
        self.inp = nn.Conv1d(1, ch, 1)
        self.step_mlp = nn.Sequential(nn.Linear(STEP_DIM, STEP_HIDDEN), nn.SiLU(),
                                      nn.Linear(STEP_HIDDEN, STEP_HIDDEN), nn.SiLU())
        self.layers = nn.ModuleList(ResidualLayer(ch, 2 ** (i % c.dilation_cycle), conditional)
                                    for i in range(c.layers))
        self.skip_out = nn.Conv1d(ch, ch, 1)
        self.out = nn.Conv1d(ch, 1, 1)
        nn.init.zeros_(self.out.weight)  # the network starts by predicting zero
        nn.init.zeros_(self.out.bias)
        self.step_scale = float(c.diffusion_steps)

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.inp(x))
        step = self.step_mlp(step_embedding(t, self.step_scale))
        skips = 0.0
        for layer in self.layers:
            h, skip = layer(h, step, label)
            skips = skips + skip
        h = F.relu(self.skip_out(skips / math.sqrt(len(self.layers))))
        return self.out(h)


class DiffWave(OneLossModel):
    """DiffWave on the raw waveform, unconditional or label-conditional with guidance."""

    name = "diffwave"
    Config = Config
    train_defaults = {"ema_decay": 0.999, "grad_clip": 1.0}
    sample_options = frozenset({"steps", "sampler", "grid", "guidance"})  # what generate may pass to sample

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        config.validate()
        if info.channels != 1:
            raise WavesmithError("diffwave models mono audio; create the database with --channels 1")
        self.window = round(config.seconds * info.sample_rate)
        if self.window < 1:
            raise WavesmithError(f"a diffwave window of {config.seconds} s is shorter than one sample")
        conditional = config.conditional and bool(info.labels)
        # The extra last row is "no label" (unlabelled clips, dropped labels, unguided sampling).
        self.label_embed = nn.Embedding(len(info.labels) + 1, LABEL_DIM) if conditional else None
        self.net = DiffWaveNet(config, conditional)
        self.schedule = D.Schedule(config.schedule, beta_start=config.beta_start, beta_end=config.beta_end,
                                   steps=config.diffusion_steps)

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"label"}) if self.label_embed is not None else frozenset()

    @property
    def max_seconds(self) -> float:
        return self.window / self.info.sample_rate

    @property
    def crop_samples(self) -> int:
        return self.window

    @property
    def random_crops(self) -> bool:
        return self.config.crops == "random"

    # --- maths ----------------------------------------------------------------------------

    def _label(self, ids: torch.Tensor | None, n: int, drop: torch.Tensor | None) -> torch.Tensor | None:
        if self.label_embed is None:
            return None
        none = self.label_embed.num_embeddings - 1
        ids = torch.full((n,), none, dtype=torch.long, device=self.device) if ids is None else ids.long().clone()
        ids[ids < 0] = none
        if drop is not None:
            ids[drop] = none
        return self.label_embed(ids)

    def denoise(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, t, self._label(label, len(x), drop))

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x0 = batch["audio"]
        u = torch.rand(len(x0), generator=generator, device=x0.device if generator is None else generator.device)
        drop = (u < self.config.p_uncond).to(x0.device)
        label = batch.get("label")
        return D.training_loss(lambda x, t: self.denoise(x, t, label, drop), x0, self.schedule,
                               self.config.prediction, generator=generator)

    # --- generation -----------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``n`` clips of ``seconds`` (at most one window): ``(n, 1, samples)`` at the database's rate.

        ``options``: ``steps``, ``sampler``, ``grid`` and ``guidance`` override the config's
        defaults. ``temperature`` scales the starting noise.
        """
        c = self.config
        samples = round(seconds * self.info.sample_rate) if math.isfinite(seconds) else 0
        if samples < 1:
            raise WavesmithError(f"seconds must be a positive number, not {seconds}")
        if seconds > self.max_seconds + 1e-9:
            raise WavesmithError(f"this diffwave model makes at most {self.max_seconds:.3g} s per clip, "
                                 f"not {seconds:g} s")
        if not (math.isfinite(temperature) and temperature > 0):
            raise WavesmithError(f"temperature must be a number above 0, not {temperature}")
        conditions = {k: v for k, v in (conditions or {}).items() if v is not None}
        unknown = sorted(set(conditions) - self.accepts)
        if unknown:
            what = ", ".join(sorted(self.accepts)) or "nothing"
            raise WavesmithError(f"this diffwave model cannot use {', '.join(unknown)}; it takes {what}")
        label = None
        if "label" in conditions:
            label = torch.as_tensor(conditions["label"], device=self.device).long().reshape(-1).expand(n)
            if int(label.min()) < 0 or int(label.max()) >= len(self.info.labels):
                raise WavesmithError(f"label id out of range 0..{len(self.info.labels) - 1}")
        guidance = float(options.get("guidance", c.guidance))
        if not (math.isfinite(guidance) and guidance >= 0):
            raise WavesmithError(f"the guidance scale must be at least 0, not {guidance}")
        grid_kind = options.get("grid", c.grid)
        if grid_kind not in ("logsnr", "diffwave6"):
            raise WavesmithError(f"diffwave grid must be 'logsnr' or 'diffwave6', not {grid_kind!r}")
        grid = D.grid_for_betas(list(FAST_BETAS), self.schedule) if grid_kind == "diffwave6" else None

        def denoise(x, t, conditioned):
            # ``conditioned`` is one bool, or a bool per row when guidance batches both halves.
            keep = torch.as_tensor(conditioned, device=x.device).expand(len(x))
            return self.denoise(x, t, None if label is None else label.repeat(len(x) // n), drop=~keep)

        g = generator_for(seed, "cpu")
        shape = (n, 1, self.window)
        noise = torch.randn(shape, generator=g) * temperature
        x = D.sample(D.guided(denoise, guidance if label is not None else 0.0), shape, self.schedule,
                     steps=int(options.get("steps", c.sample_steps)), sampler=options.get("sampler", c.sampler),
                     prediction=c.prediction, generator=g, device=self.device, grid=grid, noise=noise)
        return x[..., :samples].clamp(-1.0, 1.0)
