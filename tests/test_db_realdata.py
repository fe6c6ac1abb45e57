"""Ingest the real recordings from shared/tools/get-real-audio: every audio file is accounted for."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from wavesmith.audio import AUDIO_EXTENSIONS
from wavesmith.db import Database

pytestmark = pytest.mark.realdata
REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/nonexistent"))


def audio_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]


@pytest.mark.skipif(not (REAL / "drums").is_dir(), reason="set WAVESMITH_REAL_AUDIO to the real recordings")
def test_every_real_recording_is_ingested_or_accounted_for(tmp_path):
    db = Database.create(tmp_path / "db")
    folders = [REAL / "drums", REAL / "samples"]
    s = db.add(folders, label_from="parent", progress=False)
    assert s["errors"] == 0
    assert s["added"] + s["duplicates"] == sum(len(audio_files(f)) for f in folders)
    for name in ("speech-en", "speech-en-16k"):
        manifest = REAL / name / "metadata.csv"
        rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
        s = db.add([], manifest=manifest, progress=False)
        assert (s["added"] + s["duplicates"], s["errors"]) == (len(rows), 0)
    assert db.speakers and all(c.text for c in db.clips() if c.speaker)
    assert db.verify()["problems"] == []
