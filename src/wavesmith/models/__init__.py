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
    "ddsp": "wavesmith.models.ddsp:DDSP",
}


def names() -> list[str]:
    """Registered model names."""
    return sorted(_MODULES)


def get(name: str) -> type[GenerativeModel]:
    """The model class registered as ``name``, or given as ``"package.module:Class"``.

    An unknown name is a :class:`WavesmithError` listing the registered ones.
    """
    target = _MODULES.get(name, name if ":" in name else None)
    if target is None:
        raise WavesmithError(f"unknown model {name!r}; available models: {', '.join(names())}")
    module, cls = target.split(":")
    try:
        model = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        if name in _MODULES:
            raise  # a registered model that fails to import is a bug, not a user error
        raise WavesmithError(f"cannot import model {name!r}: {e}") from None
    if not (isinstance(model, type) and issubclass(model, GenerativeModel)):
        raise WavesmithError(f"{name!r} is not a wavesmith model (a GenerativeModel subclass)")
    return model


def register(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name`` (for plug-in models and tests)."""
    _MODULES[name] = target


__all__ = ["DataInfo", "GenerativeModel", "get", "names", "register"]
