"""An exponential moving average of a model's weights, the weights ``generate`` uses.

Averaging the iterates of stochastic gradient descent gives smoother, better samples than
the last iterate (Polyak & Juditsky, 1992; used by WaveNet-era vocoders, StyleGAN's
``G_ema`` and diffusion models). The decay warms up as ``min(decay, (1 + t) / (10 + t))``
(the TensorFlow ExponentialMovingAverage ``num_updates`` rule) so that a short run's
average is not dominated by the random initial weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """Shadow copies of every floating-point parameter and buffer of ``model``."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in _state(model).items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards the current weights (call after each optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        state = _state(model)
        keys = [k for k, v in state.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.shadow[k] for k in keys], [state[k].detach() for k in keys], 1.0 - decay)
        for k, v in state.items():
            if not v.is_floating_point():
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)

    @contextmanager
    @torch.no_grad()
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Run a block with the averaged weights in ``model``, then put the trained ones back."""
        state = _state(model)
        saved = {k: v.detach().clone() for k, v in state.items()}
        try:
            for k, v in state.items():
                v.copy_(self.shadow[k])
            yield model
        finally:
            for k, v in state.items():
                v.copy_(saved[k])


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers by state-dict name (the tensors themselves, not copies)."""
    return dict(model.state_dict(keep_vars=True))
