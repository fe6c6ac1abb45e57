"""``scripts/gpu-check.sh --dry-run``: the GPU check's every step, tiny, on a CPU, so it is ready when a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about two minutes on one core: a dozen processes that each import torch
def test_dry_run_runs_every_step_and_writes_one_json_with_the_ratios(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=900)
    summary = json.loads((tmp_path / "gpu-check.json").read_text())
    assert done.returncode == 0 and summary["failed"] == [], done.stdout + done.stderr[-3000:]
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == ["env", "wavenet_speed", "wavegan_speed", "torchrun_2proc", "train_wavenet_bf16",
                           "generate_wavenet", "train_wavegan_bf16", "generate_wavegan", "train_wavegan_compile",
                           "engine_overhead", "ingest_speed", "dataset_speed"]
    assert "skipped" in steps["train_wavegan_compile"]
    assert all(s["result"] is not None for s in steps.values() if "skipped" not in s)
    assert steps["wavenet_speed"]["result"]["generate_1_stream_vs_reference"] > 0
    assert steps["wavegan_speed"]["result"]["generate_vs_reference"] > 0
    assert steps["ingest_speed"]["result"]["ingest_vs_reference"] > 0
    assert steps["torchrun_2proc"]["result"]["processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-check.json", "gpu-check.log"]
