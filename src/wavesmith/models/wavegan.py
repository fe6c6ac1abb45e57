"""WaveGAN: a generator and a critic trained against each other on raw audio.

Donahue, McAuley and Puckette, "Adversarial Audio Synthesis", ICLR 2019 (arXiv:1802.04208),
with the longer windows (32768 and 65536 samples) of its later public release. The
generator maps a 100-d latent ``z ~ U[-1, 1]`` to a whole clip in one forward pass:

    z -> dense -> (16, 16d) -> [transposed conv k25 s4, ReLU] x 4 -> transposed conv -> tanh

and the critic ("discriminator") mirrors it with strided convolutions, LeakyReLU(0.2) and
*phase shuffle* (section 3.3), ending in one linear score. Training is WGAN-GP
(Gulrajani et al. 2017): five critic updates per generator update, lambda = 10, Adam 1e-4
with betas (0.5, 0.9). Everything is counted in samples, so any database rate works; the
default window of 16384 samples is about 1 s at 16 kHz.

Additions to the paper, each optional or free when unused:

- class conditioning when the database has labels: a label embedding concatenated to ``z``
  (Mirza & Osindero 2014) and a projection critic (Miyato & Koyama 2018, eq. 3);
- ``upsample="nn"``: nearest-neighbour upsampling then a convolution instead of a transposed
  convolution (the paper's section 3.2 alternative, less checkerboard buzz);
- training logs that show failure: the critic's accuracy and a ``critic_wins`` flag, and the
  batch's spectral diversity next to that of real clips (collapse and steady tones show as
  ``diversity_ratio`` falling towards 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith.audio import log_mel
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, GenerativeModel, NextBatch, Update, generator_for

# The paper's 16384 and the release's 32768 and 65536; 1024 and 4096 (one or two upsampling
# layers fewer) are small windows for tests and tiny sounds.
WINDOWS = (1024, 4096, 16384, 32768, 65536)


@dataclass
class Config:
    window: int = 16384  # output length in samples: 16384, 32768 or 65536 (1, 2, 4 s at 16 kHz) or small 1024, 4096
    latent_dim: int = 100  # size of the latent z, drawn uniformly from [-1, 1]
    model_dim: int = 64  # d: width multiplier of both networks (layers have d..32d channels)
    kernel_size: int = 25  # length of every convolution kernel
    phase_shuffle: int = 2  # n: the critic shifts each layer's activations by a random -n..n samples
    upsample: Literal["zeros", "nn"] = "zeros"  # zeros: transposed conv (paper); nn: repeat samples, then conv
    post_proc_filt_len: int = 0  # learned FIR filter on the output (paper option: 512); 0 turns it off
    label_dim: int = 32  # size of the label embedding appended to z (models of labelled databases)
    n_critic: int = 5  # critic updates per generator update
    gp_weight: float = 10.0  # lambda: weight of the WGAN-GP gradient penalty
    lr: float = 1e-4  # Adam learning rate of both networks
    beta1: float = 0.5  # Adam beta1 of both networks
    beta2: float = 0.9  # Adam beta2 of both networks

    def validate(self) -> None:
        if self.window not in WINDOWS:
            raise WavesmithError(f"wavegan window must be one of {', '.join(map(str, WINDOWS))}, not {self.window}")
        for name in ("latent_dim", "model_dim", "n_critic"):
            if getattr(self, name) < 1:
                raise WavesmithError(f"wavegan {name} must be at least 1")
        if self.kernel_size < 5 or self.kernel_size % 2 == 0:
            raise WavesmithError(f"wavegan kernel_size must be odd and at least 5, not {self.kernel_size}")
        if self.phase_shuffle < 0 or self.post_proc_filt_len < 0:
            raise WavesmithError("wavegan phase_shuffle and post_proc_filt_len must be >= 0")


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
    alternative). :meth:`forward_fast` is the same transposed convolution for inference.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, upsample: str):
        super().__init__()
        self.stride, self.upsample = stride, upsample
        if upsample == "zeros":
            pad = math.ceil((kernel - stride) / 2)  # output_padding below makes the length exactly stride * L
            self.conv = nn.ConvTranspose1d(cin, cout, kernel, stride, pad, output_padding=stride + 2 * pad - kernel)
        else:
            self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2)
        self._cache: dict[tuple[str, torch.dtype], tuple] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "nn":
            return self.conv(x.repeat_interleave(self.stride, dim=-1))
        return self.conv(x)

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: channels-last ``(B, Cin, 1, L)`` to channels-last ``(B, Cout, 1, stride * L)``.

        The transposed convolution as ``stride`` ordinary convolutions, one per output phase
        (:func:`polyphase_weight`), stacked into one conv2d. In channels-last memory its
        output row ``m`` holds output samples ``stride*m .. stride*m + stride-1``: already
        interleaved, so the reshape to the upsampled signal copies nothing.
        """
        w, bias, left, right = self.cached("polyphase", x.dtype)
        if left != right:
            x, left = F.pad(x, (left, right)).contiguous(memory_format=torch.channels_last), 0
        y = F.conv2d(x, w, bias, padding=(0, left))
        b, _, _, length = y.shape
        return y.permute(0, 2, 3, 1).reshape(b, 1, length * self.stride, -1).permute(0, 3, 1, 2)

    def cached(self, kind: str, dtype: torch.dtype) -> tuple:
        """Inference weights derived from the parameters, rebuilt whenever they change."""
        weight, bias = self.conv.weight.detach(), self.conv.bias.detach()
        key = (weight._version, weight.data_ptr(), weight.device)
        if (kind, dtype) not in self._cache or self._cache[kind, dtype][0] != key:
            if kind == "polyphase":
                w, left, right = polyphase_weight(weight, self.stride, self.conv.padding[0])
                w = w[:, :, None, :].to(dtype).contiguous(memory_format=torch.channels_last)
                value = (w, bias.repeat(self.stride).to(dtype), left, right)
            else:
                value = (weight.to(dtype), bias.to(dtype))
            self._cache[kind, dtype] = (key, *value)
        return self._cache[kind, dtype][1:]


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

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None and labels.is_floating_point():
            z = torch.cat([z, labels.to(z.dtype) @ self.embed.weight[:-1]], dim=1)  # mixed labels: (B, n_labels)
        elif self.embed is not None:
            z = torch.cat([z, self.embed(_unknown_last(labels, self.embed, z))], dim=1)
        x = F.relu(self.project(z)).view(len(z), -1, 16)
        if not torch.is_grad_enabled() and self.ups[0].upsample == "zeros":
            x = self._forward_fast(x)
        else:
            for i, up in enumerate(self.ups):
                x = up(x)
                x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(x)
        if self.post is not None:  # "same" length: pad (n-1)//2 left, n//2 right
            k = self.post.kernel_size[0]
            x = self.post(F.pad(x, ((k - 1) // 2, k // 2)))
        return x

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """The same maths for inference, about 1.25x faster on CPUs (benchmarks/wavegan_speed.py).

        The first layer stays the library's transposed convolution: reading its 13M weights,
        not arithmetic, bounds it. The others run as polyphase convolutions on channels-last
        activations (:meth:`UpConv.forward_fast`). With ``fast_dtype=torch.bfloat16`` the
        hidden layers compute in bf16 and the last layer in float32, so the output keeps
        float32 resolution.
        """
        dtype = self.fast_dtype or x.dtype
        first = self.ups[0]
        w, bias = first.cached("weight", dtype)
        c = first.conv
        x = F.conv_transpose1d(x.to(dtype), w, bias, c.stride, c.padding, c.output_padding)
        x = F.relu_(x)[:, :, None, :].contiguous(memory_format=torch.channels_last)
        for up in self.ups[1:-1]:
            x = F.relu_(up.forward_fast(x))
        x = torch.tanh_(self.ups[-1].forward_fast(x.float()))
        return x.squeeze(2).contiguous()


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


# --- the model the engine trains ----------------------------------------------------------


class WaveGAN(GenerativeModel):
    """WaveGAN behind the wavesmith model contract (see :mod:`wavesmith.models.base`)."""

    name = "wavegan"
    Config = Config
    # WGAN-GP (Gulrajani et al. 2017) trains with plain Adam: the gradient penalty already
    # keeps the critic 1-Lipschitz, and clipping its gradient norm (about 20 early on) or
    # decaying the rate changes the published recipe.
    train_defaults = {"grad_clip": 0.0, "lr_schedule": "constant", "warmup_steps": 0}

    def __init__(self, config: Config, info: DataInfo):
        config.validate()
        super().__init__(config, info)
        n_labels = len(info.labels)
        self.generator = Generator(config, info.channels, n_labels)
        self.critic = Critic(config, info.channels, n_labels)

    @property
    def conditional(self) -> bool:
        return bool(self.info.labels)

    # --- training -------------------------------------------------------------------------

    @property
    def crop_samples(self) -> int:
        return self.config.window

    @property
    def max_seconds(self) -> float:
        """Longest clip :meth:`sample` makes: one window (callers with a default length can clamp to it)."""
        return self.config.window / self.info.sample_rate

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {
            "critic": torch.optim.Adam(self.critic.parameters(), lr=self.config.lr, betas=betas),
            "generator": torch.optim.Adam(self.generator.parameters(), lr=self.config.lr, betas=betas),
        }

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        """``n_critic`` critic updates on fresh batches, then one generator update (WGAN-GP, alg. 1).

        Logs: ``wasserstein`` (critic's estimate of the distance, E D(real) - E D(fake)), ``gp``,
        ``critic_loss``, ``generator_loss``, ``critic_acc`` (share of real and generated clips on
        the right side of the midpoint of the two mean scores: 0.5 = cannot tell), ``critic_wins``
        (1 when every real clip scores above every generated one; its mean over a log interval is
        the share of such steps), ``diversity`` / ``diversity_real`` / ``diversity_ratio``
        (see :func:`spectral_diversity`), ``buzz_db`` (checkerboard lines in generated clips beyond
        those in real ones, :func:`periodic_buzz_db`). All are from the last critic batch.
        """
        cfg = self.config
        for _ in range(cfg.n_critic):
            batch = next_batch()
            real, labels = batch["audio"], self._labels(batch)
            with torch.no_grad():
                fake = self.generator(self.latent(len(real), device=real.device), labels)
            d_real, d_fake = self.critic(real, labels), self.critic(fake, labels)
            wasserstein = d_real.mean() - d_fake.mean()
            gp = gradient_penalty(self.critic, real, fake, labels)
            critic_loss = -wasserstein + cfg.gp_weight * gp
            update("critic", critic_loss)

        # Generator update: critic weights frozen so no stale gradient lands in its .grad.
        self.critic.requires_grad_(False)
        try:
            fake = self.generator(self.latent(len(real), device=real.device), labels)
            generator_loss = -self.critic(fake, labels).mean()
            update("generator", generator_loss)
        finally:
            self.critic.requires_grad_(True)

        with torch.no_grad():
            mid = (d_real.mean() + d_fake.mean()) / 2
            acc = ((d_real > mid).float().mean() + (d_fake < mid).float().mean()) / 2
            div_fake = spectral_diversity(fake.detach(), self.info.sample_rate)
            div_real = spectral_diversity(real, self.info.sample_rate)
            wins = d_real.min() > d_fake.max()  # every real clip scored above every generated one
            buzz = periodic_buzz_db(fake.detach()) - periodic_buzz_db(real)
            figures = [wasserstein, gp, critic_loss, generator_loss, acc, wins, div_fake, div_real, buzz]
        w, g, cl, gl, a, won, df, dr, bz = torch.stack([f.float() for f in figures]).tolist()  # one device sync
        return {
            "wasserstein": w,
            "gp": g,
            "critic_loss": cl,
            "generator_loss": gl,
            "critic_acc": a,
            "critic_wins": won,
            "diversity": df,
            "diversity_real": dr,
            "diversity_ratio": df / dr if dr > 0 else 0.0,
            "buzz_db": bz,
        }

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        """How far generated clips are from held-out ones, with fixed latents (seed 0).

        ``loss`` is :func:`spectral_distance` to the batch's clips (generated with its labels):
        lower is better and, unlike the critic's estimate, it does not depend on how strong
        the critic is at that step, so early checkpoints, whose critic is still weak, do not
        win by default. ``wasserstein`` is the critic's estimate E D(valid) - E D(G(z))
        (Arjovsky et al. 2017 sec. 4.3: it tracks quality within one run); ``critic_valid``
        (mean score of held-out clips) falling below the training clips' scores shows the
        critic overfitting. ``diversity``: :func:`spectral_diversity` of the generated clips.
        """
        real, labels = batch["audio"], self._labels(batch)
        fake = self.generator(self.latent(len(real), seed=0, device=real.device), labels)
        d_real, d_fake = self.critic(real, labels), self.critic(fake, labels)
        rate = self.info.sample_rate
        figures = [spectral_distance(fake, real, rate), d_real.mean() - d_fake.mean(), d_real.mean()]
        loss, wasserstein, critic_valid = torch.stack(figures).tolist()
        diversity = float(spectral_diversity(fake, rate))
        return {"loss": loss, "wasserstein": wasserstein, "critic_valid": critic_valid, "diversity": diversity}

    def _labels(self, batch: Batch) -> torch.Tensor | None:
        return batch["label"].to(batch["audio"].device) if self.conditional else None

    # --- latent control and generation ----------------------------------------------------

    def latent(
        self, n: int, seed: int | None = None, temperature: float = 1.0, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """``n`` latents ``(n, latent_dim)``: uniform on [-1, 1], times ``temperature``.

        Drawn on the CPU from ``seed`` and then moved, so a seed names the same latent on
        every device. ``temperature`` < 1 pulls latents towards the centre of the cube (more
        typical, less varied sounds); > 1 pushes them outside what training saw.
        """
        z = torch.rand(n, self.config.latent_dim, generator=generator_for(seed, "cpu")) * 2 - 1
        return (z * temperature).to(device if device is not None else self.device)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generate the full window for latents ``z`` ``(n, latent_dim)``: ``(n, channels, window)``.

        ``labels`` are ids ``(n,)`` or, to blend classes, weights ``(n, n_labels)`` (float)
        that mix the label embeddings (a row ``[0.5, 0.5]`` sits halfway between two classes).
        """
        if labels is not None and not self.conditional:
            raise WavesmithError("this model was trained without labels, so --label cannot be used")
        if self.conditional and labels is None:
            raise WavesmithError("this model is conditional: give one label per latent")
        if labels is not None and labels.is_floating_point():
            if labels.shape != (len(z), len(self.info.labels)):
                raise WavesmithError(f"label weights must have shape ({len(z)}, {len(self.info.labels)})")
        elif labels is not None:
            labels = labels.to(z.device).long()
            if ((labels < 0) | (labels >= len(self.info.labels))).any():
                raise WavesmithError(f"label ids must lie in 0..{len(self.info.labels) - 1}")
        was_training = self.training
        self.eval()
        try:
            return self.generator(z.to(self.device), None if labels is None else labels.to(self.device))
        finally:
            self.train(was_training)

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"label"}) if self.conditional else frozenset()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seconds: float,
        conditions: dict[str, Any] | None = None,
        seed: int | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``n`` clips of ``seconds``: the generator's whole window, trimmed to ``seconds``.

        WaveGAN makes one fixed window per latent; a shorter request is generated at full
        length and its end cut off, a longer one is refused (WaveNet makes any length).
        ``conditions["label"]`` ``(n,)`` picks classes; a conditional model given none draws
        them uniformly from ``seed``. The same seed (and labels) gives the same audio.
        """
        rate, window = self.info.sample_rate, self.config.window
        samples = round(seconds * rate)
        if samples > window:
            raise WavesmithError(
                f"wavegan generates at most {window} samples ({window / rate:.3f} s at {rate} Hz) per clip, "
                f"not {seconds:g} s; use WaveNet (--model wavenet) for audio of any length"
            )
        if samples < 1:
            raise WavesmithError(f"seconds must be positive, not {seconds:g}")
        conditions = {k: v for k, v in (conditions or {}).items() if v is not None}
        unsupported = sorted(set(conditions) - {"label"})
        if unsupported:
            raise WavesmithError(f"wavegan cannot use {', '.join(unsupported)}: it is conditioned on labels only")
        labels = conditions.get("label")
        if labels is not None:
            labels = torch.as_tensor(labels).long().reshape(-1)
            if labels.numel() not in (1, n):
                raise WavesmithError(f"give one label or {n}, not {labels.numel()}")
            labels = labels.expand(n)
        elif self.conditional:
            g = generator_for(None if seed is None else seed + 1, "cpu")
            labels = torch.randint(len(self.info.labels), (n,), generator=g)
        return self.decode(self.latent(n, seed, temperature), labels)[..., :samples]
