"""Opt-in: the universal vocoder on real recordings (runs benchmarks/vocoder_quality.py on a few clips)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.realdata
REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/nonexistent"))
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "vocoder_quality.py"


@pytest.mark.skipif(not (REAL / "drums").is_dir(), reason="set WAVESMITH_REAL_AUDIO to the real recordings")
def test_universal_vocoder_resynthesizes_unseen_speech_and_drums_closely():
    proc = subprocess.run([sys.executable, str(BENCH), "--json", "--clips", "6", "--seconds", "1"],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "WAVESMITH_REAL_AUDIO": str(REAL)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    quality = json.loads(proc.stdout)["quality"]
    # 8 kHz speech: judged below its 4 kHz Nyquist, where the recording has content.
    assert quality["speech"]["vocoder"]["mel_l1_in_band"] < 0.5, quality["speech"]
    assert quality["drums"]["vocoder"]["mel_l1"] < 0.5, quality["drums"]
    # Griffin-Lim fits the magnitudes it was given, but its phase shows at other STFT resolutions.
    assert quality["drums"]["vocoder"]["mr_stft"] < quality["drums"]["griffin_lim_32"]["mr_stft"], quality["drums"]
