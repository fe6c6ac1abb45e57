"""mel-diffusion: a denoising diffusion model over log-mel frames, decoded by a vocoder.

A clip becomes 80 log-mel bands every 256 samples at 22.05 kHz (the
:mod:`wavesmith.melspec` convention): about 7,000 numbers a second instead of 16,000 to
44,100 samples, and numbers a network can model with far less compute, because the
vocoder supplies the fine structure of the waveform (phase, periodicity) that raw-audio
models must learn themselves. This is the route that made speech and sound synthesis
practical without GPU-weeks (Grad-TTS, DiffSinger, Riffusion, AudioLDM all model a
spectrogram and vocode it).

The denoiser is a 1-D U-Net over frames with the 80 bands as channels (as DiffSinger's
denoiser treats them): residual blocks with group norm, modulated by the noise level and
the class (label and speaker embeddings, each with a "none" entry for classifier-free
guidance); two halvings of the frame rate, self-attention at the lowest rate. The window
is a fixed number of frames; shorter requests are cut from it.

Training follows :mod:`wavesmith.diffusion` (v-prediction on the cosine schedule by
default, each example's loss weighted by Min-SNR-``min_snr``), with the condition dropped
for ``p_uncond`` of the examples. Sampling runs
``steps`` DPM-Solver++ steps with guidance ``guidance``, applied only at the noise levels
whose log-SNR lies in ``guidance_logsnr`` (the plain conditional model elsewhere), and
decodes the frames with the vocoder named in the config, then resamples to the database's
rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith import diffusion as D
from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, OneLossModel, generator_for, rows_by_name


@dataclass
class Config:
    """mel-diffusion's hyper-parameters; the defaults train on a CPU in about an hour."""

    seconds: float = 1.0  # window length; frames are rounded up to a multiple of 4
    # Width of the first U-Net level. Keep it at least the 80 mel bins: narrower, each frame's
    # bins pass through fewer channels than they number, the network cannot tell each bin's
    # noise from its signal, and samples keep a speckle of noise (benchmarks/mel_texture.py;
    # 30 CPU minutes on real drums: 64 channels, fd_logmel of first seconds 1.85x the real
    # floor at accuracy 0.79; 96 with mults 1,1,2, 1.6x at 0.89; README, "Figures").
    channels: int = 96
    mults: tuple[int, ...] = (1, 2, 2)  # width multiplier per level (one halving of frames between levels)
    blocks: int = 2  # residual blocks per level
    attention: bool = True  # self-attention at the lowest frame rate
    dropout: float = 0.0  # dropout inside residual blocks
    schedule: Literal["cosine", "linear"] = "cosine"  # noise schedule (see wavesmith.diffusion)
    prediction: Literal["v", "eps"] = "v"  # what the network predicts
    p_uncond: float = 0.1  # share of training examples with the condition dropped (for guidance)
    # Min-SNR-gamma loss weighting (wavesmith.diffusion.training_loss; 0 = off). On real drums,
    # 30 CPU minutes, test split, it lowered first-second fd_logmel from 29.9 to 26.1 at the
    # same classifier accuracy (0.79), with guidance 4 in place of 3 (README, "Figures").
    min_snr: float = 5.0
    sample_steps: int = 25  # sampling steps by default (at most 25 keeps generation fast)
    sampler: Literal["dpm++", "ddim", "ddpm"] = "dpm++"  # sampler by default
    guidance: float = 4.0  # classifier-free guidance scale by default (1 = plain conditional)
    # Guidance only where the noise level's log-SNR lies in this interval; elsewhere the plain
    # conditional model (Kynkaanniemi et al., 2024). Guiding the noisiest steps costs variety:
    # on real drums after 30 CPU minutes, guidance 2 everywhere gave fd_logmel 35 on the
    # valid split (first seconds, 256 clips) at accuracy 0.84, guidance 3 in [-3, 6] gave 24
    # at 0.84; on the shipped drums model, 89 against 52 (README, "Figures").
    guidance_logsnr: tuple[float, float] = (-3.0, 6.0)
    lr: float = 2e-4  # Adam learning rate
    crops: Literal["start", "random"] = "start"  # "start" keeps one-shots' onsets; "random" for long clips
    mel_mean: float = -5.0  # log-mel values are standardised as (x - mean) / scale
    mel_scale: float = 2.5
    vocoder: str = "universal"  # shipped vocoder name, or a hifigan run folder / checkpoint

    # Checkpoints written before these keys existed sampled and trained this way (config.from_dict).
    ABSENT = {"guidance_logsnr": (-20.0, 20.0), "min_snr": 0.0}

    def validate(self) -> None:
        if not (math.isfinite(self.seconds) and 0 < self.seconds <= 30):
            raise WavesmithError(f"mel-diffusion seconds must be in (0, 30], not {self.seconds}")
        if self.channels < 8 or self.channels % 8 or not self.mults or min(self.mults) < 1 or self.blocks < 1:
            raise WavesmithError("mel-diffusion needs channels >= 8 (a multiple of 8), mults >= 1 and blocks >= 1")
        if not (0 <= self.p_uncond < 1 and 0 <= self.dropout < 1):
            raise WavesmithError("mel-diffusion p_uncond and dropout must lie in [0, 1)")
        if self.sample_steps < 1 or not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise WavesmithError("mel-diffusion needs sample_steps >= 1 and guidance >= 0")
        lo, hi = self.guidance_logsnr
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise WavesmithError(f"mel-diffusion guidance_logsnr must be two finite numbers, low < high, "
                                 f"not {list(self.guidance_logsnr)}")
        D.check_min_snr(self.min_snr, "mel-diffusion min_snr")
        if not (self.lr > 0 and math.isfinite(self.lr) and self.mel_scale > 0):
            raise WavesmithError("mel-diffusion needs lr > 0 and mel_scale > 0")


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the embedding scales and shifts the middle (FiLM)."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv1d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(e)[..., None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    """Multi-head self-attention over frames, residual."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.attn = nn.MultiheadAttention(ch, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)
        return x + self.attn(h, h, h, need_weights=False)[0].transpose(1, 2)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of ``t`` in [0, 1] (scaled by 1000, as DDPM's integer steps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class UNet1d(nn.Module):
    """Noisy frames ``(B, n_mels, F)`` plus time and class embeddings to a prediction of the same shape."""

    def __init__(self, c: Config, n_mels: int, emb: int):
        super().__init__()
        widths = [c.channels * m for m in c.mults]
        self.inp = nn.Conv1d(n_mels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        skips, ch = [widths[0]], widths[0]
        for i, w in enumerate(widths):
            for _ in range(c.blocks):
                self.down.append(ResBlock(ch, w, emb, c.dropout))
                ch = w
                skips.append(ch)
            if i < len(widths) - 1:
                self.pool.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, emb, c.dropout)
        self.mid_attn = Attention(ch) if c.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb, c.dropout)
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(c.blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), w, emb, c.dropout))
                ch = w
            if i > 0:
                self.unpool.append(nn.Conv1d(ch, ch, 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(ch), ch)
        self.out = nn.Conv1d(ch, n_mels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.levels, self.blocks = len(widths), c.blocks

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        hs = [h]
        blocks = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks):
                h = next(blocks)(h, e)
                hs.append(h)
            if level < self.levels - 1:
                h = self.pool[level](h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        blocks = iter(self.up)
        for level in range(self.levels):
            for _ in range(self.blocks + 1):
                h = next(blocks)(torch.cat([h, hs.pop()], dim=1), e)
            if level < self.levels - 1:
                h = self.unpool[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


class MelDiffusion(OneLossModel):
    """Diffusion over log-mel frames, label- and speaker-conditional, decoded by a vocoder."""

    name = "mel-diffusion"
    Config = Config
    sample_options = frozenset({"steps", "guidance", "sampler", "vocoder"})

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        config.validate()
        if info.channels != 1:
            raise WavesmithError("mel-diffusion models mono audio; create the database with --channels 1")
        self.spec = M.HIFIGAN
        self.frames = -(-self.spec.frames(config.seconds) // 4) * 4  # two halvings need a multiple of 4
        emb = 4 * config.channels
        self.time_mlp = nn.Sequential(nn.Linear(config.channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        # One extra row per table: the "no condition" entry that guidance and unlabelled clips use.
        self.label_embed = nn.Embedding(len(info.labels) + 1, emb) if info.labels else None
        self.speaker_embed = nn.Embedding(len(info.speakers) + 1, emb) if info.speakers else None
        self.net = UNet1d(config, self.spec.n_mels, emb)
        self.schedule = D.Schedule(config.schedule)

    # --- what it takes --------------------------------------------------------------------

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset(k for k, names in (("label", self.info.labels), ("speaker", self.info.speakers)) if names)

    @property
    def max_seconds(self) -> float:
        return self.frames * self.spec.hop / self.spec.sample_rate

    @property
    def crop_samples(self) -> int:
        return math.ceil(self.max_seconds * self.info.sample_rate)

    @property
    def random_crops(self) -> bool:
        return self.config.crops == "random"

    @property
    def one_shots(self) -> bool:
        return self.config.crops == "start"  # trained on clips from their onsets: one sound each

    def adapt_weights(self, weights: dict[str, torch.Tensor], trained_on: DataInfo) -> dict[str, torch.Tensor]:
        """Label and speaker rows matched by name; a class the old model never saw starts as its "none" row."""
        for key, old, new in (("label_embed.weight", trained_on.labels, self.info.labels),
                              ("speaker_embed.weight", trained_on.speakers, self.info.speakers)):
            table = weights.pop(key, None)
            if new:
                weights[key] = rows_by_name(table, old, new, getattr(self, key.split(".")[0]).weight)
        return weights

    # --- maths ----------------------------------------------------------------------------

    def to_frames(self, audio: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel frames ``(B, n_mels, frames)`` of audio ``(B, 1, T)`` at the database rate."""
        x = M.to_rate(audio[:, 0], self.info.sample_rate, self.spec.sample_rate)
        x = F.pad(x, (0, max(0, self.frames * self.spec.hop - x.shape[-1])))[..., : self.frames * self.spec.hop]
        return (M.log_mel(x, self.spec) - self.config.mel_mean) / self.config.mel_scale

    def _ids(self, table: nn.Embedding | None, ids: torch.Tensor | None, n: int, drop: torch.Tensor | None):
        if table is None:
            return None
        none = table.num_embeddings - 1
        ids = torch.full((n,), none, dtype=torch.long, device=self.device) if ids is None else ids.long().clone()
        ids[ids < 0] = none
        if drop is not None:
            ids[drop] = none
        return table(ids)

    def denoise(self, x: torch.Tensor, t: torch.Tensor, label=None, speaker=None, drop=None) -> torch.Tensor:
        e = self.time_mlp(timestep_embedding(t, self.config.channels))
        for extra in (self._ids(self.label_embed, label, len(x), drop),
                      self._ids(self.speaker_embed, speaker, len(x), drop)):
            if extra is not None:
                e = e + extra
        return self.net(x, e)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x0 = self.to_frames(batch["audio"])
        n = len(x0)
        u = torch.rand(n, generator=generator, device=x0.device if generator is None else generator.device)
        drop = (u < self.config.p_uncond).to(x0.device)
        label, speaker = batch.get("label"), batch.get("speaker")

        def denoise(x, t):
            return self.denoise(x, t, label, speaker, drop)

        return D.training_loss(denoise, x0, self.schedule, self.config.prediction, generator=generator,
                               min_snr=self.config.min_snr)

    # --- generation -----------------------------------------------------------------------

    def sample_frames(self, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None,
                      steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                      temperature: float = 1.0) -> torch.Tensor:
        """``n`` windows of log-mel frames ``(n, n_mels, frames)`` (natural-log magnitudes)."""
        c = self.config
        conditions = {k: v for k, v in (conditions or {}).items() if v is not None}
        unknown = sorted(set(conditions) - self.accepts)
        if unknown:
            what = ", ".join(sorted(self.accepts)) or "nothing"
            raise WavesmithError(f"this mel-diffusion model cannot use {', '.join(unknown)}; it takes {what}")
        ids = {}
        for key, names in (("label", self.info.labels), ("speaker", self.info.speakers)):
            if key in conditions:
                v = torch.as_tensor(conditions[key], device=self.device).long().reshape(-1).expand(n)
                if int(v.min()) < 0 or int(v.max()) >= len(names):
                    raise WavesmithError(f"{key} id out of range 0..{len(names) - 1}")
                ids[key] = v
        guidance = c.guidance if guidance is None else float(guidance)
        D.guided(lambda x, t, cond: x, guidance)  # refuses a bad scale even when nothing is conditioned
        if not ids:
            guidance = 0.0  # nothing to guide towards: the unconditional model, every class in its proportion
        if not (math.isfinite(temperature) and temperature > 0):
            raise WavesmithError(f"temperature must be a number above 0, not {temperature}")

        def denoise(x, t, conditioned):  # the batch may be the request twice over (guidance)
            twice = len(x) // n
            return self.denoise(x, t, *(ids[k].repeat(twice) if k in ids else None for k in ("label", "speaker")),
                                drop=~conditioned)

        g = generator_for(seed, "cpu")
        noise = torch.randn((n, self.spec.n_mels, self.frames), generator=g) * temperature
        lo, hi = c.guidance_logsnr

        def active(t):
            snr = self.schedule.logsnr(t)
            return (snr >= lo) & (snr <= hi)

        x = D.sample(D.guided(denoise, guidance, active), (n, self.spec.n_mels, self.frames), self.schedule,
                     steps=c.sample_steps if steps is None else steps, sampler=sampler or c.sampler,
                     prediction=c.prediction, generator=g, device=self.device, noise=noise)
        return x * c.mel_scale + c.mel_mean

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``n`` clips of ``seconds`` (at most one window) at the database's rate: ``(n, 1, samples)``.

        ``options``: ``steps``, ``guidance`` and ``sampler`` override the config's defaults;
        ``vocoder`` decodes with another vocoder than the config's (a shipped name or a run).
        ``temperature`` scales the starting noise (below 1: safer, plainer sounds).
        """
        samples = round(seconds * self.info.sample_rate)
        if not (math.isfinite(seconds) and samples >= 1):
            raise WavesmithError(f"seconds must be a positive number, not {seconds}")
        if seconds > self.max_seconds + 1e-9:
            raise WavesmithError(f"this mel-diffusion model makes at most {self.max_seconds:.2f} s per clip, "
                                 f"not {seconds:g} s")
        from wavesmith import vocoder as V

        voc = V.load(options.pop("vocoder", None) or self.config.vocoder, self.device)
        mel = self.sample_frames(n, conditions, seed, temperature=temperature, **options)
        # The vocoder is local: frames past the request (plus a few for its receptive field) need no decoding.
        needed = min(self.frames, math.ceil(seconds * self.spec.frame_rate) + 8)
        wave = voc(mel[..., :needed])
        wave = M.to_rate(wave, self.spec.sample_rate, self.info.sample_rate)
        return wave[..., :samples].clone()
