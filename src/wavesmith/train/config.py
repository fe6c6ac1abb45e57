"""The training engine's configuration: one typed dataclass, the ``[train]`` table of a run.

Every field has a default that works for a first run; a TOML file's ``[train]`` table or
``--set key=value`` overrides fields by name (see :mod:`wavesmith.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wavesmith.errors import WavesmithError

MAX_PREVIEW_SECONDS = 60.0
MAX_PREVIEW_COUNT = 64
MAX_BATCH = 65536
MAX_WORKERS = 256


@dataclass
class TrainConfig:
    """How the engine runs a model's training steps (the model's own maths lives in its Config)."""

    steps: int = 20000  # total training steps of the run; a resumed run continues up to this
    batch_size: int = 16  # clips per batch and per process (global batch = batch_size * processes)
    workers: int = 2  # DataLoader worker processes per training process (0 = load in the main process)
    seed: int = 0  # seeds the weights, data order, crops and every random draw of the run
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    compile: bool = False  # torch.compile the model's modules (slow start, faster steps on GPUs)
    grad_clip: float = 1.0  # largest gradient norm per optimizer and update (0 = no clipping)
    lr_schedule: Literal["cosine", "constant"] = "cosine"  # learning-rate multiplier after warm-up
    warmup_steps: int = 100  # linear warm-up of the learning rate from 0 over this many steps
    decay_steps: int = 0  # length of the cosine decay in steps (0 = steps)
    min_lr_ratio: float = 0.1  # learning rate at the end of the cosine, as a share of the peak
    ema_decay: float = 0.999  # decay of the weight average used for generation (0 = plain weights)
    log_every: int = 10  # steps between lines of metrics.jsonl (and TensorBoard points)
    valid_every: int = 500  # steps between validation losses on the valid split (0 = only at the end)
    valid_batches: int = 8  # batches of the valid split per validation
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # most recent checkpoints kept (plus best.pt, the best validation loss)
    preview_every: int = 1000  # steps between preview clips in RUN/previews (0 = none)
    preview_count: int = 2  # clips per preview (concatenated into one file)
    preview_seconds: float = 1.0  # length of each preview clip
    preview_eval: bool = False  # also log wavesmith.evaluate.quick_metrics of the previews

    def validate(self) -> None:
        """Refuse values no run can use (called after every override)."""
        positive = ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "valid_batches")
        for name in positive:
            if getattr(self, name) < 1:
                raise WavesmithError(f"train.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("workers", "warmup_steps", "decay_steps", "valid_every", "preview_every", "preview_count"):
            if getattr(self, name) < 0:
                raise WavesmithError(f"train.{name} must not be negative, not {getattr(self, name)}")
        if self.batch_size > MAX_BATCH or self.workers > MAX_WORKERS:  # index lists and processes, not memory
            raise WavesmithError(f"train.batch_size must be at most {MAX_BATCH} and train.workers at most "
                                 f"{MAX_WORKERS}, not {self.batch_size} and {self.workers}")
        if not 0 <= self.seed < 2**32:
            raise WavesmithError(f"train.seed must be in [0, 2^32), not {self.seed}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise WavesmithError(f"train.ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.grad_clip < 0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise WavesmithError("train.grad_clip >= 0 and 0 <= train.min_lr_ratio <= 1")
        # Previews are sampled mid-run: a length no model can make in memory would crash the
        # run before its next checkpoint, so it is refused here, before training starts.
        if not 0 < self.preview_seconds <= MAX_PREVIEW_SECONDS or self.preview_count > MAX_PREVIEW_COUNT:
            raise WavesmithError(f"train.preview_seconds must be in (0, {MAX_PREVIEW_SECONDS:g}] and "
                                 f"train.preview_count at most {MAX_PREVIEW_COUNT}")
