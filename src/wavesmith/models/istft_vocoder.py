"""istft-vocoder: a fast vocoder distilled from a slower one, trained through the engine.

The generator (:mod:`wavesmith.models.istft_nets`) stays at the frame rate and ends in an
inverse STFT, so it runs tens of times faster than HiFi-GAN V1 on a CPU. Trained from
scratch against real recordings it would need an adversarial game of a million steps to
learn phase. Distilled, it needs none: the teacher (a shipped vocoder or a ``hifigan``
run, "universal" by default) is a fixed function of the log-mel frames, so its waveform,
phase included, is a regression target the student can reach with plain losses. Each
step crops real clips, computes their log-mel frames, has the teacher vocode them, and
fits the student's output to the teacher's with

    L = sum over STFT sizes (512, 1024, 2048) of
          | |S|^0.3 - |T|^0.3 |                 (compressed magnitude)
        + | |S|^0.3 e^(i angle S) - |T|^0.3 e^(i angle T) |   (compressed complex: phase)
      + mel_weight * | log-mel(S) - log-mel(T) |  (full band, as HiFi-GAN's mel loss)

(power-law compression keeps quiet bins in play without log's blow-up at zero).
``teacher=none`` fits the real recordings instead, for comparison; without an adversary
that gives plausible magnitudes and muddled phase.

Validation is the mel L1 against the real recording (full band), the figure
``benchmarks/vocoder_quality.py`` reports for every vocoder, so runs of this model and of
``hifigan`` compare directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, GenerativeModel, NextBatch, Update
from wavesmith.models.istft_nets import SHAPES, ISTFTGenerator

LOSS_SPEC = M.MelSpec(fmax=M.HIFIGAN.sample_rate / 2)
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the spectral losses
COMPRESS = 0.3


@dataclass
class Config:
    """The student's size, its teacher and its losses."""

    shape: str = "base"  # generator size: a key of istft_nets.SHAPES
    teacher: str = "universal"  # vocoder to distil (shipped name or hifigan run), or "none": fit the recordings
    init: str = "none"  # shipped iSTFT vocoder to start from ("fast"), or "none"
    segment: int = 8192  # training crop in samples at 22.05 kHz (a multiple of 256)
    crops: str = "random"  # "start" keeps one-shots' onsets in every crop
    lr: float = 5e-4  # AdamW learning rate (the engine warms it up and decays it)
    weight_decay: float = 0.01
    mel_weight: float = 1.0

    def validate(self) -> None:
        if self.shape not in SHAPES:
            raise WavesmithError(f"istft-vocoder shape must be one of {', '.join(SHAPES)}, not {self.shape!r}")
        if self.segment < 4 * M.HIFIGAN.hop or self.segment % M.HIFIGAN.hop:
            raise WavesmithError(f"istft-vocoder segment must be a multiple of {M.HIFIGAN.hop} of at least "
                                 f"{4 * M.HIFIGAN.hop}, not {self.segment}")
        if self.crops not in ("random", "start"):
            raise WavesmithError(f"istft-vocoder crops must be random or start, not {self.crops!r}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.mel_weight >= 0):
            raise WavesmithError("istft-vocoder needs lr > 0, weight_decay >= 0 and mel_weight >= 0")


def compressed(spec: torch.Tensor) -> torch.Tensor:
    """``|S|^0.3 e^(i angle S)``, with a floor that keeps the gradient finite at silence."""
    power = spec.real.square() + spec.imag.square() + 1e-10
    return spec * power.pow((COMPRESS - 1) / 2)


def spectral_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Compressed magnitude and complex L1 of ``(B, T)`` waveforms, summed over :data:`RESOLUTIONS`."""
    total = fake.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        window = torch.hann_window(n_fft, device=fake.device)
        s, t = (compressed(torch.stft(w, n_fft, hop, window=window, return_complex=True)) for w in (fake, target))
        total = total + (s.abs() - t.abs()).abs().mean() + (s - t).abs().mean()
    return total


def mel_l1(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Full-band log-mel L1 of ``(B, T)`` waveforms (natural-log units)."""
    return (M.log_mel(fake, LOSS_SPEC) - M.log_mel(target, LOSS_SPEC)).abs().mean()


class ISTFTVocoder(GenerativeModel):
    """An iSTFT generator fitted to a teacher vocoder; samples by resynthesizing ``mel_from``."""

    name = "istft-vocoder"
    Config = Config
    train_defaults = {"ema_decay": 0.999, "grad_clip": 1.0}

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        config.validate()
        if info.channels != 1:
            raise WavesmithError("istft-vocoder models mono audio; create the database with --channels 1")
        self.spec = M.HIFIGAN
        self.generator = ISTFTGenerator(SHAPES[config.shape], self.spec.n_mels, self.spec.hop)
        if config.init != "none":
            from wavesmith import vocoder as V

            start = V.load(config.init)
            if not isinstance(start.generator, ISTFTGenerator) or start.generator.shape != self.generator.shape:
                raise WavesmithError(f"istft-vocoder init {config.init!r} is not an iSTFT vocoder of shape "
                                     f"{config.shape!r}")
            self.generator.load_state_dict(start.generator.state_dict())
        self._teacher: list[Any] = []  # loaded on first use, and kept out of the state dict

    def teacher(self):
        """The teacher vocoder (None with ``teacher=none``)."""
        if self.config.teacher == "none":
            return None
        if not self._teacher:
            from wavesmith import vocoder as V

            self._teacher.append(V.load(self.config.teacher, self.device))
        return self._teacher[0]

    # --- what it takes --------------------------------------------------------------------

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"mel_from"})

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({"mel_from"})

    @property
    def crop_samples(self) -> int:
        return math.ceil(self.config.segment * self.info.sample_rate / self.spec.sample_rate) + 1

    @property
    def random_crops(self) -> bool:
        return self.config.crops == "random"

    # --- training -------------------------------------------------------------------------

    def segment(self, audio: torch.Tensor) -> torch.Tensor:
        """Training crops ``(B, segment)`` at 22.05 kHz from a batch's ``audio`` at the database's rate."""
        x = M.to_rate(audio[:, 0], self.info.sample_rate, self.spec.sample_rate)
        seg = self.config.segment
        return F.pad(x, (0, max(0, seg - x.shape[-1])))[..., :seg]

    def target(self, real: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        teacher = self.teacher()
        if teacher is None:
            return real
        return teacher(mel)[:, 0].clone()  # clone: a plain tensor out of the teacher's inference mode

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": torch.optim.AdamW(self.generator.parameters(), lr=self.config.lr,
                                               weight_decay=self.config.weight_decay)}

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        real = self.segment(next_batch()["audio"])
        mel = M.log_mel(real, self.spec)
        target = self.target(real, mel)
        fake = self.generator(mel)[:, 0]
        spectral = spectral_loss(fake, target)
        mel_loss = mel_l1(fake, target)
        loss = spectral + self.config.mel_weight * mel_loss
        update("generator", loss)
        return {"loss": float(loss.detach()), "spectral": float(spectral.detach()),
                "mel_l1_teacher": float(mel_loss.detach())}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        real = self.segment(batch["audio"])
        mel = mel_l1(self.generator(M.log_mel(real, self.spec))[:, 0], real)
        return {"loss": float(mel), "mel_l1": float(mel)}

    # --- generation -----------------------------------------------------------------------

    def vocoder(self, name: str = "istft-vocoder"):
        """This generator as a :class:`wavesmith.vocoder.Vocoder` (on this model's device)."""
        import copy

        from wavesmith.vocoder import Vocoder

        return Vocoder(copy.deepcopy(self.generator), self.spec, name).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Resynthesize ``conditions["mel_from"]`` ``(n, 1, samples)`` at the database's rate (see hifigan)."""
        from wavesmith.models.hifigan import mel_from_wave

        wave = mel_from_wave(conditions, self.accepts, n, self.device, "an istft-vocoder")
        return self.vocoder().resynthesize(wave, self.info.sample_rate)
