"""DDSP: a harmonic-plus-filtered-noise synthesizer with a learned reverb (Engel et al., ICLR 2020).

Read top to bottom as the paper's figure 2 (the autoencoder without the z encoder):

1. the conditioning is f0 and loudness per frame (section 3.1), computed once per clip by
   :mod:`wavesmith.analysis` and handed in with the batch (keys ``f0`` and ``loudness``),
   plus an optional label embedding when one database holds several timbres;
2. the decoder (section 3.2, figure 12): an MLP for each input, a GRU over frames, and an
   MLP that outputs, per frame, an overall amplitude and a distribution over harmonics
   (the additive synthesizer, section 3.3.1) and a filter magnitude per noise band
   (the subtractive synthesizer, section 3.3.2);
3. the synthesizers render audio: harmonics of the given f0 (so the output follows the
   input's pitch by construction), plus white noise shaped by a time-varying linear-phase
   FIR filter;
4. a learned impulse response adds the room (section 3.3.3): one long FIR, trained as
   ordinary weights.

Training minimises the multi-scale spectral loss (section 3.4: L1 on linear and log
magnitudes at FFT sizes 2048..64). Sampling needs ``f0`` and ``loudness`` conditions;
there is no unconditional sampling, so ``requires`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith.analysis import FeatureSpec
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, GenerativeModel, NextBatch, Update

LOUDNESS_RANGE = (-80.0, 0.0)  # dB mapped to [0, 1] at the decoder's input


@dataclass
class Config:
    """DDSP hyper-parameters; the defaults (1.23 M weights) take 0.66 CPU seconds a step (batch 16, 1 s) on one core."""

    crop_seconds: float = 1.0  # training crop length
    frame_rate: int = 100  # f0 / loudness / decoder frames per second
    hidden: int = 256  # width of the MLPs and the GRU
    mlp_layers: int = 3  # Dense-LayerNorm-LeakyReLU blocks per MLP
    harmonics: int = 60  # sinusoids of the additive synthesizer
    noise_bands: int = 65  # filter magnitudes of the noise synthesizer (linear frequency)
    reverb_seconds: float = 0.5  # length of the learned impulse response (0: no reverb)
    fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)  # multi-scale spectral loss
    label_dim: int = 16  # label embedding size when the database has labels (0: ignore labels)
    lr: float = 1e-3  # Adam learning rate


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """2 sigmoid(x)^ln(10) + 1e-7: a positive output with a gentle slope over decades (DDSP's choice)."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def mlp(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks)


def upsample(frames: torch.Tensor, samples: int) -> torch.Tensor:
    """(B, F, C) frame values to (B, samples, C) by linear interpolation between frame centres."""
    return F.interpolate(frames.transpose(1, 2), size=samples, mode="linear", align_corners=True).transpose(1, 2)


# --- the synthesizers ---------------------------------------------------------------------


def harmonic_synth(f0: torch.Tensor, amplitude: torch.Tensor, distribution: torch.Tensor, samples: int,
                   sample_rate: int) -> torch.Tensor:
    """Sum of harmonics of ``f0`` (B, F) Hz: (B, samples). Harmonics at or above Nyquist are silenced."""
    k = torch.arange(1, distribution.shape[-1] + 1, device=f0.device, dtype=f0.dtype)
    audible = (f0[..., None] * k < sample_rate / 2).to(distribution.dtype)
    dist = distribution * audible
    dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
    amps = upsample(amplitude * dist, samples)  # (B, T, K)
    f0_t = upsample(f0[..., None], samples)[..., 0]  # (B, T)
    phase = 2 * math.pi * torch.cumsum(f0_t / sample_rate, dim=1)  # instantaneous phase of the fundamental
    return (amps * torch.sin(phase[..., None] * k)).sum(-1)


def noise_synth(magnitudes: torch.Tensor, hop: int, samples: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """White noise through a time-varying zero-phase FIR per frame, overlap-added: (B, samples).

    Each frame's band magnitudes become an impulse response (inverse real FFT, centred,
    Hann-windowed), which filters that frame's ``hop`` noise samples (section 3.3.2).
    """
    b, n_frames, bands = magnitudes.shape
    ir = torch.fft.irfft(magnitudes.to(torch.float32), n=2 * (bands - 1))  # (B, F, L) zero-phase
    ir = torch.roll(ir, bands - 1, dims=-1) * torch.hann_window(ir.shape[-1], device=ir.device)
    noise = torch.rand(b, n_frames, hop, device=magnitudes.device, generator=generator) * 2 - 1
    n = 1 << (hop + ir.shape[-1] - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(noise, n) * torch.fft.rfft(ir, n), n)  # (B, F, n)
    out = F.fold(y.transpose(1, 2), output_size=(1, (n_frames - 1) * hop + n), kernel_size=(1, n),
                 stride=(1, hop))[:, 0, 0]
    start = bands - 1  # undo the centring delay of the impulse response
    return out[:, start:start + samples]


def fft_convolve(x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T) convolved with ``ir`` (L,), cut to T samples (the tail past the clip is dropped)."""
    n = 1 << (x.shape[-1] + ir.shape[-1] - 1).bit_length()
    return torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(ir, n), n)[:, : x.shape[-1]]


def spectral_loss(x: torch.Tensor, y: torch.Tensor, fft_sizes: tuple[int, ...]) -> torch.Tensor:
    """Multi-scale spectral loss (section 3.4): L1 of magnitudes plus L1 of log magnitudes."""
    total = x.new_zeros(())
    for n in fft_sizes:
        win = torch.hann_window(n, device=x.device)
        sx = torch.stft(x, n, n // 4, window=win, return_complex=True).abs()
        sy = torch.stft(y, n, n // 4, window=win, return_complex=True).abs()
        total = total + (sx - sy).abs().mean() + (torch.log(sx + 1e-7) - torch.log(sy + 1e-7)).abs().mean()
    return total


# --- the model ------------------------------------------------------------------------------


class DDSP(GenerativeModel):
    """Decoder + harmonic and noise synthesizers + learned reverb, driven by f0 and loudness."""

    name = "ddsp"
    Config = Config
    # Previews would need a melody to play; `wavesmith transfer` is how a run is heard.
    train_defaults = {"preview_every": 0}

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        c = config
        if info.channels != 1:
            raise WavesmithError("ddsp models one channel: create the database with --channels 1")
        if info.sample_rate % c.frame_rate:
            raise WavesmithError(f"frame_rate {c.frame_rate} must divide the sample rate {info.sample_rate}")
        self.hop = info.sample_rate // c.frame_rate
        self.use_labels = bool(info.labels) and c.label_dim > 0
        self.f0_mlp = mlp(1, c.hidden, c.mlp_layers)
        self.loudness_mlp = mlp(1, c.hidden, c.mlp_layers)
        cond = 2 * c.hidden
        if self.use_labels:
            self.label_emb = nn.Embedding(len(info.labels), c.label_dim)
            cond += c.label_dim
        self.gru = nn.GRU(cond, c.hidden, batch_first=True)
        self.out_mlp = mlp(c.hidden + cond, c.hidden, c.mlp_layers)
        self.head = nn.Linear(c.hidden, 1 + c.harmonics + c.noise_bands)
        taps = int(c.reverb_seconds * info.sample_rate)
        # The IR starts as faint decaying noise, so the dry sound dominates until the loss asks for a room.
        t = torch.arange(max(taps - 1, 0)) / info.sample_rate
        self.reverb = nn.Parameter(1e-3 * torch.randn(max(taps - 1, 0)) * torch.exp(-t / 0.1)) if taps > 1 else None

    # --- decoder and synthesis ----------------------------------------------------------

    def controls(self, f0: torch.Tensor, loudness: torch.Tensor, label: torch.Tensor | None = None):
        """Per-frame synthesizer controls from f0 (B, F) Hz and loudness (B, F) dB."""
        midi = 69 + 12 * torch.log2(f0.clamp_min(1.0) / 440.0)
        f0_in = (midi / 127.0).clamp(0, 1)[..., None]
        lo, hi = LOUDNESS_RANGE
        ld_in = ((loudness - lo) / (hi - lo)).clamp(0, 1)[..., None]
        h = [self.f0_mlp(f0_in), self.loudness_mlp(ld_in)]
        if self.use_labels:
            if label is None:
                raise WavesmithError("this ddsp model was trained with labels: give --label")
            h.append(self.label_emb(label.clamp_min(0))[:, None].expand(-1, f0.shape[1], -1))
        h = torch.cat(h, -1)
        g, _ = self.gru(h)
        out = self.head(self.out_mlp(torch.cat([g, h], -1)))
        k = self.config.harmonics
        return exp_sigmoid(out[..., :1]), exp_sigmoid(out[..., 1:1 + k]), exp_sigmoid(out[..., 1 + k:] - 5.0)

    def render(self, f0: torch.Tensor, loudness: torch.Tensor, samples: int, label: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Audio (B, samples) for frame controls; frame ``i`` is centred on sample ``i * hop``."""
        amp, dist, noise_mags = self.controls(f0, loudness, label)
        voiced = (f0 > 0).to(amp.dtype)[..., None]  # no harmonics where the input has no pitch
        sr = self.info.sample_rate
        x = harmonic_synth(f0, amp * voiced, dist, samples, sr) + noise_synth(noise_mags, self.hop, samples, generator)
        if self.reverb is not None:
            x = x + fft_convolve(x, F.pad(self.reverb, (1, 0)))  # dry + wet: tap 0 of the wet path is 0
        return x

    @property
    def features(self) -> FeatureSpec:
        """f0 and loudness on the decoder's frame grid, computed once per clip by the database."""
        return FeatureSpec(frame_rate=self.config.frame_rate)

    def frames_for(self, samples: int) -> int:
        return samples // self.hop + 1

    # --- training -------------------------------------------------------------------------

    @property
    def crop_samples(self) -> int:
        return int(self.config.crop_seconds * self.info.sample_rate)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ddsp": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def _loss(self, batch: Batch) -> torch.Tensor:
        for key in ("f0", "loudness"):
            if key not in batch:
                raise WavesmithError("ddsp trains on f0 and loudness per frame, and this batch has no "
                                     f"{key!r}: the database must store analysis features")
        audio = batch["audio"][:, 0] * batch["mask"]
        label = batch.get("label") if self.use_labels else None
        y = self.render(batch["f0"], batch["loudness"], audio.shape[-1], label) * batch["mask"]
        return spectral_loss(y, audio, self.config.fft_sizes)

    def train_step(self, next_batch: NextBatch, update: Update, step: int) -> dict[str, float]:
        loss = self._loss(next_batch())
        update("ddsp", loss)
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        return {"loss": float(self._loss(batch))}

    # --- generation -----------------------------------------------------------------------

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"f0", "loudness"} | ({"label"} if self.use_labels else set()))

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({"f0", "loudness"} | ({"label"} if self.use_labels else set()))

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Render ``n`` clips of ``seconds`` from ``conditions['f0']`` and ``['loudness']`` (n, frames).

        Frames past the given contours hold their last value; ``temperature`` is unused
        (the only randomness is the noise synthesizer's, fixed by ``seed``).
        """
        conditions = conditions or {}
        if "f0" not in conditions or "loudness" not in conditions:
            raise WavesmithError("ddsp plays a melody: it needs f0 and loudness contours (use wavesmith transfer)")
        samples = int(round(seconds * self.info.sample_rate))
        frames = self.frames_for(samples)
        f0, ld = (self._fit(conditions[k].to(self.device).float(), frames) for k in ("f0", "loudness"))
        g = None
        if seed is not None:
            g = torch.Generator(device=self.device)
            g.manual_seed(int(seed))
        y = self.render(f0, ld, samples, conditions.get("label"), g)
        return y[:, None].clamp(-1, 1)

    @staticmethod
    def _fit(x: torch.Tensor, frames: int) -> torch.Tensor:
        if x.shape[1] >= frames:
            return x[:, :frames]
        return torch.cat([x, x[:, -1:].expand(-1, frames - x.shape[1])], 1)
