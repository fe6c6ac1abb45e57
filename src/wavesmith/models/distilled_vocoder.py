"""distilled-vocoder: a smaller vocoder fitted to a slower one, trained through the engine.

Three students (``student``):

- ``istft`` (and ``istft-tiny``, for tests): :mod:`wavesmith.models.istft_nets`, which stays
  at the frame rate and ends in an inverse STFT; about 24 times as fast as HiFi-GAN V1 on
  one CPU thread. It starts from random weights.
- ``hifigan-lite``: HiFi-GAN V1 with one residual block per upsampling stage (kernel 3)
  instead of three (kernels 3, 7 and 11), which is where V1 spends its time; about 3 times
  as fast as V1. It starts from the universal V1's weights for everything it keeps
  (``init=auto``).
- ``hifigan-lowrank``: V1 with every residual-block convolution cut to rank ``rank`` (a
  fraction of its width; :func:`wavesmith.models.hifigan_nets.lowrank`). With ``init=auto``
  its first step fits it to the teacher in closed form on ``fit_batches`` batches
  (:mod:`wavesmith.models.lowrank_fit`: each convolution is the best of its rank for the
  inputs it sees), and gradient distillation goes on from there. The teacher must then be
  a V1-shaped HiFi-GAN (the universal one, or a ``hifigan`` run).

Trained against real recordings, a vocoder learns phase through an adversarial game of
many steps. A teacher (a shipped vocoder or a ``hifigan`` run, "universal" by default) is
a fixed function of the log-mel frames, so its waveform, phase included, is a target that
plain losses can aim at. Each step crops real clips, computes their log-mel frames, has
the teacher vocode them, and fits the student's output to the teacher's with

    L = sum over STFT sizes (512, 1024, 2048) of
          | |S|^0.3 - |T|^0.3 |                 (compressed magnitude)
        + phase_weight * | |S|^0.3 e^(i angle S) - |T|^0.3 e^(i angle T) |   (compressed complex)
        + log_weight * | log |S| - log |T| |      (optional: hiss and buzz in quiet bins)
      + mel_weight * | log-mel(S) - log-mel(T) |  (full band, as HiFi-GAN's mel loss)

(power-law compression keeps quiet bins in play without log's blow-up at zero).
``teacher=none`` fits the real recordings instead.

How far that gets on a CPU is measured, not assumed (README, "Vocoders, and distilled
students"; ``benchmarks/fast_vocoder.py``): after an hour or so on one core neither the
``istft`` nor the ``hifigan-lite`` student keeps a speaker's voice well enough to ship (both
stay quieter than the teacher in voiced sounds and keep a faint buzz at multiples of the
frame rate, 86 Hz). ``hifigan-lowrank`` starts much nearer the teacher, since its fit keeps
V1's own structure, and gets nearer still, but not yet to V1's likeness.

Validation is the mel L1 against the real recording (full band), the figure
``benchmarks/vocoder_quality.py`` reports for every vocoder, so runs of this model and of
``hifigan`` compare directly.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, NextBatch, Update
from wavesmith.models.hifigan import VocoderModel
from wavesmith.models.hifigan_nets import VARIANTS, Generator, lite_from, lowrank
from wavesmith.models.istft_nets import SHAPES, ISTFTGenerator

STUDENTS = ("istft", "istft-tiny", "hifigan-lite", "hifigan-lowrank")

LOSS_SPEC = M.MelSpec(fmax=M.HIFIGAN.sample_rate / 2)
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the spectral losses
COMPRESS = 0.3


@dataclass
class Config:
    """The student's size, its teacher and its losses."""

    student: str = "istft"  # the student network: istft, istft-tiny, hifigan-lite or hifigan-lowrank
    teacher: str = "universal"  # vocoder to distil (shipped name or hifigan run), or "none": fit the recordings
    # weights to start from: "auto" (hifigan-lite: the universal V1's; hifigan-lowrank: fitted to
    # the teacher at the first step; istft: random), "none", or a shipped vocoder /
    # distilled-vocoder run with the same student
    init: str = "auto"
    rank: float = 0.25  # hifigan-lowrank: rank of its residual convolutions, a fraction of their width
    fit_batches: int = 8  # hifigan-lowrank, init=auto: batches its closed-form fit sees at the first step
    segment: int = 8192  # training crop in samples at 22.05 kHz (a multiple of 256)
    crops: str = "random"  # "start" keeps one-shots' onsets in every crop
    lr: float = 5e-4  # AdamW learning rate (the engine warms it up and decays it)
    weight_decay: float = 0.01
    mel_weight: float = 1.0
    log_weight: float = 0.0  # weight of a log-magnitude L1 at each STFT size (it weighs quiet bins: hiss, buzz)
    phase_weight: float = 1.0  # weight of the compressed complex L1 (0: magnitudes only, phase left free)

    def validate(self) -> None:
        if self.student not in STUDENTS:
            raise WavesmithError(f"distilled-vocoder student must be one of {', '.join(STUDENTS)}, "
                                 f"not {self.student!r}")
        if self.segment < 4 * M.HIFIGAN.hop or self.segment % M.HIFIGAN.hop:
            raise WavesmithError(f"distilled-vocoder segment must be a multiple of {M.HIFIGAN.hop} of at least "
                                 f"{4 * M.HIFIGAN.hop}, not {self.segment}")
        if not (0 < self.rank < 1) or self.fit_batches < 1:
            raise WavesmithError(f"distilled-vocoder rank must be between 0 and 1 (not {self.rank}) and fit_batches "
                                 f"at least 1 (not {self.fit_batches})")
        if self.student == "hifigan-lowrank" and self.init == "auto" and self.teacher == "none":
            raise WavesmithError("the hifigan-lowrank student is fitted to its teacher at the first step: give a "
                                 "teacher (or --set init=none)")
        if self.crops not in ("random", "start"):
            raise WavesmithError(f"distilled-vocoder crops must be random or start, not {self.crops!r}")
        if not (self.lr > 0 and min(self.weight_decay, self.mel_weight, self.log_weight, self.phase_weight) >= 0):
            raise WavesmithError("distilled-vocoder needs lr > 0 and weight_decay, mel_weight, log_weight, "
                                 "phase_weight >= 0")


