"""The defects an outside probe found with hostile and careless input (issue 18): database and audio.

Each test failed before its fix. Checkpoints, runs and generated files are in
``test_hostile_runs.py``, the CLI-wide sweep of bad values in ``test_hostile_input.py`` and
the memory bounds on hour-long files in ``test_memory.py``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import wavesmith
from toy_model import make_db, tone
from wavesmith import checkpoint as ckpt
from wavesmith.db import Database
from wavesmith.db.store import shard_path
from wavesmith.errors import WavesmithError
from wavesmith.train import train

SRC = Path(wavesmith.__file__).resolve().parents[1]  # the wavesmith under test, for subprocesses
TESTS = Path(__file__).resolve().parent
SETS = ["steps=2", "workers=0", "batch_size=4", "preview_every=0", "valid_every=0", "warmup_steps=1"]


def test_feature_batches_stay_within_the_sample_budget():
    from wavesmith.evaluate import features as F

    lengths = np.array([100] * 50 + [10_000] * 5 + [1_000_000])
    for run in F._batches(lengths, 64, 50_000):
        n, longest = run.stop - run.start, lengths[run.stop - 1]
        assert n == 1 or n * longest <= 50_000
    assert sum(r.stop - r.start for r in F._batches(lengths, 64, 50_000)) == len(lengths)


def test_evaluate_reads_only_the_start_of_a_long_file(tmp_path):
    from wavesmith.evaluate import features as F

    sf.write(str(tmp_path / "long.wav"), tone(300, 8000, F.MAX_SECONDS + 20), 8000)
    sf.write(str(tmp_path / "short.wav"), tone(300, 8000, 1.0), 8000)
    folder = F.read_folder(tmp_path, 8000, 1)
    assert max(c.shape[-1] for c in folder.clips) == int(F.MAX_SECONDS * 8000)
    assert any("longer than" in n for n in folder.notes)


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_damaged_store_is_refused_before_anything_is_written(tmp_path, damage):
    db_path = make_db(tmp_path, n=6)
    shard = shard_path(db_path, 0)
    if damage == "delete":
        shard.unlink()
    else:
        os.truncate(shard, shard.stat().st_size // 2)
    sf.write(str(tmp_path / "new.wav"), tone(999, 8000, 0.3), 8000)
    with Database.open(db_path) as db:
        before = len(db)
        with pytest.raises(WavesmithError, match="restore the file from a backup"):
            db.add([tmp_path / "new.wav"], workers=1, progress=False)
        assert len(db) == before
    assert shard.exists() == (damage == "truncate")  # nothing appended at offset 0 of a new shard
    with pytest.raises(WavesmithError, match="nothing is written to a damaged store"):
        train(db_path, "toy_model:ToyModel", tmp_path / "run", sets=SETS, progress=False)
    assert not (tmp_path / "run").exists()  # no run folder left to block a rerun


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e4])
def test_one_bad_sample_does_not_hide_the_watermark(tmp_path, bad):
    from wavesmith.watermark import detect_file, embed

    rng = np.random.default_rng(0)
    t = np.arange(5 * 16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)[None]
    y = embed(x, 16000, 4321)
    y[0, 1000] = bad
    sf.write(str(tmp_path / "f.wav"), y.T, 16000, subtype="FLOAT")
    found = detect_file(tmp_path / "f.wav")
    assert found["watermark"] and found["payload"] == 4321


def test_a_read_only_database_reads_and_refuses_writes(tmp_path, monkeypatch):
    db_path = make_db(tmp_path, n=6)
    real_access = os.access

    def no_write(path, mode, **kw):  # what a read-only mount answers (root would write anyway)
        if mode & os.W_OK and Path(path).absolute().is_relative_to(db_path.absolute()):
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", no_write)
    before = sorted(p.name for p in db_path.iterdir())
    with Database.open(db_path) as db:
        assert db.readonly and len(db) == 6 and db.info()["clips"] == 6 and db.errors() == []
        assert db.verify()["problems"] == []
        with pytest.raises(WavesmithError, match="read-only"):
            db.add([tmp_path / "src"], workers=1, progress=False)
    assert sorted(p.name for p in db_path.iterdir()) == before  # no -wal, -shm or .lock made
    summary = train(db_path, "toy_model:ToyModel", tmp_path / "run", sets=SETS, progress=False)
    assert summary["step"] == 2


def _sparse_wav(path: Path, frames: int, rate: int = 16000) -> None:
    """A 16-bit mono WAV whose header says ``frames``; the data is a hole (no disk used)."""
    data = frames * 2
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate,
                                                                                      rate * 2, 2, 16))
        f.write(b"data" + struct.pack("<I", data))
        f.truncate(44 + data)


def test_an_oversized_file_is_recorded_and_the_rest_added(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _sparse_wav(src / "a-huge.wav", 2**30)  # 18.6 h, 2 GiB of data on no disk
    sf.write(str(src / "b-small.wav"), tone(440, 16000, 0.5), 16000)
    Database.create(tmp_path / "db").close()
    # Under a 2.5 GB address-space limit, as the probe ran it: the old decoder died of MemoryError.
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2_500_000_000, 2_500_000_000)); "
            "from wavesmith.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    r = subprocess.run([sys.executable, "-c", code, "db", "add", str(tmp_path / "db"), str(src), "--workers", "1",
                        "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["added"] == 1 and summary["errors"] == 1
    assert "too long" in summary["error_list"][0][1]


def test_any_decoder_failure_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    from wavesmith.db import decode

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        sf.write(str(src / f"{i}.wav"), tone(300 + 100 * i, 8000, 0.3), 8000)
    real = decode._read

    def flaky(path, settings):
        if path.endswith("1.wav"):
            raise MemoryError()
        return real(path, settings)

    monkeypatch.setattr(decode, "_read", flaky)
    with Database.create(tmp_path / "db", sample_rate=8000) as db:
        s = db.add([src], workers=1, progress=False)
        assert s["added"] == 2 and s["errors"] == 1 and "MemoryError" in db.errors()[0]["reason"]


def test_evaluate_skips_a_nan_file_with_a_note(tmp_path):
    from wavesmith.evaluate import evaluate

    gen, ref = tmp_path / "gen", tmp_path / "ref"
    for folder in (gen, ref):
        folder.mkdir()
        for i in range(6):
            sf.write(str(folder / f"{i}.wav"), tone(200 + 50 * i, 8000, 0.5), 8000)
    bad = tone(300, 8000, 0.5)
    bad[100] = np.nan
    sf.write(str(gen / "bad.wav"), bad, 8000, subtype="FLOAT")
    result = evaluate(gen, reference=ref, json_path=tmp_path / "r.json")
    assert result["n_generated"] == 6 and (tmp_path / "r.json").is_file()
    assert {"file": "bad.wav", "reason": "samples are NaN or infinite"} in result["skipped"]


def test_a_full_disk_during_db_add_is_one_line_and_loses_nothing(tmp_path, monkeypatch):
    from wavesmith.db import store

    db_path = make_db(tmp_path, n=4)
    sf.write(str(tmp_path / "src" / "hi" / "new.wav"), tone(999, 8000, 0.3), 8000)
    class FullDisk:  # a shard file on a disk with no space left: every write fails with ENOSPC
        def __init__(self, path, mode):
            self.file = open(path, mode)
            self.tell, self.flush, self.fileno, self.close = (self.file.tell, self.file.flush, self.file.fileno,
                                                              self.file.close)

        @property
        def closed(self):
            return self.file.closed

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "open", FullDisk, raising=False)
    with Database.open(db_path) as db, pytest.raises(WavesmithError, match="the disk is full"):
        db.add([tmp_path / "src"], workers=1, progress=False)
    monkeypatch.undo()
    with Database.open(db_path) as db:
        assert len(db) == 4 and db.verify()["problems"] == []
        assert db.add([tmp_path / "src"], workers=1, progress=False)["added"] == 1


@pytest.mark.parametrize("ratios", ["nan,1,1", "inf,1,1", "1,-1,1", "0,0,0", "1e308,1e308,1"])
def test_split_ratios_must_be_finite_and_positive(tmp_path, ratios):
    with pytest.raises(WavesmithError, match="split ratios"):
        Database.create(tmp_path / "db", split_ratios=ratios)
    assert not (tmp_path / "db").exists()


def test_databases_and_checkpoints_get_the_users_usual_mode(tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    if old != 0o022:
        pytest.skip(f"the test process runs with umask {old:o}")
    with Database.create(tmp_path / "db"):
        pass
    assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == 0o755
    path = ckpt.save({"format": ckpt.FORMAT, "model_name": "x"}, tmp_path / "run" / "c.pt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_db_add_does_not_follow_a_link_out_of_the_source_folder(tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    sf.write(str(src / "in.wav"), tone(300, 8000, 0.3), 8000)
    sf.write(str(outside / "out.wav"), tone(500, 8000, 0.3), 8000)
    (src / "link").symlink_to(outside, target_is_directory=True)
    (src / "inner").symlink_to(src, target_is_directory=True)  # inside: followed once, no loop
    with Database.create(tmp_path / "db", sample_rate=8000) as db:
        s = db.add([src], workers=1, progress=False)
        assert s["added"] == 1 and [c.source for c in db.clips()] == [str(src / "in.wav")]
        assert "outside the source folder" in db.errors()[0]["reason"]


def test_db_errors_escapes_newlines_in_file_names(tmp_path, capsys):
    from wavesmith.cli import main

    src = tmp_path / "src"
    src.mkdir()
    (src / "evil\nforged.wav\tfine").with_suffix(".wav").write_bytes(b"not audio")
    Database.create(tmp_path / "db").close()
    assert main(["db", "add", str(tmp_path / "db"), str(src), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["db", "errors", str(tmp_path / "db")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "\\n" in out[0] and out[0].count("\t") == 1


def test_db_verify_runs_sqlites_integrity_check(tmp_path):
    db_path = make_db(tmp_path, n=4)
    with Database.open(db_path) as db:  # an index that no longer matches its table
        db._con.execute("PRAGMA writable_schema=ON")
        db._con.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX clips_split ON clips(source)' "
                        "WHERE name = 'clips_split'")
    with Database.open(db_path) as db:
        assert any(p.startswith("catalog: row") for p in db.verify()["problems"])


def test_enospc_helper_recognises_sqlite_and_os_errors():
    import sqlite3

    from wavesmith.db.add import _disk_full

    assert _disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert _disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not _disk_full(OSError(errno.EACCES, "Permission denied"))
