"""Bad input to ``wavesmith train``: a one-line error, and the last good checkpoint survives."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from toy_model import make_db
from wavesmith import checkpoint as ckpt
from wavesmith.cli import main
from wavesmith.db import Database
from wavesmith.errors import WavesmithError
from wavesmith.train import train

MODEL = "toy_model:ToyModel"
FAST = ["workers=0", "batch_size=4", "log_every=1", "warmup_steps=2", "preview_every=0", "valid_every=0"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return make_db(tmp_path_factory.mktemp("errors"))


@pytest.fixture(scope="module")
def done(db, tmp_path_factory):
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    run_dir = tmp_path_factory.mktemp("done") / "r"
    train(db, MODEL, run_dir, sets=[*FAST, "steps=4", "checkpoint_every=2"], progress=False)
    return run_dir


def run(db, run_dir, *sets, **kw):
    return train(db, kw.pop("model", MODEL), run_dir, sets=[*FAST, *sets], progress=False, **kw)


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_unknown_model_lists_the_registered_ones(db, tmp_path):
    with pytest.raises(WavesmithError) as e:
        run(db, tmp_path / "r", model="nonesuch")
    assert "wavenet" in one_line(e) and "wavegan" in one_line(e)


def test_unknown_config_key_lists_the_valid_ones(db, tmp_path):
    with pytest.raises(WavesmithError) as e:
        run(db, tmp_path / "r", "train.stepz=3")
    assert "steps" in one_line(e) and "batch_size" in one_line(e)
    assert not (tmp_path / "r").exists()


def test_value_of_the_wrong_type_names_the_field(db, tmp_path):
    with pytest.raises(WavesmithError, match="train.batch_size must be an integer"):
        run(db, tmp_path / "r", "batch_size=many")


def test_empty_database_is_refused(tmp_path):
    Database.create(tmp_path / "empty", sample_rate=8000).close()
    with pytest.raises(WavesmithError, match="holds no clips"):
        run(tmp_path / "empty", tmp_path / "r")


def test_empty_train_split_is_refused(tmp_path):
    db = make_db(tmp_path, n=4, split_ratios=(0, 1, 0))
    with pytest.raises(WavesmithError, match="'train' split .* is empty"):
        run(db, tmp_path / "r")


def test_run_folder_of_another_run_needs_resume(db, done):
    with pytest.raises(WavesmithError, match="already holds a run; pass --resume"):
        run(db, done, "steps=8")


def test_resume_with_another_model_is_refused(db, done):
    with pytest.raises(WavesmithError, match="holds a run of model 'toy_model:ToyModel', not 'wavenet'"):
        run(db, done, "steps=8", model="wavenet", resume=True)


def test_resume_on_a_database_of_another_sample_rate_is_refused(done, tmp_path):
    other = make_db(tmp_path, rate=16000)
    with pytest.raises(WavesmithError) as e:
        run(other, done, "steps=8", resume=True)
    assert "sample rate 16000" in one_line(e) and "8000" in one_line(e)


def test_truncated_checkpoint_is_a_clear_error_and_resume_falls_back(db, done, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(done, run_dir)
    newest = ckpt.list_checkpoints(run_dir)[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(WavesmithError) as e:
        ckpt.load(newest)
    assert "truncated or corrupt" in one_line(e)
    state, _ = ckpt.load(ckpt.list_checkpoints(run_dir)[0])
    assert state["step"] == 2
    summary = run(db, run_dir, "steps=5", resume=True)
    assert summary["step"] == 5


def test_full_disk_while_saving_keeps_the_previous_checkpoint(db, done, tmp_path, monkeypatch):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(done, run_dir)
    before = {p.name: p.read_bytes() for p in ckpt.list_checkpoints(run_dir)}

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(WavesmithError) as e:
        run(db, run_dir, "steps=6", resume=True)
    assert "disk is full" in one_line(e) and "step-0000004.pt is intact" in one_line(e)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in ckpt.list_checkpoints(run_dir)} == before
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    assert ckpt.load(ckpt.list_checkpoints(run_dir)[-1])[0]["step"] == 4


def test_changing_the_model_config_on_resume_is_refused(db, done):
    with pytest.raises(WavesmithError, match="model config cannot change"):
        run(db, done, "steps=8", "model.width=9", resume=True)


def test_cli_prints_one_line_and_exits_2(db, tmp_path, capsys):
    code = main(["train", str(db), "--model", MODEL, "--run", str(tmp_path / "r"), "--set", "nope=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("wavesmith: error: unknown config key") and err.count("\n") == 1


def test_checkpoint_of_a_foreign_file_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(WavesmithError, match="not a wavesmith checkpoint"):
        ckpt.load(tmp_path / "x.pt")


def test_save_interrupted_half_way_leaves_the_previous_checkpoint_loadable(done, tmp_path, monkeypatch):
    def killed(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save({"format": ckpt.FORMAT}, ckpt.list_checkpoints(done)[-1])
    monkeypatch.undo()
    assert not [p for p in (done / "checkpoints").iterdir() if p.name.startswith(".")]
    assert ckpt.load(ckpt.list_checkpoints(done)[-1])[0]["step"] == 4


def test_full_disk_while_writing_metrics_is_a_one_line_error(db, tmp_path, monkeypatch):
    from wavesmith.train import logs

    def full(self, kind, step, **figures):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(logs.MetricsLog, "write", full)
    with pytest.raises(WavesmithError) as e:
        run(db, tmp_path / "r", "steps=2")
    assert "disk is full" in one_line(e) and "metrics.jsonl" in one_line(e)


def test_time_limit_takes_hours_minutes_seconds_and_refuses_other_text():
    from wavesmith.cli.train import parse_duration

    assert parse_duration("2h") == 7200 and parse_duration("1h30m") == 5400 and parse_duration("45") == 45
    with pytest.raises(WavesmithError, match="--time takes a duration"):
        parse_duration("two hours")
