"""``db add``: bad inputs, manifests, incremental runs, duplicates, options, prune, export."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from sounds import make_corpus, tone, write
from wavesmith.db import Database
from wavesmith.db.catalog import split_for
from wavesmith.errors import WavesmithError


def new_db(tmp_path, name="db", **kw) -> Database:
    return Database.create(tmp_path / name, **kw)


def add(db, *sources, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("workers", 1)
    return db.add(list(sources), **kw)


def make_bad_inputs(root):
    """One file for every kind of bad input; returns {name: expected reason fragment}."""
    root.mkdir(parents=True, exist_ok=True)
    good = write(root / "good.flac", tone(440, 44100, 0.5), 44100)
    (root / "corrupt.flac").write_bytes(good.read_bytes()[:60])
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("this is not audio\n" * 20)
    sf.write(str(root / "nan.wav"), np.full((800, 1), np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(str(root / "inf.wav"), np.full((800, 1), np.inf, np.float32), 16000, subtype="FLOAT")
    write(root / "short.wav", tone(440, 16000, 0.01), 16000)
    write(root / "silent.wav", np.zeros((100, 1), np.float32)[:0], 16000)
    os.symlink(root / "gone.wav", root / "dangling.wav")
    return {
        "corrupt.flac": "cannot decode",
        "empty.wav": "empty file",
        "text.wav": "cannot decode",
        "nan.wav": "NaN",
        "inf.wav": "NaN or infinite",
        "short.wav": "shorter than the minimum",
        "silent.wav": "no audio samples",
        "dangling.wav": "No such file",
    }


def test_every_bad_input_is_skipped_with_its_reason_and_counted(tmp_path):
    expected = make_bad_inputs(tmp_path / "src")
    (tmp_path / "notes.xyz").write_text("hello")
    db = new_db(tmp_path)
    summary = add(db, tmp_path / "src", tmp_path / "notes.xyz", min_duration=0.05)
    assert summary["added"] == 1
    assert summary["errors"] == len(expected) + 1
    reasons = {os.path.basename(e["path"]): e["reason"] for e in db.errors()}
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert "unsupported format '.xyz'" in reasons["notes.xyz"]
    assert db.info()["errors"] == len(expected) + 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped_with_permission_denied(tmp_path):
    p = write(tmp_path / "src" / "locked.wav", tone(300, 16000, 0.3), 16000)
    p.chmod(0)
    db = new_db(tmp_path)
    assert add(db, tmp_path / "src")["errors"] == 1
    assert "ermission denied" in db.errors()[0]["reason"]


def test_path_without_read_permission_is_skipped(tmp_path, monkeypatch):
    # Root reads anything, so the permission check itself is what is exercised here.
    write(tmp_path / "src" / "locked.wav", tone(300, 16000, 0.3), 16000)
    write(tmp_path / "src" / "open.wav", tone(500, 16000, 0.3), 16000)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: "locked" not in str(p) and real_access(p, mode))
    db = new_db(tmp_path)
    s = add(db, tmp_path / "src")
    assert (s["added"], s["errors"]) == (1, 1)
    assert db.errors()[0]["reason"] == "permission denied"


def test_bad_inputs_never_harm_stored_clips(tmp_path):
    make_corpus(tmp_path / "good", n=6)
    db = new_db(tmp_path)
    add(db, tmp_path / "good")
    before = db.fingerprint()
    audio = {c.id: db.audio(c.id) for c in db.clips()}
    make_bad_inputs(tmp_path / "bad")
    add(db, tmp_path / "bad")
    assert len(db) == 8  # good.flac and short.wav (no --min-duration here) among the bad ones
    for clip_id, x in audio.items():
        np.testing.assert_array_equal(db.audio(clip_id), x)
    assert db.fingerprint() != before
    assert db.verify()["problems"] == []


def test_non_audio_files_in_folders_are_ignored_not_errors(tmp_path):
    make_corpus(tmp_path / "src", n=3)
    (tmp_path / "src" / "README.txt").write_text("notes")
    db = new_db(tmp_path)
    s = add(db, tmp_path / "src")
    assert (s["added"], s["errors"], s["ignored_not_audio"]) == (3, 0, 1)


def test_manifest_gives_labels_speakers_and_text_relative_to_its_folder(tmp_path):
    make_corpus(tmp_path / "data" / "audio", n=4, labels=("x",))
    rows = [
        {"path": "audio/x/clip000.wav", "label": "yes", "speaker": "ann", "text": "Yes."},
        {"path": "audio/x/clip001.flac", "label": "no", "speaker": "bob", "text": "No."},
        {"path": "audio/x/missing.wav", "label": "no"},
    ]
    (tmp_path / "data" / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    db = new_db(tmp_path)
    s = add(db, manifest=tmp_path / "data" / "m.jsonl")
    assert (s["added"], s["errors"]) == (2, 1)
    assert db.labels == ["no", "yes"] and db.speakers == ["ann", "bob"]
    assert {(c.label, c.speaker, c.text) for c in db.clips()} == {("yes", "ann", "Yes."), ("no", "bob", "No.")}
    assert "does not exist" in db.errors()[0]["reason"]


def test_manifest_language_is_stored_from_csv_and_jsonl(tmp_path):
    make_corpus(tmp_path / "audio", n=4, labels=("x",))
    (tmp_path / "m.csv").write_text(
        "path,label,speaker,text,language\n"
        "audio/x/clip000.wav,,ann,Bonjour.,fr-fr\n"
        "audio/x/clip001.flac,,bob,Hello.,en-us\n"
        "audio/x/clip002.ogg,,bob,Hello again.,\n"
    )
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "audio/x/clip003.mp3", "language": "pt-br"}))
    db = new_db(tmp_path)
    add(db, manifest=tmp_path / "m.csv")
    add(db, manifest=tmp_path / "m.jsonl")
    got = {os.path.basename(c.source): (c.speaker, c.language) for c in db.clips()}
    assert got == {"clip000.wav": ("ann", "fr-fr"), "clip001.flac": ("bob", "en-us"),
                   "clip002.ogg": ("bob", None), "clip003.mp3": (None, "pt-br")}
    assert db.languages == ["en-us", "fr-fr", "pt-br"]
    info = db.info()
    assert info["languages"] == {"en-us": 1, "fr-fr": 1, "pt-br": 1}
    assert sum(info["language_hours"].values()) == pytest.approx(3 * 0.5 / 3600, rel=0.05)
    from wavesmith.db.report import format_info

    assert "languages    en-us 1, fr-fr 1, pt-br 1" in format_info(info)


@pytest.mark.parametrize("bad", ["en us", "fr/fr", "ängl", "x" * 36, "en-us;DROP"])
def test_a_bad_language_makes_its_row_an_error_on_record(tmp_path, bad):
    make_corpus(tmp_path / "audio", n=2, labels=("x",))
    rows = [{"path": "audio/x/clip000.wav", "language": bad}, {"path": "audio/x/clip001.flac", "language": "en_GB-2"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    db = new_db(tmp_path)
    s = add(db, manifest=tmp_path / "m.jsonl")
    assert (s["added"], s["errors"]) == (1, 1)
    assert [c.language for c in db.clips()] == ["en_GB-2"]
    (error,) = db.errors()
    assert error["path"].endswith("clip000.wav") and "bad language" in error["reason"]


def test_readding_with_a_changed_language_relabels_it_and_forgets_a_corrected_error(tmp_path):
    make_corpus(tmp_path / "audio", n=2, labels=("x",))
    m = tmp_path / "m.csv"
    m.write_text("path,label,language\naudio/x/clip000.wav,a,en-us\naudio/x/clip001.flac,b,de\n")
    db = new_db(tmp_path)
    add(db, manifest=m)
    m.write_text("path,language\naudio/x/clip000.wav,en-gb\naudio/x/clip001.flac,d e\n")
    s = add(db, manifest=m)
    assert (s["decoded"], s["relabelled"], s["errors"]) == (1, 1, 1)  # the bad row is "decoded" as an error
    assert {c.label: c.language for c in db.clips()} == {"a": "en-gb", "b": "de"}  # labels kept
    m.write_text("path,language\naudio/x/clip000.wav,en-gb\naudio/x/clip001.flac,de\n")
    s = add(db, manifest=m)
    assert (s["decoded"], s["relabelled"], s["errors"]) == (0, 0, 0)
    assert db.errors() == [] and db.info()["errors"] == 0


def test_csv_manifest_metadata_wins_over_folder_labels(tmp_path):
    make_corpus(tmp_path / "src", n=2, labels=("folder",))
    (tmp_path / "src" / "m.csv").write_text("path,label,text\nfolder/clip000.wav,special,hello there\n")
    db = new_db(tmp_path)
    add(db, tmp_path / "src", manifest=tmp_path / "src" / "m.csv", label_from="parent")
    texts = {os.path.basename(c.source): (c.label, c.text) for c in db.clips()}
    assert texts == {"clip000.wav": ("special", "hello there"), "clip001.flac": ("folder", None)}


def test_manifest_without_a_path_column_is_one_user_error(tmp_path):
    (tmp_path / "m.csv").write_text("file,label\na.wav,x\n")
    db = new_db(tmp_path)
    with pytest.raises(WavesmithError, match="no 'path' column"):
        add(db, manifest=tmp_path / "m.csv")
    assert len(db) == 0


def test_second_add_decodes_nothing(tmp_path):
    make_corpus(tmp_path / "src", n=8)
    db = new_db(tmp_path)
    first = add(db, tmp_path / "src")
    again = add(db, tmp_path / "src")
    assert first["decoded"] == 8 and again["decoded"] == 0 and again["unchanged"] == 8
    assert len(db) == 8


def test_identical_audio_under_two_paths_is_stored_once(tmp_path):
    paths = make_corpus(tmp_path / "src", n=3)
    shutil.copy(paths[0], tmp_path / "src" / "copy.wav")
    db = new_db(tmp_path)
    s = add(db, tmp_path / "src")
    assert (s["added"], s["duplicates"]) == (3, 1)
    assert db.info()["duplicates"] == 1


def test_changed_source_replaces_its_clip(tmp_path):
    p = write(tmp_path / "src" / "a.wav", tone(300, 16000, 0.5), 16000)
    db = new_db(tmp_path)
    add(db, tmp_path / "src")
    old = db.clips()[0]
    write(p, tone(700, 16000, 0.4), 16000)
    os.utime(p, (old.id + 1e6, old.id + 1e6))  # a different mtime for sure
    s = add(db, tmp_path / "src")
    assert s["decoded"] == 1 and len(db) == 1
    assert db.clips()[0].hash != old.hash and db.clips()[0].length == 6400


def test_prune_drops_clips_whose_sources_are_gone(tmp_path):
    paths = make_corpus(tmp_path / "src", n=4)
    shutil.copy(paths[1], tmp_path / "src" / "twin.wav")
    db = new_db(tmp_path)
    add(db, tmp_path / "src")
    paths[0].unlink()
    paths[1].unlink()  # its audio survives through twin.wav
    s = db.prune()
    assert (s["sources_removed"], s["clips_removed"], s["clips"]) == (2, 1, 3)
    assert any(c.source.endswith("twin.wav") for c in db.clips())
    assert db.verify()["problems"] == []


def test_splits_do_not_depend_on_what_else_is_in_the_database(tmp_path):
    make_corpus(tmp_path / "a", n=12)
    make_corpus(tmp_path / "b", n=30)
    one, two = new_db(tmp_path, "one"), new_db(tmp_path, "two")
    add(one, tmp_path / "a")
    add(two, tmp_path / "b")  # b's first 12 clips are a's clips
    splits = {c.hash: c.split for c in two.clips()}
    assert all(splits[c.hash] == c.split for c in one.clips())


def test_split_shares_follow_the_ratios():
    rng = np.random.default_rng(0)
    hashes = [f"{int(x):016x}" for x in rng.integers(0, 2**64, 4000, dtype=np.uint64)]
    names = [split_for(h, (0.8, 0.1, 0.1)) for h in hashes]
    assert names.count("train") / 4000 == pytest.approx(0.8, abs=0.03)
    assert names.count("test") / 4000 == pytest.approx(0.1, abs=0.02)


def test_trim_silence_cuts_leading_and_trailing_quiet(tmp_path):
    x = np.concatenate([np.zeros((8000, 1)), tone(440, 16000, 0.25), np.zeros((8000, 1))]).astype(np.float32)
    write(tmp_path / "src" / "a.wav", x, 16000)
    db = new_db(tmp_path)
    add(db, tmp_path / "src", trim_silence=True)
    assert db.clips()[0].duration == pytest.approx(0.25 + 2 * 0.005, abs=0.003)


def test_split_long_cuts_files_into_pieces_and_max_duration_skips_long_ones(tmp_path):
    write(tmp_path / "src" / "long.wav", np.random.default_rng(0).uniform(-0.5, 0.5, (16000 * 5, 1)), 16000)
    db = new_db(tmp_path)
    add(db, tmp_path / "src", split_long=2.0)
    assert sorted(c.length for c in db.clips()) == [16000, 32000, 32000]
    assert sorted(c.segment for c in db.clips()) == [0, 1, 2]
    other = new_db(tmp_path, "other")
    s = add(other, tmp_path / "src", max_duration=3.0)
    assert s["errors"] == 1 and "longer than the maximum" in other.errors()[0]["reason"]


def test_parallel_and_serial_ingest_store_the_same_audio(tmp_path):
    make_corpus(tmp_path / "src", n=24)
    serial, parallel = new_db(tmp_path, "s"), new_db(tmp_path, "p")
    add(serial, tmp_path / "src", workers=1)
    add(parallel, tmp_path / "src", workers=2)
    assert [c.hash for c in serial.clips()] == [c.hash for c in parallel.clips()]
    assert serial.fingerprint() == parallel.fingerprint()


def test_export_writes_clips_back_as_files(tmp_path):
    make_corpus(tmp_path / "src", n=5)
    db = new_db(tmp_path)
    add(db, tmp_path / "src", label_from="parent")
    files = db.export(tmp_path / "out", format="wav")
    assert len(files) == 5 and all(f.parent.name in ("kick", "snare") for f in files)
    clip = db.clips()[0]
    f = next(p for p in files if p.stem == f"{clip.id:07d}")
    data, rate = sf.read(str(f), dtype="float32", always_2d=True)
    assert rate == 16000
    np.testing.assert_allclose(data.T, db.audio(clip.id), atol=1 / 32768)
    with pytest.raises(WavesmithError, match="cannot export"):
        db.export(tmp_path / "out2", format="xyz")


def test_readding_with_new_metadata_relabels_without_decoding(tmp_path):
    make_corpus(tmp_path / "src", n=2, labels=("x",))
    db = new_db(tmp_path)
    add(db, tmp_path / "src", label_from="parent")
    (tmp_path / "src" / "m.csv").write_text("path,label\nx/clip000.wav,special\n")
    s = add(db, tmp_path / "src", manifest=tmp_path / "src" / "m.csv")
    assert (s["decoded"], s["relabelled"]) == (0, 1)
    assert sorted(c.label for c in db.clips()) == ["special", "x"]  # no --label-from: x is kept


def test_opus_files_are_decoded(tmp_path):
    sf.write(str(tmp_path / "v.opus"), tone(440, 48000, 0.5), 48000, format="OGG", subtype="OPUS")
    db = new_db(tmp_path)
    assert add(db, tmp_path / "v.opus")["added"] == 1
    assert db.clips()[0].orig_rate == 48000


def test_hidden_files_are_ignored_and_symlink_loops_are_walked_once(tmp_path):
    make_corpus(tmp_path / "src", n=2)
    (tmp_path / "src" / "._clip.wav").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    write(tmp_path / "src" / ".git" / "x.wav", tone(900, 16000, 0.2), 16000)
    os.symlink(tmp_path / "src", tmp_path / "src" / "kick" / "loop")
    db = new_db(tmp_path)
    s = add(db, tmp_path / "src")
    assert (s["added"], s["errors"], s["ignored_not_audio"]) == (2, 0, 1)
