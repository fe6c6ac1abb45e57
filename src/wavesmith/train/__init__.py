"""The training engine: one loop for every model (see :mod:`wavesmith.train.engine`).

>>> from wavesmith.train import train
>>> summary = train("drums.db", "wavenet", "runs/drums", sets=["steps=2000"])
"""

from __future__ import annotations

from wavesmith.device import pick_device
from wavesmith.train.config import TrainConfig
from wavesmith.train.engine import lr_factor, train

__all__ = ["TrainConfig", "lr_factor", "pick_device", "train"]
