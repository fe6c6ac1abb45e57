"""The clip database: ingest folders of recordings, store them compactly, serve training crops.

>>> from wavesmith.db import Database, ClipDataset
>>> db = Database.create("drums.db", sample_rate=16000)
>>> db.add(["recordings/"], label_from="parent")
>>> ds = ClipDataset(db, split="train", crop_samples=16384)

See :mod:`wavesmith.db.database` for the layout on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wavesmith.db.catalog import FORMAT_VERSION, SPLITS
from wavesmith.db.database import Clip, Database

if TYPE_CHECKING:
    from wavesmith.db.dataset import ClipDataset


def __getattr__(name: str):
    # ClipDataset needs torch; importing it lazily keeps `wavesmith db ...` quick to start.
    if name == "ClipDataset":
        from wavesmith.db.dataset import ClipDataset

        return ClipDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bundled_clips_dir() -> Path:
    """The small corpus of drum hits shipped with wavesmith (``<label>/<name>.flac``, see its ATTRIBUTION.txt)."""
    return Path(__file__).resolve().parent.parent / "data" / "clips"


__all__ = ["Clip", "ClipDataset", "Database", "FORMAT_VERSION", "SPLITS", "bundled_clips_dir"]
