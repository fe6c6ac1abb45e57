"""The bundled default corpus: real drum hits, licensed, laid out by label."""

from __future__ import annotations

import soundfile as sf

from wavesmith.db import Database, bundled_clips_dir


def test_bundled_clips_are_short_mono_16k_flac_in_label_folders():
    root = bundled_clips_dir()
    files = sorted(root.glob("*/*.flac"))
    assert 40 <= len(files) <= 60
    assert {p.parent.name for p in files} == {"kick", "snare", "hihat", "tom"}
    for p in files:
        i = sf.info(str(p))
        assert (i.samplerate, i.channels) == (16000, 1)
        assert 0.0 < i.duration < 1.0
    assert sum(p.stat().st_size for p in root.rglob("*")) < 1_500_000


def test_every_bundled_clip_has_an_attribution_entry():
    root = bundled_clips_dir()
    text = (root / "ATTRIBUTION.txt").read_text()
    assert "CC0" in (root / "LICENSE.txt").read_text()
    for p in root.glob("*/*.flac"):
        assert f"{p.parent.name}/{p.name}\n" in text


def test_bundled_clips_build_a_labelled_database(tmp_path):
    db = Database.create(tmp_path / "db")
    summary = db.add([bundled_clips_dir()], label_from="parent", progress=False)
    assert summary["errors"] == 0 and summary["ignored_not_audio"] == 2  # the two .txt files
    assert db.labels == ["hihat", "kick", "snare", "tom"]
    assert len(db) == len(list(bundled_clips_dir().glob("*/*.flac")))
