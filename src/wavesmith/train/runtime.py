"""Process-level helpers of a run: which device, stopping on signals, side work off the random streams."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from wavesmith import checkpoint as ckpt


@dataclass
class StopSignal:
    """Set by SIGINT/SIGTERM: finish the step, save, leave."""

    reason: str | None = None
    handlers: dict = field(default_factory=dict)

    def install(self) -> None:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.handlers[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.handlers.clear()

    def _handle(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl+C aborts at once
        self.reason = name
        print(f"\nwavesmith: {name}: finishing this step and saving a checkpoint (Ctrl+C again aborts)",
              file=sys.stderr, flush=True)

    def restore(self) -> None:
        for sig, h in self.handlers.items():
            signal.signal(sig, h)


@contextmanager
def isolated_rng():
    """Run a block (validation, previews) without moving the training random streams."""
    state = ckpt.rng_state()
    try:
        yield
    finally:
        ckpt.set_rng_state(state)


@contextmanager
def eval_mode(model: torch.nn.Module):
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)
