"""The defects an outside probe found with hostile and careless input (issue 18), one test each.

Each test failed before its fix. The CLI-wide sweep of bad values is ``test_hostile_input.py``;
the memory bounds on hour-long files are ``test_memory.py``.
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
from wavesmith import models
from wavesmith.db import Database
from wavesmith.db.store import shard_path
from wavesmith.errors import WavesmithError
from wavesmith.generate import generate, save_clips
from wavesmith.train import checkpoint as ckpt
from wavesmith.train import train

SRC = Path(wavesmith.__file__).resolve().parents[1]  # the wavesmith under test, for subprocesses
TESTS = Path(__file__).resolve().parent
SETS = ["steps=2", "workers=0", "batch_size=4", "preview_every=0", "valid_every=0", "warmup_steps=1"]


def cli(*args, cwd=None, env_extra=None) -> subprocess.CompletedProcess:
    """``python -m wavesmith ARGS`` in a fresh process (nothing imported beforehand)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "wavesmith", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    train(make_db(root), "toy_model:ToyModel", root / "run", sets=SETS, progress=False)
    return root / "run"


# --- 1. a checkpoint names code to import ---------------------------------------------------


def test_a_checkpoint_cannot_make_generate_import_a_module(run_dir, tmp_path):
    state, _ = ckpt.load(ckpt.resolve_path(run_dir))
    state["model_name"] = "evilmod:X"
    ckpt.save(state, tmp_path / "evil.pt")
    (tmp_path / "evilmod.py").write_text("open('pwned', 'w').write('ran')\n")
    r = cli("generate", "evil.pt", "--out", "gen", "-n", "1", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--plugin evilmod:X" in r.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "gen").exists()
    with pytest.raises(WavesmithError, match="unknown model"):
        models.get("evilmod:X")


def test_a_plugin_checkpoint_generates_only_with_the_users_opt_in(run_dir, tmp_path):
    path = ckpt.resolve_path(run_dir)
    env = {"PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}"}
    refused = cli("generate", path, "--out", tmp_path / "a", "-n", "1", "--seconds", "0.2", "--no-watermark",
                  env_extra=env)
    assert refused.returncode == 2 and "--plugin toy_model:ToyModel" in refused.stderr
    ok = cli("generate", path, "--out", tmp_path / "b", "-n", "1", "--seconds", "0.2", "--no-watermark",
             "--plugin", "toy_model:ToyModel", env_extra=env)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "b" / "000.wav").is_file()


# --- 2. evaluate's memory follows the batch, not the longest clip ---------------------------


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


# --- 3. a missing or short shard ------------------------------------------------------------


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


# --- 4. detect cleans its input -------------------------------------------------------------


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


# --- 5. a read-only database ----------------------------------------------------------------


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


# --- 6. an oversized file -------------------------------------------------------------------


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


# --- 7 and 8. generate into a folder that is in use or holds files -------------------------


def test_generate_never_replaces_a_users_file(run_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "000.wav").write_bytes(b"my recording")
    (out / "notes.txt").write_text("keep")
    with pytest.raises(WavesmithError, match="already holds 000.wav"):
        generate(run_dir, out, n=2, seconds=0.2, watermark=False)
    assert (out / "000.wav").read_bytes() == b"my recording"
    generate(run_dir, tmp_path / "other", n=1, seconds=0.2, watermark=False)  # a fresh folder works
    (tmp_path / "only-notes").mkdir()
    (tmp_path / "only-notes" / "notes.txt").write_text("keep")
    generate(run_dir, tmp_path / "only-notes", n=1, seconds=0.2, watermark=False)  # unrelated files are fine


def test_a_second_generate_into_a_folder_in_use_fails_at_once(run_dir, tmp_path):
    import fcntl

    out = tmp_path / "busy"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a running generate holds
    try:
        with pytest.raises(WavesmithError, match="another wavesmith run is writing"):
            generate(run_dir, out, n=1, seconds=0.2, watermark=False)
    finally:
        os.close(fd)
    assert list(out.iterdir()) == []


