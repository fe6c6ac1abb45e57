"""The studio's one gate to the file system: every path typed in the page is resolved here.

The studio serves a browser page, and whoever can reach the page can type a path into
it. :func:`inside` turns such a path into a real one under the ``--root`` folder, or
refuses it: an absolute path, a ``..`` step, or a symbolic link whose target lies outside
the root. Every read and write the studio makes on a user's behalf goes through it.
"""

from __future__ import annotations

import os
from pathlib import Path

from wavesmith.errors import WavesmithError


def inside(root: str | os.PathLike, path: str | os.PathLike, *, exists: bool = False) -> Path:
    """The real path that ``path`` (relative to ``root``) names, checked to stay under ``root``.

    Refused with :class:`WavesmithError`: an absolute path, any ``..`` step, a NUL byte, and
    a path that, with symbolic links followed, leaves ``root``. An empty path is the root
    itself. ``exists`` also refuses a path that is not there.
    """
    text = os.fspath(path).strip()
    if "\0" in text:
        raise WavesmithError("a path may not contain a NUL character")
    rel = Path(text)
    if rel.is_absolute() or text.startswith("~"):
        raise WavesmithError(f"{text}: give a path relative to the studio's root folder, not an absolute one")
    if ".." in rel.parts:
        raise WavesmithError(f"{text}: '..' is not allowed; paths stay inside the studio's root folder")
    base = Path(root).resolve()
    real = (base / rel).resolve()  # follows every link, including ones that do not resolve yet
    if real != base and base not in real.parents:
        raise WavesmithError(f"{text}: leads outside the studio's root folder (through a symbolic link)")
    if exists and not real.exists():
        raise WavesmithError(f"{text}: no such file or folder under the studio's root")
    return real


def relative(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """``path`` (under ``root``) as the page shows it: relative to the root, '.' for the root."""
    return str(Path(path).resolve().relative_to(Path(root).resolve())) or "."
