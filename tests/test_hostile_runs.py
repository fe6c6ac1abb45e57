"""Issue 18's defects in checkpoints, runs and generated files (database and audio: test_hostile_defects.py).

Each test failed before its fix. The CLI-wide sweep of bad values is ``test_hostile_input.py``;
the memory bounds on hour-long files are ``test_memory.py``.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

import wavesmith
from toy_model import make_db, tone
from wavesmith import checkpoint as ckpt
from wavesmith import models
from wavesmith.errors import WavesmithError
from wavesmith.generate import generate, save_clips
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


def test_an_unsigned_ogg_is_warned_on_screen(tmp_path, capsys):
    clips = tone(440, 16000, 1.0).T[None]  # (1 clip, 1 channel, samples)
    save_clips(clips, 16000, tmp_path, [{}], format="ogg")
    record = json.loads((tmp_path / "generated.jsonl").read_text())
    if record["c2pa"]["signed"]:
        pytest.skip("this c2pa build signs Ogg files")
    err = capsys.readouterr().err
    assert "warning: 000.ogg" in err and record["c2pa"]["reason"] in err


def test_a_short_write_while_saving_a_checkpoint_is_one_line(tmp_path):
    # A disk filling up mid-file gives a short write, then an error. RLIMIT_FSIZE makes the same
    # happen on any disk (EFBIG where a full disk says ENOSPC): torch used to report it as
    # RuntimeError("unexpected pos"), which hid the reason.
    code = ("import resource, signal, sys, torch; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000)); "
            "from pathlib import Path; from wavesmith.errors import WavesmithError; "
            "from wavesmith import checkpoint as ckpt\n"
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


def test_a_second_train_on_a_run_in_training_is_refused_at_once(tmp_path):
    from wavesmith.files import folder_busy, hold_folder

    db = make_db(tmp_path)
    run = tmp_path / "run"
    with hold_folder(run, "held"):  # what a running `train` holds on its run folder
        assert folder_busy(run)
        with pytest.raises(WavesmithError, match="being trained by another wavesmith process"):
            train(db, "toy_model:ToyModel", run, sets=SETS, progress=False)
        with pytest.raises(WavesmithError, match="being trained by another"):
            train(db, None, run, sets=SETS, progress=False, resume=True)
    assert not folder_busy(run) and not run.exists()  # nothing written; the empty folder it made is gone


def test_a_refused_new_run_leaves_no_empty_run_folder(tmp_path):
    with pytest.raises(WavesmithError, match="holds no clips"):
        from wavesmith.db import Database

        Database.create(tmp_path / "empty.db", sample_rate=8000).close()
        train(tmp_path / "empty.db", "toy_model:ToyModel", tmp_path / "deep" / "run", sets=SETS, progress=False)
    assert not (tmp_path / "deep" / "run").exists()