# --- 9. evaluate skips NaN files --------------------------------------------------------------


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


# --- 10. unsigned output is said on screen ----------------------------------------------------


def test_an_unsigned_ogg_is_warned_on_screen(tmp_path, capsys):
    clips = tone(440, 16000, 1.0).T[None]  # (1 clip, 1 channel, samples)
    save_clips(clips, 16000, tmp_path, [{}], format="ogg")
    record = json.loads((tmp_path / "generated.jsonl").read_text())
    if record["c2pa"]["signed"]:
        pytest.skip("this c2pa build signs Ogg files")
    err = capsys.readouterr().err
    assert "warning: 000.ogg" in err and record["c2pa"]["reason"] in err


# --- 11. a full disk ---------------------------------------------------------------------------


def test_a_short_write_while_saving_a_checkpoint_is_one_line(tmp_path):
    # A disk filling up mid-file gives a short write, then an error. RLIMIT_FSIZE makes the same
    # happen on any disk (EFBIG where a full disk says ENOSPC): torch used to report it as
    # RuntimeError("unexpected pos"), which hid the reason.
    code = ("import resource, signal, sys, torch; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000)); "
            "from pathlib import Path; from wavesmith.errors import WavesmithError; "
            "from wavesmith.train import checkpoint as ckpt\n"
            "try: ckpt.save({'format': ckpt.FORMAT, 'model_name': 'x', 'w': torch.zeros(10**6)}, Path(sys.argv[1]))\n"
            "except WavesmithError as e: print(e)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c" / "s.pt")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("cannot save checkpoint") and "too large" in r.stdout
    assert list((tmp_path / "c").iterdir()) == []


def test_the_disk_full_message_of_a_checkpoint(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.os, "write", full)
    with pytest.raises(WavesmithError, match="the disk is full"):
        ckpt.save({"format": ckpt.FORMAT, "model_name": "x"}, tmp_path / "c" / "s.pt")
    monkeypatch.undo()
    assert list((tmp_path / "c").iterdir()) == []


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


# --- 12. split ratios --------------------------------------------------------------------------


@pytest.mark.parametrize("ratios", ["nan,1,1", "inf,1,1", "1,-1,1", "0,0,0", "1e308,1e308,1"])
def test_split_ratios_must_be_finite_and_positive(tmp_path, ratios):
    with pytest.raises(WavesmithError, match="split ratios"):
        Database.create(tmp_path / "db", split_ratios=ratios)
    assert not (tmp_path / "db").exists()


# --- 14. file modes follow the umask ------------------------------------------------------------


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


# --- risks decided ------------------------------------------------------------------------------


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


def test_resume_against_another_database_is_refused(tmp_path):
    a, b = make_db(tmp_path / "a", n=6), make_db(tmp_path / "b", n=8)
    train(a, "toy_model:ToyModel", tmp_path / "run", sets=SETS, progress=False)
    with pytest.raises(WavesmithError, match="not the one this run was trained on"):
        train(b, "toy_model:ToyModel", tmp_path / "run", sets=[*SETS, "steps=3"], resume=True, progress=False)
    with pytest.raises(WavesmithError, match="keeps the batch size"):
        train(a, "toy_model:ToyModel", tmp_path / "run", sets=[*SETS, "steps=3", "batch_size=2"], resume=True,
              progress=False)


def test_mark_in_place_refuses_a_read_only_file(tmp_path):
    from wavesmith.cli import main

    path = tmp_path / "a.wav"
    sf.write(str(path), tone(440, 16000, 3.0), 16000)
    before = path.read_bytes()
    path.chmod(0o444)
    assert main(["mark", str(path), "--in-place"]) == 2
    assert path.read_bytes() == before


def test_enospc_helper_recognises_sqlite_and_os_errors():
    import sqlite3

    from wavesmith.db.add import _disk_full

    assert _disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert _disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not _disk_full(OSError(errno.EACCES, "Permission denied"))
