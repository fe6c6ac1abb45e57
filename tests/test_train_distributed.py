"""Data parallelism: a 2-process CPU training under torchrun (gloo), as CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toy_model import make_db
from wavesmith import checkpoint as ckpt
from wavesmith.db import Database
from wavesmith.train import train
from wavesmith.train.logs import read

TESTS = Path(__file__).resolve().parent
# No noise in the toy loss, so two processes with batch 1 see exactly what one process with
# batch 2 sees (DistributedSampler deals the shuffled order out round-robin).
# Validation at every step: a new best makes every process join an extra (collective) save.
SETS = ["workers=0", "log_every=1", "warmup_steps=1", "valid_every=1", "checkpoint_every=100",
        "preview_every=2", "preview_seconds=0.25", "model.noise=0", "steps=2",
        "model.sgd=true", "model.lr=0.1"]  # SGD: Adam's m/sqrt(v) would blow rounding noise up on tiny gradients


TEARDOWN_ABORT = "terminate called without an active exception"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = make_db(tmp_path_factory.mktemp("ddp"), n=24, split_ratios=(0.75, 0.25, 0))
    with Database.open(path) as db:  # two steps draw 12 clips: the first epoch, where the orders agree
        assert len(db.clips("train")) >= 12 and len(db.clips("valid")) >= 1
    return path


def test_two_cpu_processes_stay_in_sync_match_one_process_and_only_rank0_writes(db, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "wavesmith", "train", str(db), "--model", "toy_model:ToyModel", "--run-dir", str(tmp_path / "ddp"),
           "--batch-size", "1", "--no-progress", *(a for s in SETS for a in ("--set", s))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 and TEARDOWN_ABORT in done.stderr:
        # Known open bug: now and then a process aborts in C++ while exiting, after the run
        # has finished and written everything. Retry once, in a fresh folder, so that this
        # test keeps checking what it is about; the bug itself is recorded in the notes.
        # The warning keeps the first attempt's account for the warnings summary: torchrun's own
        # exit status and its failure report tell whether a worker (status 1, "exitcode: -6" for
        # a rank) or the launcher itself (status -6) aborted, which is where the cause lies.
        import shutil
        import warnings

        warnings.warn(f"torchrun exit abort, retried: status {done.returncode}; {done.stderr[-1500:]}", stacklevel=1)
        shutil.rmtree(tmp_path / "ddp")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    print(done.stdout, done.stderr[-5000:])  # shown by pytest if an assertion below fails
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("step 2/2") == 1  # only rank 0 prints the summary
    lines = read(tmp_path / "ddp")
    assert [x["step"] for x in lines if x["kind"] == "train"] == [1, 2]  # one writer, no duplicates
    assert [x["step"] for x in lines if x["kind"] == "valid"] == [1, 2]
    syncs = [x for x in lines if x["kind"] == "sync"]
    assert [x["step"] for x in syncs] == [1, 2] and all(x["in_sync"] and len(x["checksums"]) == 2 for x in syncs)
    assert sorted(p.name for p in (tmp_path / "ddp" / "previews").iterdir()) == ["step-0000002.png",
                                                                                 "step-0000002.wav"]
    state, _ = ckpt.load(ckpt.list_checkpoints(tmp_path / "ddp")[-1])
    assert state["world_size"] == 2 and len(state["rng"]) == 2

    train(db, "toy_model:ToyModel", tmp_path / "one", sets=[*SETS, "batch_size=2"], progress=False)
    alone, _ = ckpt.load(ckpt.list_checkpoints(tmp_path / "one")[-1])
    for key, value in alone["model"].items():
        torch.testing.assert_close(state["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