def compressed(spec: torch.Tensor) -> torch.Tensor:
    """``|S|^0.3 e^(i angle S)``, with a floor that keeps the gradient finite at silence."""
    power = spec.real.square() + spec.imag.square() + 1e-10
    return spec * power.pow((COMPRESS - 1) / 2)


def spectral_loss(fake: torch.Tensor, target: torch.Tensor, log_weight: float = 0.0,
                  phase_weight: float = 1.0) -> torch.Tensor:
    """Compressed magnitude and (``phase_weight`` times) complex L1 of ``(B, T)`` waveforms, summed over
    :data:`RESOLUTIONS`; ``log_weight`` adds that much of the log-magnitude L1 (floored at 1e-5, -100 dB)."""
    total = fake.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        window = torch.hann_window(n_fft, device=fake.device)
        s, t = (torch.stft(w, n_fft, hop, window=window, return_complex=True) for w in (fake, target))
        if log_weight:
            log_s, log_t = (torch.log(x.abs().clamp_min(1e-5)) for x in (s, t))
            total = total + log_weight * (log_s - log_t).abs().mean()
        s, t = compressed(s), compressed(t)
        total = total + (s.abs() - t.abs()).abs().mean()
        if phase_weight:
            total = total + phase_weight * (s - t).abs().mean()
    return total


