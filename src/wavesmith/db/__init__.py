"""The clip database: ingest folders of recordings, store them compactly, serve training crops.

>>> from wavesmith.db import Database, ClipDataset
>>> db = Database.create("drums.db", sample_rate=16000)
>>> db.add(["recordings/"], label_from="parent")
>>> ds = ClipDataset(db, split="train", crop_samples=16384)

See :mod:`wavesmith.db.database` for the layout on disk.
"""

from __future__ import annotations

from pathlib import Path

from wavesmith.db.catalog import FORMAT_VERSION, SPLITS
from wavesmith.db.database import Clip, Database
from wavesmith.db.dataset import ClipDataset


def bundled_clips_dir() -> Path:
    """The small corpus of drum hits shipped with wavesmith (``<label>/<name>.flac``, see its ATTRIBUTION.txt)."""
    return Path(__file__).resolve().parent.parent / "data" / "clips"


__all__ = ["Clip", "ClipDataset", "Database", "FORMAT_VERSION", "SPLITS", "bundled_clips_dir"]
