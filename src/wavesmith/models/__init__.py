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
}


def names() -> list[str]:
    """Registered model names."""
    return sorted(_MODULES)


def get(name: str) -> type[GenerativeModel]:
    """The model class registered as ``name``; a :class:`WavesmithError` listing valid names."""
    if name not in _MODULES:
        raise WavesmithError(f"unknown model {name!r}; available models: {', '.join(names())}")
    module, cls = _MODULES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def register(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name`` (for plug-in models and tests)."""
    _MODULES[name] = target


__all__ = ["DataInfo", "GenerativeModel", "get", "names", "register"]