def mel_l1(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Full-band log-mel L1 of ``(B, T)`` waveforms (natural-log units)."""
    return (M.log_mel(fake, LOSS_SPEC) - M.log_mel(target, LOSS_SPEC)).abs().mean()


def student_network(student: str, rank: float) -> torch.nn.Module:
    """A fresh student generator: log-mel frames ``(B, 80, F)`` to ``(B, 1, F * 256)`` (``rank``: hifigan-lowrank's)."""
    if student == "hifigan-lite":
        return Generator(VARIANTS["v1-lite"], M.HIFIGAN.n_mels)
    if student == "hifigan-lowrank":
        return Generator(lowrank(rank), M.HIFIGAN.n_mels)
    return ISTFTGenerator(SHAPES["tiny" if student == "istft-tiny" else "base"], M.HIFIGAN.n_mels, M.HIFIGAN.hop)


class DistilledVocoder(VocoderModel):
    """A fast student generator fitted to a teacher vocoder; samples by resynthesizing ``mel_from``."""

    name = "distilled-vocoder"
    Config = Config
    train_defaults = {"ema_decay": 0.999, "grad_clip": 1.0}

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        self.generator = student_network(config.student, config.rank)
        if config.init == "auto" and config.student == "hifigan-lite":
            from wavesmith import vocoder as V

            self.generator.load_state_dict(lite_from(V.load("universal").generator.state_dict()))
        elif config.init not in ("auto", "none"):
            from wavesmith import vocoder as V

            start = V.load(config.init).generator.state_dict()
            mine = self.generator.state_dict()
            if start.keys() != mine.keys() or any(start[k].shape != mine[k].shape for k in mine):
                raise WavesmithError(f"distilled-vocoder init {config.init!r} does not fit the "
                                     f"{config.student} student")
            self.generator.load_state_dict(start)
        self._teacher: list[Any] = []  # loaded on first use, and kept out of the state dict
        if config.student == "hifigan-lowrank":
            # 1 once the generator holds fitted or loaded weights: a resumed or --init run never refits.
            self.register_buffer("fitted", torch.tensor(int(config.init != "auto")))

    def teacher(self):
        """The teacher vocoder (None with ``teacher=none``)."""
        if self.config.teacher == "none":
            return None
        if not self._teacher:
            from wavesmith import vocoder as V

            self._teacher.append(V.load(self.config.teacher, self.device))
        return self._teacher[0]

    # --- training -------------------------------------------------------------------------

    def target(self, real: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        teacher = self.teacher()
        if teacher is None:
            return real
        return teacher(mel)[:, 0].clone()  # clone: a plain tensor out of the teacher's inference mode

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": torch.optim.AdamW(self.generator.parameters(), lr=self.config.lr,
                                               weight_decay=self.config.weight_decay)}

    def fit_to_teacher(self, next_batch: NextBatch) -> list[float]:
        """The hifigan-lowrank student's closed-form fit to its teacher on ``fit_batches`` batches.

        Returns each upsampling stage's relative squared error against the teacher.
        """
        from wavesmith.models.lowrank_fit import fit_generator

        teacher = getattr(self.teacher(), "generator", None)
        if not isinstance(teacher, Generator) or teacher.shape != dataclasses.replace(self.generator.shape, rank=1.0):
            raise WavesmithError(f"the hifigan-lowrank student is fitted to a HiFi-GAN V1 teacher; "
                                 f"{self.config.teacher!r} is not one")
        started = time.monotonic()
        crops = [self.segment(next_batch()["audio"])[:, 0] for _ in range(self.config.fit_batches)]
        mels = M.log_mel(torch.cat(crops), self.spec)
        errors = fit_generator(self.generator, teacher.to(mels.device).eval(), mels)
        self.fitted.fill_(1)
        print(f"wavesmith: fitted the hifigan-lowrank student to {self.config.teacher} on {len(mels)} crops in "
              f"{time.monotonic() - started:.0f} s; relative error after each stage: "
              f"{', '.join(f'{e:.4f}' for e in errors)}", file=sys.stderr)
        return errors

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        if hasattr(self, "fitted") and not int(self.fitted):
            self.fit_to_teacher(next_batch)
        real = self.segment(next_batch()["audio"])[:, 0]
        mel = M.log_mel(real, self.spec)
        target = self.target(real, mel)
        fake = self.generator(mel)[:, 0]
        spectral = spectral_loss(fake, target, self.config.log_weight, self.config.phase_weight)
        mel_loss = mel_l1(fake, target)
        loss = spectral + self.config.mel_weight * mel_loss
        update("generator", loss)
        return {"loss": float(loss.detach()), "spectral": float(spectral.detach()),
                "mel_l1_teacher": float(mel_loss.detach())}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        real = self.segment(batch["audio"])[:, 0]
        mel = mel_l1(self.generator(M.log_mel(real, self.spec))[:, 0], real)
        return {"loss": float(mel), "mel_l1": float(mel)}

    # --- generation -----------------------------------------------------------------------

    def vocoder(self, name: str | None = None):
        """This generator as a :class:`wavesmith.vocoder.Vocoder` (on this model's device)."""
        from wavesmith.vocoder import Vocoder

        generator = student_network(self.config.student, self.config.rank)
        generator.load_state_dict(self.generator.state_dict())
        return Vocoder(generator, self.spec, name or self.name).to(self.device)
