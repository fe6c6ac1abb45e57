"""The model registry: architectures by name.

Adding a model means adding one module with a :class:`GenerativeModel` subclass and one
line in ``_MODULES``. Modules are imported on first use, so ``wavesmith db`` commands
never pay for building networks.
"""

from __future__ import annotations

import importlib

from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo, GenerativeModel

# name -> "module:ClassName"
_MODULES = {
    "wavenet": "wavesmith.models.wavenet:WaveNet",
    "wavegan": "wavesmith.models.wavegan:WaveGAN",
    "mel-diffusion": "wavesmith.models.mel_diffusion:MelDiffusion",
    "hifigan": "wavesmith.models.hifigan:HiFiGAN",
    "distilled-vocoder": "wavesmith.models.distilled_vocoder:DistilledVocoder",
    "diffwave": "wavesmith.models.diffwave:DiffWave",
    "ddsp": "wavesmith.models.ddsp:DDSP",
    "tts": "wavesmith.models.tts:TTS",
}


def names() -> list[str]:
    """Registered model names."""
    return sorted(_MODULES)


def get(name: str, allow_import: bool = False) -> type[GenerativeModel]:
    """The model class registered as ``name``; a ``"package.module:Class"`` only with ``allow_import``.

    Importing a module runs its code, so a name read from a file (a checkpoint, a run's
    config) must resolve to a registered model: only the user opts into a plug-in, by
    naming it on the command line (``train --model``, ``generate --plugin``) or calling
    :func:`register`. An unknown name is a :class:`WavesmithError` listing the registered ones.
    """
    target = _MODULES.get(name)
    if target is None and ":" in name and allow_import:
        target = name
    if target is None:
        hint = f"; if you trust {name.split(':')[0]!r}, opt in with --plugin {name}" if ":" in name else ""
        raise WavesmithError(f"unknown model {name!r}; available models: {', '.join(names())}{hint}")
    module, _, cls = target.partition(":")
    try:
        model = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        if target != name:
            raise  # a registered model that fails to import is a bug, not a user error
        raise WavesmithError(f"cannot import model {name!r}: {e}") from None
    if not (isinstance(model, type) and issubclass(model, GenerativeModel)):
        raise WavesmithError(f"{name!r} is not a wavesmith model (a GenerativeModel subclass)")
    return model


def register(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name``: the user's opt-in to a plug-in model."""
    _MODULES[name] = target


__all__ = ["DataInfo", "GenerativeModel", "get", "names", "register"]
