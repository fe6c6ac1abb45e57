"""Models that ship inside the package, so ``wavesmith generate drums`` works right after install.

Each shipped model is two files in ``wavesmith/data/models``: ``NAME.pt``, a checkpoint
holding only the EMA weights in float16 (loaded like any checkpoint, with
``weights_only=True``, and widened to float32), and ``NAME.json``, its card: what it was
trained on and under which licences, for how many steps and how long, and its measured
figures. ``wavesmith models`` lists them.

A name on the command line is a run folder or checkpoint when such a path exists, and a
shipped model otherwise: a run folder always wins over a shipped name.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from wavesmith import checkpoint as ckpt
from wavesmith.errors import WavesmithError
from wavesmith.files import write_text


def folder() -> Path:
    """Where the shipped models live inside the installed package."""
    return Path(str(resources.files("wavesmith"))) / "data" / "models"


def names() -> list[str]:
    """Names of the shipped models (those with both weights and a card)."""
    here = folder()
    if not here.is_dir():
        return []
    return sorted(p.stem for p in here.glob("*.json") if p.with_suffix(".pt").is_file())


def card(name: str) -> dict[str, Any]:
    """The card of shipped model ``name``."""
    if name not in names():
        raise WavesmithError(f"no shipped model {name!r}; shipped models: {', '.join(names()) or 'none'}")
    return json.loads((folder() / f"{name}.json").read_text(encoding="utf-8"))


def path(name: str) -> Path:
    """The weights file of shipped model ``name``."""
    card(name)
    return folder() / f"{name}.pt"


def resolve(run_or_name: str | os.PathLike) -> Path | None:
    """The shipped weights named ``run_or_name``, or None when it is a path or no shipped name."""
    text = str(run_or_name)
    if Path(text).exists() or os.sep in text or text not in names():
        return None
    return folder() / f"{text}.pt"


def checkpoint_path(run_or_name: str | os.PathLike, which: str = "best") -> Path:
    """The checkpoint file a name stands for: a checkpoint, a run folder (its ``which``
    checkpoint), or a shipped model; a path that exists wins over a shipped name."""
    found = resolve(run_or_name)
    if found is not None:
        return found
    if not Path(run_or_name).exists():
        raise WavesmithError(f"no run, checkpoint or shipped model named {str(run_or_name)!r}; "
                             f"shipped models: {', '.join(names()) or 'none'}")
    return ckpt.resolve_path(run_or_name, which)


def slim(state: dict[str, Any], dtype: torch.dtype = torch.float16) -> dict[str, Any]:
    """A checkpoint for shipping: the EMA weights alone (in ``dtype``), config, data and model name."""
    weights = state["ema"]["shadow"] if state.get("ema") else state["model"]
    return {
        "format": state["format"],
        "model_name": state["model_name"],
        "config": state["config"],
        "data_info": state["data_info"],
        "step": state["step"],
        "model": {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in weights.items()},
        "ema": None,
    }


def export(checkpoint: str | os.PathLike, name: str, about: dict[str, Any], out: str | os.PathLike | None = None,
           dtype: torch.dtype = torch.float16) -> Path:
    """Write ``checkpoint`` as shipped model ``name`` (weights + card) into ``out`` (default: the package)."""
    state, digest = ckpt.load(ckpt.resolve_path(checkpoint))
    target = Path(out) if out is not None else folder()
    target.mkdir(parents=True, exist_ok=True)
    ckpt.save(slim(state, dtype), target / f"{name}.pt")
    info = {"name": name, "model": state["model_name"], "step": int(state["step"]), "source_sha256": digest,
            "labels": state["data_info"].get("labels", []), "sample_rate": state["data_info"]["sample_rate"], **about}
    write_text(target / f"{name}.json", json.dumps(info, indent=2) + "\n")
    return target / f"{name}.pt"
