"""The watermark on real recordings (opt-in: ``-m realdata``, WAVESMITH_REAL_AUDIO=DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.watermark import MIN_SECONDS, detect, embed
from wavesmith.watermark.spread import MIN_MARK_DBFS, TARGET_SNR_DB

pytestmark = pytest.mark.realdata


def _recordings(limit: int) -> list[tuple[np.ndarray, int]]:
    root = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/nonexistent"))
    if not root.is_dir():
        pytest.skip("no real recordings (set WAVESMITH_REAL_AUDIO)")
    out = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in A.AUDIO_EXTENSIONS:
            continue
        try:
            x, rate = A.read(path)
        except WavesmithError:
            continue
        if x.shape[-1] >= MIN_SECONDS * rate:
            out.append((x, rate))
    step = max(1, len(out) // limit)
    return out[::step][:limit]


def test_no_false_positives_on_real_recordings():
    clips = _recordings(300)
    assert len(clips) >= 100
    assert [i for i, (x, r) in enumerate(clips) if detect(x, r).present] == []


def test_real_recordings_are_detected_with_their_payload_at_30_db_snr():
    bits_right = bits = 0
    for i, (x, rate) in enumerate(_recordings(20)):
        y = embed(x, rate, 1000 + i)
        if 10 * np.log10(np.mean(x**2)) > MIN_MARK_DBFS + TARGET_SNR_DB:  # else the floor applies
            assert 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2)) >= 30.0
        d = detect(y, rate)
        assert d.present
        bits_right += 16 - bin(d.payload ^ (1000 + i)).count("1")
        bits += 16
    assert bits_right / bits >= 0.97  # 1 s clips carry each bit on few cells
