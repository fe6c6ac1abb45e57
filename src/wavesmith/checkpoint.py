"""Checkpoints: one file per save that holds everything a run and ``generate`` need.

A checkpoint is a ``torch.save`` dict of tensors and plain Python values only, so it
loads with ``torch.load(weights_only=True)`` and never runs code from the file. It holds
the weights, the EMA weights, every optimizer's state, the schedule, the step, the data
position, the random states of every process, the resolved config, the model name and
the database's :class:`~wavesmith.models.base.DataInfo`.

Writing is atomic (:func:`wavesmith.files.atomic_path` with ``fsync``): a temporary file in
the same folder, flushed and ``fsync``-ed, then ``os.replace``-d over the name, and the
folder ``fsync``-ed; a crash or a full disk at any
moment leaves the previous checkpoints as they were. ``RUN/checkpoints`` keeps the last
``keep`` ``step-XXXXXXX.pt`` files plus ``best.pt`` (a hard link to the one with the best
validation loss, so it costs no space while both exist).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import atomic_path, fsync_dir

FORMAT = 1
CHECKPOINTS = "checkpoints"
BEST = "best.pt"
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


def step_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:07d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """``step-*.pt`` files of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def save(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` to ``path`` atomically; a full disk is a :class:`WavesmithError`, nothing replaced."""
    path = Path(path)
    try:
        # Serialised in memory, then written with os.write: torch turns a short write (a disk
        # filling up) into RuntimeError("unexpected pos"); os.write says ENOSPC.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with atomic_path(path, fsync=True) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
            try:
                view = buffer.getbuffer()
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
    except OSError as e:
        reason = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        previous = [p.name for p in list_checkpoints(path.parent.parent) if p != path]
        kept = f"; the previous checkpoint {previous[-1]} is intact" if previous else ""
        raise WavesmithError(f"cannot save checkpoint {path}: {reason}{kept}") from None
    return path


def mark_best(path: Path) -> Path:
    """Make ``best.pt`` next to ``path`` the same file (hard link, or a copy where links fail)."""
    best = path.parent / BEST
    tmp = path.parent / f".{BEST}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        import shutil

        shutil.copyfile(path, tmp)
    os.replace(tmp, best)
    fsync_dir(path.parent)
    return best


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest step checkpoints (``best.pt`` is a separate link)."""
    old = list_checkpoints(run_dir)[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], str]:
    """Read a checkpoint without unpickling code; returns ``(state, sha256 of the file)``.

    A missing, truncated or foreign file is a one-line :class:`WavesmithError`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WavesmithError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise WavesmithError(f"{path} is a folder, not a checkpoint file") from None
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    # Random bytes can trip the unpickler in many ways (IndexError, KeyError, ...): all mean "corrupt".
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, IndexError, KeyError,
            TypeError, AttributeError, OverflowError, UnicodeDecodeError) as e:
        raise WavesmithError(f"{path} is not a readable checkpoint (truncated or corrupt?): {one_line(e, 0)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model_name" not in state:
        raise WavesmithError(f"{path} is not a wavesmith checkpoint (format {FORMAT})")
    return state, hashlib.sha256(data).hexdigest()


def latest(run_dir: Path, warn=print) -> tuple[dict[str, Any], str, Path] | None:
    """The newest checkpoint of a run that loads, skipping (and reporting) broken ones."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            state, digest = load(path)
        except WavesmithError as e:
            warn(f"wavesmith: skipping {e}")
            continue
        return state, digest, path
    return None


def resolve_path(run_or_checkpoint: str | os.PathLike, which: str = "best") -> Path:
    """A checkpoint file given itself, its run folder or the checkpoints folder.

    For a folder, ``which`` picks ``"best"`` (``best.pt``, the lowest validation loss of the
    EMA weights; the newest step when the run has none, as when its valid split is empty)
    or ``"last"`` (the newest ``step-*.pt``).
    """
    if which not in ("best", "last"):
        raise WavesmithError(f"--checkpoint takes best or last, not {which!r}")
    p = Path(run_or_checkpoint)
    if p.is_file():
        return p
    if not p.exists():
        raise WavesmithError(f"no such run or checkpoint: {p}")
    for folder in (p / CHECKPOINTS, p):
        found = list_checkpoints(folder.parent)
        if found:
            best = folder / BEST
            return best if which == "best" and best.is_file() else found[-1]
    raise WavesmithError(f"{p} holds no checkpoints (expected {p / CHECKPOINTS}/step-*.pt)")


# --- random states --------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's random states as tensors and plain values (weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": _plain(random.getstate()),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _plain(x: Any) -> Any:
    return [_plain(v) for v in x] if isinstance(x, (tuple, list)) else x

