"""Opt-in: the metric ordering on real drum recordings (runs benchmarks/evaluate_ordering.py, ~3 min)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.realdata
REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/nonexistent"))
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "evaluate_ordering.py"


@pytest.mark.skipif(not (REAL / "drums").is_dir(), reason="set WAVESMITH_REAL_AUDIO to the real recordings")
def test_damage_ranks_and_copies_are_flagged_on_real_drums():
    proc = subprocess.run([sys.executable, str(BENCH), "--json"], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "WAVESMITH_REAL_AUDIO": str(REAL)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["classifier_test_accuracy"] > 0.8
    failed = [k for k, v in out["checks"].items() if v is False]
    assert failed == [], failed
    assert out["checks"]["copies_flagged_share"] >= 0.9 and out["checks"]["fresh_flagged_share"] == 0.0
