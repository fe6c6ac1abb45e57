"""Creating, opening, filling and reading a clip database."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from sounds import make_corpus, tone, write
from wavesmith.db import Database, catalog
from wavesmith.db.catalog import FORMAT_VERSION, split_for
from wavesmith.errors import WavesmithError


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    root = tmp_path_factory.mktemp("basics")
    paths = make_corpus(root / "src", n=20)
    db = Database.create(root / "db", sample_rate=16000, channels=1)
    summary = db.add([root / "src"], label_from="parent", workers=2, progress=False)
    yield db, summary, paths
    db.close()


def test_add_stores_every_format_rate_and_channel_count(filled):
    db, summary, paths = filled
    assert summary["added"] == len(paths) and summary["errors"] == 0
    clips = db.clips()
    assert len(clips) == len(paths)
    assert {c.orig_rate for c in clips} == {8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000}
    assert {c.orig_channels for c in clips} == {1, 2}
    assert {c.orig_format for c in clips} == {"WAV", "FLAC", "OGG", "MP3", "AIFF"}


def test_audio_is_resampled_and_mixed_to_the_database_format(filled):
    db, _, _ = filled
    for clip in db.clips():
        x = db.audio(clip.id)
        assert x.dtype == np.float32 and x.shape[0] == 1
        assert x.shape[1] == clip.length
        # 0.5 s at any source rate is ~8000 frames at 16 kHz (lossy codecs add a little padding)
        assert abs(x.shape[1] - 8000) < 2500
        assert clip.duration == pytest.approx(clip.length / 16000)
        assert 0.0 < clip.peak <= 1.0 and -40 < clip.rms_db < 0


def test_stored_tone_keeps_its_frequency_after_resampling(tmp_path):
    write(tmp_path / "src" / "t.wav", tone(1000.0, 44100, 1.0), 44100)
    db = Database.create(tmp_path / "db", sample_rate=16000)
    db.add([tmp_path / "src"], progress=False)
    x = db.audio(db.clips()[0].id)[0]
    assert x.shape == (16000,)
    assert np.argmax(np.abs(np.fft.rfft(x))) == pytest.approx(1000, abs=2)  # 1 Hz bins over 1 s


def test_labels_from_parent_folders_are_sorted_and_indexed(filled):
    db, _, _ = filled
    assert db.labels == ["kick", "snare"]
    assert db.speakers == []
    assert {c.label for c in db.clips()} == {"kick", "snare"}


def test_splits_partition_the_clips_and_follow_the_content_hash(filled):
    db, _, _ = filled
    ids = {s: {c.id for c in db.clips(s)} for s in ("train", "valid", "test")}
    assert sum(len(v) for v in ids.values()) == len(db.clips())
    assert set().union(*ids.values()) == {c.id for c in db.clips()}
    for clip in db.clips():
        assert clip.split == split_for(clip.hash, db.split_ratios)


def test_info_has_the_documented_keys(filled):
    db, _, paths = filled
    info = db.info()
    for key in ("clips", "hours", "errors", "splits", "labels", "speakers", "languages", "language_hours"):
        assert key in info
    assert info["clips"] == len(paths)
    assert sum(info["splits"].values()) == len(paths)
    assert info["labels"] == {"kick": 10, "snare": 10}
    assert sum(info["orig_sample_rates"].values()) == len(paths)
    assert sum(info["duration_histogram"].values()) == len(paths)
    assert info["hours"] == pytest.approx(sum(c.duration for c in db.clips()) / 3600, rel=1e-3)


def test_reopened_database_reads_the_same(filled):
    db, _, _ = filled
    again = Database.open(db.path)
    try:
        assert again.sample_rate == 16000 and again.channels == 1
        assert again.fingerprint() == db.fingerprint()
        clip = again.clips()[3]
        np.testing.assert_array_equal(again.audio(clip.id), db.audio(clip.id))
    finally:
        again.close()


def test_create_refuses_an_existing_database(filled):
    db, _, _ = filled
    with pytest.raises(WavesmithError, match="already exists"):
        Database.create(db.path)


def test_open_refuses_a_missing_database(tmp_path):
    with pytest.raises(WavesmithError, match="not a wavesmith clip database"):
        Database.open(tmp_path / "nothing")


def test_open_refuses_an_incompatible_format_version(tmp_path):
    Database.create(tmp_path / "db").close()
    con = sqlite3.connect(tmp_path / "db" / "catalog.sqlite")
    con.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(WavesmithError, match="incompatible"):
        Database.open(tmp_path / "db")


def test_create_checks_its_arguments(tmp_path):
    with pytest.raises(WavesmithError, match="sample rate"):
        Database.create(tmp_path / "a", sample_rate=10)
    with pytest.raises(WavesmithError, match="split ratios"):
        Database.create(tmp_path / "b", split_ratios="0.5,0.5")


def test_stereo_database_keeps_two_channels(tmp_path):
    write(tmp_path / "src" / "m.wav", tone(300.0, 22050, 0.5, channels=1), 22050)
    write(tmp_path / "src" / "s.flac", tone(500.0, 48000, 0.5, channels=2), 48000)
    db = Database.create(tmp_path / "db", sample_rate=24000, channels=2)
    db.add([tmp_path / "src"], progress=False)
    for clip in db.clips():
        x = db.audio(clip.id)
        assert x.shape == (2, 12000)
    mono = next(c for c in db.clips() if c.orig_channels == 1)
    x = db.audio(mono.id)
    np.testing.assert_array_equal(x[0], x[1])  # mono is copied to both channels


def test_fingerprint_changes_when_clips_are_added(tmp_path):
    db = Database.create(tmp_path / "db")
    empty = db.fingerprint()
    write(tmp_path / "a.wav", tone(300.0, 16000, 0.3), 16000)
    db.add([tmp_path / "a.wav"], progress=False)
    assert db.fingerprint() != empty


def test_an_open_reader_sees_clips_another_writer_adds(tmp_path):
    write(tmp_path / "a.wav", tone(300.0, 16000, 0.3), 16000)
    write(tmp_path / "b.wav", tone(600.0, 16000, 0.4), 16000)
    writer = Database.create(tmp_path / "db")
    writer.add([tmp_path / "a.wav"], progress=False)
    reader = Database.open(tmp_path / "db")
    first = reader.clips()[0]
    reader.audio(first.id)  # maps the shard as it is now
    writer.add([tmp_path / "b.wav"], progress=False)
    new = [c for c in reader.clips() if c.id != first.id]
    assert len(new) == 1
    assert reader.audio(new[0].id).shape == (1, 6400)  # the grown shard is mapped again


# --- format 1 (no language column) ------------------------------------------------------------


def make_format_1(tmp_path):
    """A database as format 1 wrote it: no clips.language, version 1 in both places; returns its path."""
    write(tmp_path / "src" / "a.wav", tone(300.0, 16000, 0.3), 16000)
    write(tmp_path / "src" / "b.wav", tone(500.0, 8000, 0.4), 8000)
    with Database.create(tmp_path / "db") as db:
        db.add([tmp_path / "src"], progress=False, workers=1, label_from="parent")
    con = sqlite3.connect(tmp_path / "db" / "catalog.sqlite")
    con.execute("ALTER TABLE clips DROP COLUMN language")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    return tmp_path / "db"


def catalog_state(path) -> tuple[int, str, list[str]]:
    con = sqlite3.connect(path / "catalog.sqlite")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        meta = con.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()[0]
        columns = [r[1] for r in con.execute("PRAGMA table_info(clips)")]
        return version, meta, columns
    finally:
        con.close()


def test_format_1_database_reads_every_language_as_unknown_without_changing(tmp_path):
    from wavesmith.db import ClipDataset

    path = make_format_1(tmp_path)
    for readonly in (True, False):  # opening, even writable, does not migrate: only a write does
        with Database.open(path, readonly=readonly) as db:
            assert len(db.clips()) == 2 and all(c.language is None for c in db.clips())
            assert db.languages == [] and db.labels == ["src"]
            assert db.info()["languages"] == {}
            item = ClipDataset(db, split=None, crop_samples=1000)[0]
            assert item["language"].item() == -1 and item["orig_rate"].item() in (8000, 16000)
    assert catalog_state(path)[:2] == (1, "1") and "language" not in catalog_state(path)[2]


def test_writing_to_a_format_1_database_migrates_it_in_place_keeping_its_clips(tmp_path):
    path = make_format_1(tmp_path)
    with Database.open(path, readonly=True) as old:
        before = [(c.id, c.hash, c.label, c.split) for c in old.clips()]
        fingerprint = old.fingerprint()
    (tmp_path / "m.csv").write_text("path,language\nsrc/a.wav,en-us\n")
    with Database.open(path) as db:
        s = db.add([], manifest=tmp_path / "m.csv", progress=False, workers=1)
        assert (s["decoded"], s["relabelled"]) == (0, 1)
        assert db.format_version == FORMAT_VERSION and db.languages == ["en-us"]
        assert [(c.id, c.hash, c.label, c.split) for c in db.clips()] == before
        assert {os.path.basename(c.source): c.language for c in db.clips()} == {"a.wav": "en-us", "b.wav": None}
        assert db.fingerprint() != fingerprint  # a language changed
        assert db.verify()["problems"] == []
    assert catalog_state(path) == (FORMAT_VERSION, str(FORMAT_VERSION), catalog_state(path)[2])
    assert catalog_state(path)[2][-1] == "language"


def test_migration_alone_changes_no_fingerprint(tmp_path):
    path = make_format_1(tmp_path)
    with Database.open(path) as db:
        fingerprint = db.fingerprint()
        with db.writing():
            pass
        assert db.format_version == FORMAT_VERSION and db.fingerprint() == fingerprint


def test_a_migration_that_fails_midway_leaves_format_1(tmp_path):
    path = make_format_1(tmp_path)

    class Failing:  # a connection that dies just before the version bump
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA user_version="):
                raise OSError("killed")
            return self.con.execute(sql, *args)

        @property
        def in_transaction(self):
            return self.con.in_transaction

    con = catalog.connect(path)
    with pytest.raises(OSError, match="killed"):
        catalog.migrate(Failing(con))
    con.close()
    assert catalog_state(path)[:2] == (1, "1") and "language" not in catalog_state(path)[2]
    with Database.open(path) as db:
        assert db.format_version == 1 and len(db.clips()) == 2


def test_a_new_database_has_the_language_column(tmp_path):
    Database.create(tmp_path / "db").close()
    version, meta, columns = catalog_state(tmp_path / "db")
    assert (version, meta) == (FORMAT_VERSION, str(FORMAT_VERSION)) == (2, "2") and "language" in columns
