"""hifigan: train or fine-tune a HiFi-GAN vocoder (Kong, Kim and Bae, NeurIPS 2020) through the engine.

A vocoder turns log-mel frames (the :mod:`wavesmith.melspec` convention: 22.05 kHz, 80
bands, hop 256) into a waveform; every mel-domain model decodes through one. The
pretrained "universal" generator was trained on speech and smears what speech lacks
(drum transients, cymbals); fine-tuning it on the material at hand is the cheap fix.

Training follows the paper (section 2.4 and the appendix): the generator of
:mod:`wavesmith.models.hifigan_nets` (V1, V2 or V3; weight-normalised convolutions, as the
paper trains them) against the multi-period and multi-scale discriminators of
:mod:`wavesmith.models.hifigan_disc`, with

    L_D = LSGAN(real, fake)
    L_G = LSGAN(fake) + 2 * feature matching + 45 * mel L1

and Adam (betas 0.8, 0.99), learning rate 2e-4, one discriminator update then one
generator update per step. The mel L1 is computed on the full band (0 to 11,025 Hz, the
reference recipe's loss setting), so the generator is held to the highs the input frames
stop at 8 kHz. Crops are ``segment`` samples at 22.05 kHz; a database at another rate is
resampled per batch.

``init`` starts the generator from a shipped vocoder's weights ("universal" by default for
V1); the discriminators always start fresh (no trained ones are published with the
weights). ``disc_width`` scales the discriminators' channels: 1.0 is the paper's 70 M
parameters, smaller makes fine-tuning on a CPU affordable.

Sampling resynthesizes: ``sample(n, seconds, {"mel_from": waveform})`` analyses the
waveform (at the database's rate) and vocodes it back; :meth:`HiFiGAN.vocoder` gives the
generator as a :class:`wavesmith.vocoder.Vocoder`, so ``wavesmith.vocoder.load(RUN)``
decodes any mel-domain model with a vocoder trained here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models import hifigan_disc as HD
from wavesmith.models.base import Batch, DataInfo, GenerativeModel, NextBatch, Update
from wavesmith.models.hifigan_nets import VARIANTS, Generator, fold_weight_norm

# The mel loss looks at the whole band, where the input frames stop at 8 kHz.
LOSS_SPEC = M.MelSpec(fmax=M.HIFIGAN.sample_rate / 2)


@dataclass
class Config:
    """HiFi-GAN's hyper-parameters (the paper's, with the discriminators' width adjustable)."""

    variant: Literal["v1", "v2", "v3"] = "v1"  # generator size (table 1 of the paper)
    init: str = "auto"  # shipped vocoder to start from ("universal", "lj"), "none", or auto: universal for v1
    segment: int = 8192  # training crop in samples at 22.05 kHz (a multiple of 256)
    disc_width: float = 1.0  # discriminator channel multiplier (1.0 = the paper's)
    crops: Literal["random", "start"] = "random"  # "start" keeps one-shots' onsets in every crop
    lr: float = 2e-4  # Adam learning rate of both networks
    beta1: float = 0.8
    beta2: float = 0.99
    mel_weight: float = 45.0  # lambda_mel
    feature_weight: float = 2.0  # lambda_fm

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise WavesmithError(f"hifigan variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if self.segment < M.HIFIGAN.hop or self.segment % M.HIFIGAN.hop:
            raise WavesmithError(f"hifigan segment must be a positive multiple of {M.HIFIGAN.hop}, not {self.segment}")
        if not (math.isfinite(self.disc_width) and 0 < self.disc_width <= 4):
            raise WavesmithError(f"hifigan disc_width must be in (0, 4], not {self.disc_width}")
        if not (self.lr > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise WavesmithError("hifigan needs lr > 0 and betas in [0, 1)")
        if self.mel_weight < 0 or self.feature_weight < 0:
            raise WavesmithError("hifigan loss weights must not be negative")

    def start_from(self) -> str | None:
        """The shipped vocoder whose weights start the generator (None: random weights)."""
        name = ("universal" if self.variant == "v1" else "none") if self.init == "auto" else self.init
        return None if name == "none" else name


def _weight_normed(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.ConvTranspose1d):
            weight_norm(m)
    return module


def plain_state(generator: nn.Module) -> dict[str, torch.Tensor]:
    """The weight-normalised generator's state with plain ``weight`` tensors (what inference loads)."""
    renamed = {}
    for key, value in generator.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        renamed[key.replace(".parametrizations.weight.original1", ".weight_v")] = value
    return fold_weight_norm(renamed)


class VocoderModel(GenerativeModel):
    """What the trainable vocoders share (``hifigan``, ``distilled-vocoder``): they take
    ``mel_from``, train on crops of ``config.segment`` samples at 22.05 kHz cut from the
    database's clips (``config.crops``: random, or "start" to keep one-shots' onsets), and
    sample by resynthesizing through :meth:`vocoder`."""

    spec = M.HIFIGAN

    def __init__(self, config: Any, info: DataInfo):
        super().__init__(config, info)
        config.validate()
        if info.channels != 1:
            raise WavesmithError(f"{self.name} models mono audio; create the database with --channels 1")

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"mel_from"})

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({"mel_from"})

    @property
    def crop_samples(self) -> int:
        # A little more than the segment at the database's rate; the resampled crop is cut to it.
        return math.ceil(self.config.segment * self.info.sample_rate / self.spec.sample_rate) + 1

    @property
    def random_crops(self) -> bool:
        return self.config.crops == "random"

    def segment(self, audio: torch.Tensor) -> torch.Tensor:
        """Training crops ``(B, 1, segment)`` at 22.05 kHz from a batch's ``audio`` at the database's rate."""
        x = M.to_rate(audio, self.info.sample_rate, self.spec.sample_rate)
        seg = self.config.segment
        return F.pad(x, (0, max(0, seg - x.shape[-1])))[..., :seg]

    def vocoder(self, name: str | None = None):
        """This model's generator as a :class:`wavesmith.vocoder.Vocoder`."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Resynthesize ``conditions["mel_from"]`` ``(n, 1, samples)`` at the database's rate.

        The output has ``mel_from``'s length (``seconds`` does not apply: a vocoder follows
        its input); ``seed`` and ``temperature`` do not apply either (it is deterministic).
        """
        what = f"a {self.name} vocoder"
        conditions = {k: v for k, v in (conditions or {}).items() if v is not None}
        unknown = sorted(set(conditions) - self.accepts)
        if unknown:
            raise WavesmithError(f"{what} cannot use {', '.join(unknown)}; it takes mel_from")
        if "mel_from" not in conditions:
            raise WavesmithError(f"{what} resynthesizes audio: give mel_from (a waveform to analyse)")
        wave = torch.as_tensor(conditions["mel_from"], device=self.device).float()
        if wave.dim() == 2:
            wave = wave[:, None]
        if wave.dim() != 3 or wave.shape[1] != 1 or wave.shape[0] not in (1, n) or wave.shape[-1] < 1:
            raise WavesmithError(f"mel_from must be a mono waveform (n, 1, samples), not {tuple(wave.shape)}")
        return self.vocoder().resynthesize(wave.expand(n, 1, wave.shape[-1]), self.info.sample_rate)


