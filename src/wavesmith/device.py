"""Which device to run on: the one choice ``train``, ``generate`` and every other command share."""

from __future__ import annotations

import torch

from wavesmith.errors import WavesmithError


def pick_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``name``, or the best available: CUDA (GPU ``local_rank`` under torchrun), then MPS, then CPU."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise WavesmithError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise WavesmithError(f"device {name!r} asked for, but this machine has no usable CUDA GPU")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise WavesmithError("device 'mps' asked for, but Apple MPS is not available here")
    return dev
