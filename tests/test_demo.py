"""The main job (README's first command) end to end on the bundled clips, briefly."""

from __future__ import annotations

import json

from wavesmith.demo import run_demo
from wavesmith.watermark import detect


def test_demo_builds_trains_generates_marked_files_and_evaluates_then_reruns(tmp_path):
    import soundfile as sf

    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", minutes=0.05, n=2, log=lines.append)
    assert summary["info"]["clips"] == 48 and set(summary["info"]["labels"]) == {"hat", "kick", "snare", "tom"}
    assert summary["step"] >= 1
    files = summary["generated"]
    assert len(files) == 2
    audio, rate = sf.read(files[0], always_2d=True)
    assert rate == 16000 and audio.shape[0] == 16000 and abs(audio).max() > 0
    assert detect(audio.T, rate).present
    metrics = json.loads((tmp_path / "demo" / "metrics-wavegan.json").read_text())
    assert {"value", "real_floor", "noise"} <= set(metrics["fd_logmel"])
    assert (tmp_path / "demo" / "report-wavegan.html").stat().st_size > 10_000
    assert any("Frechet distance" in line for line in lines)

    again = run_demo(tmp_path / "demo", minutes=0.05, n=2, log=lines.append)  # reuses db, resumes the run
    assert again["info"]["clips"] == 48 and again["step"] > summary["step"]
