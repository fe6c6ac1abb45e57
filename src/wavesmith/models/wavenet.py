"""WaveNet: dilated causal convolutions over the raw waveform (van den Oord et al., 2016).

Read top to bottom as the paper's figure 4: the causal input convolution, a stack of
residual layers (dilated causal convolution, gated activation, residual and skip 1x1
convolutions), then the output head (ReLU, 1x1, ReLU, 1x1) giving either a 256-way
softmax over mu-law values (section 2.2) or a discretized mixture of logistics over
16-bit values (PixelCNN++ / Parallel WaveNet). Conditioning (section 2.5): a learned
label or speaker embedding (global) or upsampled log-mel frames (local, a vocoder),
added inside every layer's gate.

Generation uses the cached queue algorithm in :mod:`wavesmith.models.wavenet_fast`
(Paine et al., 2016): constant work per sample, batched across streams, any length.

Channels: WaveNet here models one channel. A database with more channels is refused when
the model is built (create the database with ``--channels 1``), rather than silently
dropping or duplicating channels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from wavesmith.audio import log_mel, mulaw_decode, mulaw_encode
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, OneLossModel


@dataclass
class Config:
    """WaveNet hyper-parameters; the defaults train on a CPU in minutes at 16 kHz."""

    layers: int = 20  # dilated residual layers in total
    stacks: int = 2  # dilation cycles 1, 2, ..., 2^(layers/stacks - 1), repeated this often
    kernel_size: int = 2  # taps of each dilated causal convolution
    input_kernel: int = 2  # taps of the causal input convolution
    residual_channels: int = 64  # channels of the residual stream
    gate_channels: int = 128  # channels of the dilated convolution, halved by tanh * sigmoid
    skip_channels: int = 64  # channels of the skip connections and the output head
    output: Literal["mulaw", "mol"] = "mulaw"  # 256-way mu-law softmax or mixture of logistics
    quantization_channels: int = 256  # mu-law classes (output="mulaw")
    mixtures: int = 10  # logistic components (output="mol"), over 16-bit values
    conditioning: Literal["none", "label", "speaker", "mel"] = "none"  # what drives every gate
    cond_channels: int = 32  # size of the label/speaker embedding or of the upsampled mel features
    n_mels: int = 80  # log-mel bands for conditioning="mel"
    n_fft: int = 1024  # FFT size of the mel analysis
    hop_length: int = 256  # samples per mel frame
    crop: int = 8000  # training crop length in samples (0.5 s at 16 kHz)
    lr: float = 1e-3  # Adam learning rate

    # Bounds that no useful WaveNet comes near, so a typo or a forged checkpoint config is a
    # one-line error before any memory is allocated, not a crash mid-run.
    _RANGES = {"layers": (1, 512), "stacks": (1, 512), "kernel_size": (2, 16), "input_kernel": (1, 16),
               "residual_channels": (1, 4096), "gate_channels": (2, 8192), "skip_channels": (1, 4096),
               "quantization_channels": (2, 65536), "mixtures": (1, 256), "cond_channels": (1, 4096),
               "n_mels": (1, 512), "n_fft": (16, 65536), "hop_length": (1, 65536), "crop": (1, 10_000_000)}
    MAX_PARAMETERS = 500_000_000

    def validate(self) -> None:
        """Refuse values no WaveNet can be built or trained with (called after every override)."""
        for name, (lo, hi) in self._RANGES.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise WavesmithError(f"model.{name} must be between {lo} and {hi}, not {value}")
        if not 0 < self.lr <= 1:
            raise WavesmithError(f"model.lr must be in (0, 1], not {self.lr}")
        if self.layers % self.stacks or self.gate_channels % 2 or self.layers // self.stacks > 24:
            raise WavesmithError("wavenet needs layers divisible by stacks, at most 24 layers per stack (dilation "
                                 f"2^23) and even gate_channels, not layers={self.layers}, stacks={self.stacks}, "
                                 f"gate_channels={self.gate_channels}")
        per_layer = (self.residual_channels * self.gate_channels * self.kernel_size
                     + self.gate_channels // 2 * (self.residual_channels + self.skip_channels))
        if self.layers * per_layer > self.MAX_PARAMETERS:
            raise WavesmithError(f"this wavenet would have about {self.layers * per_layer:.2e} weights, more than "
                                 f"the {self.MAX_PARAMETERS:.0e} wavesmith builds")


# --- the residual layer: dilated causal conv, gate, residual and skip 1x1 (figure 4) ------


class ResidualLayer(nn.Module):
    """One residual block; ``forward`` runs a whole sequence, generation uses its queue.

    The dilated convolution is causal: the input is padded on the left by
    ``(kernel_size - 1) * dilation`` so output ``t`` sees inputs ``t - (k-1)d .. t`` only.
    """

    def __init__(self, c: Config, dilation: int, cond: bool):
        super().__init__()
        self.dilation = dilation
        self.kernel_size = c.kernel_size
        self.dilated = nn.Conv1d(c.residual_channels, c.gate_channels, c.kernel_size, dilation=dilation)
        # Conditioning enters the gate as V * h (equations 2 and 3).
        self.cond = nn.Conv1d(c.cond_channels, c.gate_channels, 1, bias=False) if cond else None
        self.res = nn.Conv1d(c.gate_channels // 2, c.residual_channels, 1)
        self.skip = nn.Conv1d(c.gate_channels // 2, c.skip_channels, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.dilated(F.pad(x, ((self.kernel_size - 1) * self.dilation, 0)))
        if self.cond is not None and h is not None:
            y = y + self.cond(h)  # h is (B, cond, T) or (B, cond, 1): broadcast over time
        filt, gate = y.chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)  # gated activation, equation 2
        return x + self.res(z), self.skip(z)


class MelUpsampler(nn.Module):
    """Log-mel frames to one feature vector per sample (local conditioning, section 2.5).

    A convolution across neighbouring frames learns the features; linear interpolation
    between frame centres (frame ``i`` is centred on sample ``i * hop``) repeats them at
    the sample rate. The vocoder sees the whole mel sequence: it is not causal in the mel.
    """

    def __init__(self, c: Config):
        super().__init__()
        self.hop = c.hop_length
        self.frames = nn.Conv1d(c.n_mels, c.cond_channels, 3, padding=1)

    def forward(self, mel: torch.Tensor, samples: int) -> torch.Tensor:
        h = self.frames((mel + 5.0) / 5.0)  # log-mel of audio in [-1, 1] lies roughly in [-11, 4]
        h = F.pad(h, (0, 1), mode="replicate")
        h = F.interpolate(h, size=(h.shape[-1] - 1) * self.hop + 1, mode="linear", align_corners=True)
        if h.shape[-1] < samples:
            h = F.pad(h, (0, samples - h.shape[-1]), mode="replicate")
        return h[..., :samples]


# --- the network -------------------------------------------------------------------------


class WaveNet(OneLossModel):
    """WaveNet over one channel; see the module docstring for the shape of the network."""

    name = "wavenet"
    Config = Config

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        c = config
        if info.channels != 1:
            raise WavesmithError(
                f"wavenet models one channel but the database has {info.channels}; create it with --channels 1"
            )
        if c.layers % c.stacks or c.kernel_size < 2 or c.gate_channels % 2:
            raise WavesmithError("wavenet needs layers divisible by stacks, kernel_size >= 2 and even gate_channels")
        classes = {"label": info.labels, "speaker": info.speakers}.get(c.conditioning, ())
        if c.conditioning in ("label", "speaker") and not classes:
            raise WavesmithError(f"conditioning={c.conditioning} needs a database with {c.conditioning}s")
        self.classes = len(classes)
        # Input: a causal convolution over one-hot mu-law values (an embedding per tap, plus
        # a zero row used as padding before the start) or over the scalar value (mol).
        if c.output == "mulaw":
            rows = c.quantization_channels + 1
        else:
            rows = 1
        self.embed = nn.Parameter(torch.randn(c.input_kernel, rows, c.residual_channels) * 0.3)
        self.embed_bias = nn.Parameter(torch.zeros(c.residual_channels))
        per_stack = c.layers // c.stacks
        cond = c.conditioning != "none"
        self.layers = nn.ModuleList(ResidualLayer(c, 2 ** (i % per_stack), cond) for i in range(c.layers))
        # Global conditioning: one embedding per class and one for "unknown" (id -1).
        globally = c.conditioning in ("label", "speaker")
        self.class_embed = nn.Embedding(self.classes + 1, c.cond_channels) if globally else None
        self.upsample = MelUpsampler(c) if c.conditioning == "mel" else None
        out = c.quantization_channels if c.output == "mulaw" else 3 * c.mixtures
        s = c.skip_channels
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(s, s, 1), nn.ReLU(), nn.Conv1d(s, out, 1))
        if c.output == "mol":  # start from narrow logistics (scale ~0.14): wide ones learn slowly
            with torch.no_grad():
                self.head[3].bias[2 * c.mixtures :] = -2.0

    @property
    def receptive_field(self) -> int:
        """Input samples one output sees: (input_kernel - 1) + sum over layers of (k - 1) d, plus 1."""
        c = self.config
        return c.input_kernel - 1 + sum((c.kernel_size - 1) * layer.dilation for layer in self.layers) + 1

    # --- the full (training) forward pass ------------------------------------------------

    def input_conv(self, inp: torch.Tensor) -> torch.Tensor:
        """Causal input convolution of ``inp`` (B, T): tokens (mulaw) or values (mol) -> (B, R, T)."""
        k = self.config.input_kernel
        if self.config.output == "mulaw":
            padded = F.pad(inp, (k - 1, 0), value=self.config.quantization_channels)  # zero row
            x = sum(F.embedding(padded[:, j : j + inp.shape[1]], self.embed[j]) for j in range(k))
        else:
            padded = F.pad(inp, (k - 1, 0))
            x = sum(padded[:, j : j + inp.shape[1], None] * self.embed[j] for j in range(k))
        return (x + self.embed_bias).transpose(1, 2)

    def conditioning(self, n: int, samples: int, label: torch.Tensor | None = None, mel: torch.Tensor | None = None):
        """The conditioning features every gate sees: (B, cond, 1), (B, cond, T) or None."""
        if self.class_embed is not None:
            ids = torch.full((n,), -1, dtype=torch.long, device=self.device) if label is None else label.to(self.device)
            ids = torch.where(ids < 0, torch.full_like(ids, self.classes), ids)
            return self.class_embed(ids)[:, :, None]
        if self.upsample is not None:
            return self.upsample(mel, samples)
        return None

    def forward(self, inp: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (logits or mixture parameters) ``(B, out, T)`` for inputs ``(B, T)``.

        Output ``t`` depends on ``inp[:, :t + 1]`` only; training feeds the waveform shifted
        right by one, so output ``t`` predicts sample ``t`` from the samples before it.
        """
        x = self.input_conv(inp)
        skips = 0
        for layer in self.layers:
            x, s = layer(x, h)
            skips = skips + s
        return self.head(skips)

    def shifted_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform (B, T) in [-1, 1] -> (network inputs, targets), each (B, T)."""
        c = self.config
        if c.output == "mulaw":
            target = mulaw_encode(x, c.quantization_channels)
            start = torch.full_like(target[:, :1], c.quantization_channels // 2)  # mu-law of silence
        else:
            target = quantize16(x)
            start = torch.zeros_like(target[:, :1])
        return torch.cat([start, target[:, :-1]], dim=1), target

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel frames (B, n_mels, frames) of waveforms (B, T), the vocoder's input."""
        c = self.config
        return log_mel(x, self.info.sample_rate, c.n_fft, c.hop_length, c.n_mels)

    # --- training (the contract of models/base.py) ---------------------------------------

    @property
    def crop_samples(self) -> int:
        return self.config.crop

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean negative log-likelihood in nats per real (unpadded) sample (deterministic: no ``generator`` needed)."""
        c = self.config
        x = batch["audio"][:, 0].to(self.device)
        mask = batch["mask"].to(self.device).float()
        label = batch.get(c.conditioning) if c.conditioning in ("label", "speaker") else None
        h = self.conditioning(x.shape[0], x.shape[1], label, self.mel(x) if self.upsample is not None else None)
        inp, target = self.shifted_inputs(x)
        out = self(inp, h)
        if c.output == "mulaw":
            nll = F.cross_entropy(out, target, reduction="none")
        else:
            nll = -mol_log_prob(out, target, c.mixtures)
        return (nll * mask).sum() / mask.sum().clamp(min=1.0)

    # --- generation ----------------------------------------------------------------------

    @property
    def accepts(self) -> frozenset[str]:
        mode = self.config.conditioning
        by_mode = {"label": {"label"}, "speaker": {"speaker"}, "mel": {"mel_from"}, "none": set()}[mode]
        return frozenset(by_mode | ({"prompt"} if mode != "mel" else set()))

    @property
    def greedy(self) -> bool:
        return True  # temperature 0: the most likely class (mu-law) or mixture mean at every step

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({"mel_from"}) if self.config.conditioning == "mel" else frozenset()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seconds: float,
        conditions: dict[str, Any] | None = None,
        seed: int | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Generate ``n`` clips ``(n, 1, samples)`` with the cached queue algorithm.

        ``conditions``: ``label`` / ``speaker`` (int64 ``(n,)``; drawn at random from the
        seed when the model is conditioned on them and none is given); ``mel_from`` (a
        waveform ``(n, 1, T)``: the output has its length ``T``, ``seconds`` is ignored);
        ``prompt`` (a waveform ``(n, 1, P)``): the model first listens to the prompt, then
        continues it; the result is the continuation only (``seconds`` long), without the
        prompt. Anything else is a :class:`WavesmithError`.
        """
        from wavesmith.models.wavenet_fast import generate

        c = self.config
        conditions = dict(conditions or {})
        unknown = set(conditions) - {"label", "speaker", "mel_from", "prompt"}
        if unknown:
            raise WavesmithError(f"wavenet does not know the condition(s) {', '.join(sorted(unknown))}")
        for key, mode in (("label", "label"), ("speaker", "speaker"), ("mel_from", "mel")):
            if conditions.get(key) is not None and c.conditioning != mode:
                flag = key.replace("_", "-")
                raise WavesmithError(f"--{flag} needs a wavenet trained with conditioning={mode}; "
                                     f"this one has conditioning={c.conditioning}")
        if c.conditioning == "mel" and conditions.get("mel_from") is None:
            raise WavesmithError("this wavenet is a vocoder (conditioning=mel): pass a waveform with --mel-from")
        if conditions.get("prompt") is not None and conditions.get("mel_from") is not None:
            raise WavesmithError("--prompt and --mel-from cannot be combined")
        if temperature < 0:
            raise WavesmithError("temperature must be >= 0")
        fresh = int.from_bytes(os.urandom(8), "little") >> 1  # not torch.seed(): it reseeds the global RNG
        gen = torch.Generator().manual_seed(int(seed) if seed is not None else fresh)
        prompt = _waveform(conditions.get("prompt"), n, "prompt", self.device)
        mel_from = _waveform(conditions.get("mel_from"), n, "mel_from", self.device)
        samples = mel_from.shape[1] if mel_from is not None else int(round(seconds * self.info.sample_rate))
        label = None
        if c.conditioning in ("label", "speaker"):
            label = conditions.get(c.conditioning)
            if label is None:
                label = torch.randint(0, self.classes, (n,), generator=gen)
            label = torch.as_tensor(label, dtype=torch.long).reshape(-1).expand(n)
            if int(label.min()) < 0 or int(label.max()) >= self.classes:
                raise WavesmithError(f"{c.conditioning} id out of range 0..{self.classes - 1}")
        first = 0 if prompt is None else prompt.shape[1]
        h = self.conditioning(n, first + samples, label, self.mel(mel_from) if mel_from is not None else None)
        primer = None if prompt is None else self.shifted_inputs(prompt)[1]
        values = generate(self, n, samples, h, primer, int(torch.randint(0, 2**31, (1,), generator=gen)), temperature)
        if c.output == "mulaw":
            values = mulaw_decode(values, c.quantization_channels)
        return values.float()[:, None, :].to(self.device)


