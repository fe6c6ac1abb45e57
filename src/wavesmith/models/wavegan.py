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

This file is the model the engine trains (its config, losses and sampling); the networks
are in :mod:`~wavesmith.models.wavegan_networks`, their fast inference form in
:mod:`~wavesmith.models.wavegan_fast` and the failure figures in
:mod:`~wavesmith.models.wavegan_diagnostics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, GenerativeModel, NextBatch, Update, generator_for
from wavesmith.models.wavegan_diagnostics import periodic_buzz_db, spectral_distance, spectral_diversity
from wavesmith.models.wavegan_networks import Critic, Generator, gradient_penalty

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
                fake = self.generator(self.latent(len(real), device=real.device), labels, polyphase=True)
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
        fake = self.generator(self.latent(len(real), seed=0, device=real.device), labels, polyphase=True)
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
            labels = None if labels is None else labels.to(self.device)
            return self.generator(z.to(self.device), labels, polyphase=True)
        finally:
            self.train(was_training)

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"label"}) if self.conditional else frozenset()

    @property
    def latent_space(self) -> bool:
        return True

    def sample_labels(self, n: int, seed: int | None) -> torch.Tensor | None:
        """The classes :meth:`sample` draws when given none: uniform, from a generator seeded ``seed + 1``.

        ``seed + 1`` keeps the label draw apart from the latent draw of ``seed``.
        """
        if not self.conditional:
            return None
        g = generator_for(None if seed is None else seed + 1, "cpu")
        return torch.randint(len(self.info.labels), (n,), generator=g)

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
        else:
            labels = self.sample_labels(n, seed)
        return self.decode(self.latent(n, seed, temperature), labels)[..., :samples]