class HiFiGAN(VocoderModel):
    """A HiFi-GAN generator with its discriminators; samples by resynthesizing ``mel_from``."""

    name = "hifigan"
    Config = Config
    # The paper trains without weight averaging or clipping; an EMA would also hold back a
    # short fine-tune at its starting weights.
    train_defaults = {"ema_decay": 0.0, "grad_clip": 0.0}

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        generator = Generator(VARIANTS[config.variant], self.spec.n_mels)
        start = config.start_from()
        if start is not None:
            from wavesmith import vocoder as V

            if start not in V.SHIPPED:
                raise WavesmithError(f"hifigan init must be one of auto, none, {', '.join(V.SHIPPED)}, not {start!r}")
            if V.SHIPPED[start].variant != config.variant:
                raise WavesmithError(f"the {start!r} weights are a {V.SHIPPED[start].variant} generator; "
                                     f"set variant={V.SHIPPED[start].variant} or init=none")
            generator.load_state_dict(V.load(start).generator.state_dict())
        self.generator = _weight_normed(generator)  # same function; g and v train as the paper's
        self.discriminators = HD.Discriminators(config.disc_width)

    # --- maths ----------------------------------------------------------------------------

    def mel_l1(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return (M.log_mel(fake[:, 0], LOSS_SPEC) - M.log_mel(real[:, 0], LOSS_SPEC)).abs().mean()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {
            "discriminator": torch.optim.Adam(self.discriminators.parameters(), lr=self.config.lr, betas=betas),
            "generator": torch.optim.Adam(self.generator.parameters(), lr=self.config.lr, betas=betas),
        }

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        c = self.config
        real = self.segment(next_batch()["audio"])
        fake = self.generator(M.log_mel(real[:, 0], self.spec))

        real_scores, _ = self.discriminators(real)
        fake_scores, _ = self.discriminators(fake.detach())
        d_loss = HD.discriminator_loss(real_scores, fake_scores)
        update("discriminator", d_loss)

        self.discriminators.requires_grad_(False)  # the generator's loss needs no gradients for them
        try:
            _, real_features = self.discriminators(real)
            fake_scores, fake_features = self.discriminators(fake)
            adversarial = HD.generator_loss(fake_scores)
            features = HD.feature_loss(real_features, fake_features)
            mel = self.mel_l1(fake, real)
            g_loss = adversarial + c.feature_weight * features + c.mel_weight * mel
            update("generator", g_loss)
        finally:
            self.discriminators.requires_grad_(True)
        return {"loss": float(g_loss.detach()), "mel_l1": float(mel.detach()), "d_loss": float(d_loss.detach()),
                "adversarial": float(adversarial.detach()), "feature_matching": float(features.detach())}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        real = self.segment(batch["audio"])
        mel = self.mel_l1(self.generator(M.log_mel(real[:, 0], self.spec)), real)
        return {"loss": float(mel), "mel_l1": float(mel)}

    # --- generation -----------------------------------------------------------------------

    def vocoder(self, name: str | None = None):
        """This generator as a :class:`wavesmith.vocoder.Vocoder` (plain weights, on this model's device)."""
        from wavesmith.vocoder import Vocoder

        generator = Generator(VARIANTS[self.config.variant], self.spec.n_mels)
        generator.load_state_dict(plain_state(self.generator))
        return Vocoder(generator, self.spec, name or self.name).to(self.device)