def _waveform(x: Any, n: int, what: str, device: torch.device) -> torch.Tensor | None:
    """A conditioning waveform as float (n, T) on ``device``; one clip is repeated for n streams."""
    if x is None:
        return None
    x = torch.as_tensor(x, dtype=torch.float32, device=device)
    if x.dim() == 1:
        x = x[None, None]
    if x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or x.shape[1] != 1 or x.shape[0] not in (1, n) or x.shape[2] == 0:
        raise WavesmithError(f"{what} must be one mono waveform or {n} of them, got shape {tuple(x.shape)}")
    return x[:, 0].expand(n, -1).contiguous()


# --- the discretized mixture of logistics (PixelCNN++ section 2.1, 16-bit bins) ----------

BINS16 = 2**16


def quantize16(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] to the centres of 65536 equal bins (16-bit audio)."""
    half = (BINS16 - 1) / 2
    return torch.round((x.clamp(-1, 1) + 1) * half) / half - 1


def mol_log_prob(params: torch.Tensor, x: torch.Tensor, mixtures: int) -> torch.Tensor:
    """Log-probability of 16-bit values ``x`` (B, T) under mixtures ``params`` (B, 3M, T).

    Each component gives a bin the logistic CDF mass between the bin edges; the outermost
    bins take the tails to -inf and +inf so the masses sum to one.
    """
    logit_w, mu, log_s = params.split(mixtures, dim=1)
    log_s = log_s.clamp(min=-16.0)
    x = x[:, None]
    centred = x - mu
    inv_s = torch.exp(-log_s)
    half_bin = 1.0 / (BINS16 - 1)
    plus = inv_s * (centred + half_bin)
    minus = inv_s * (centred - half_bin)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus), for the lowest bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - sigmoid(minus)), for the highest
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_s * centred
    # Where the bin mass underflows float32, use density * bin width (the bin is tiny).
    log_pdf_mid = mid - log_s - 2.0 * F.softplus(mid) + math.log(2 * half_bin)
    log_mass = torch.where(delta > 1e-5, torch.log(delta.clamp(min=1e-12)), log_pdf_mid)
    log_mass = torch.where(x > 1 - half_bin, log_one_minus_cdf_minus, log_mass)
    log_mass = torch.where(x < -1 + half_bin, log_cdf_plus, log_mass)
    return torch.logsumexp(log_mass + F.log_softmax(logit_w, dim=1), dim=1)
