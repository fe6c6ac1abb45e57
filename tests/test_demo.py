"""The main job (README's first command) end to end on the bundled clips, briefly."""

from __future__ import annotations

import json

import pytest

from wavesmith.demo import run_demo
from wavesmith.watermark import detect


def test_demo_generates_from_the_shipped_model_fine_tunes_and_compares_then_reruns(tmp_path):
    import soundfile as sf

    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", minutes=0.05, n=2, log=lines.append)
    assert summary["info"]["clips"] == 48 and set(summary["info"]["labels"]) == {"hihat", "kick", "snare", "tom"}
    assert summary["info"]["splits"]["test"] >= 10  # both sets are measured against enough held-out hits
    assert summary["step"] >= 1
    assert len(summary["shipped"]) == 2 and len(summary["generated"]) == 2
    for folder in ("generated-drums", "generated-mel-diffusion"):  # like with like: the bundled kit pieces in turn
        records = [json.loads(x) for x in (tmp_path / "demo" / folder / "generated.jsonl").read_text().splitlines()]
        assert [r["label"] for r in records] == ["hihat", "kick"], folder
    audio, rate = sf.read(summary["generated"][0], always_2d=True)
    assert rate == 16000 and abs(audio).max() > 0
    metrics = json.loads((tmp_path / "demo" / "metrics-mel-diffusion.json").read_text())
    assert {"value", "real_floor", "noise"} <= set(metrics["fd_logmel"])
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "drums (shipped)" in page and "fine-tuned" in page and page.count("<iframe") == 2
    assert any("Frechet distance" in line for line in lines)
    init = [json.loads(x) for x in (tmp_path / "demo" / "run-mel-diffusion" / "metrics.jsonl").read_text()
            .splitlines() if '"init"' in x]
    assert init and init[0]["source"].endswith("drums.pt")
    # fine-tuned on windows as long as the bundled hits (0.9 s), not mostly padding
    assert "seconds = 0.9" in (tmp_path / "demo" / "run-mel-diffusion" / "config.toml").read_text()

    again = run_demo(tmp_path / "demo", minutes=0.05, n=2, log=lines.append)  # reuses db, resumes the run
    assert again["info"]["clips"] == 48 and again["step"] > summary["step"]


@pytest.mark.slow
def test_demo_can_still_train_a_raw_waveform_model_from_scratch(tmp_path):
    summary = run_demo(tmp_path / "demo", model="wavegan", minutes=0.05, n=2, log=lambda *_: None)
    assert len(summary["generated"]) == 2 and "shipped" not in summary
    audio = __import__("soundfile").read(summary["generated"][0], always_2d=True)[0]
    assert detect(audio.T, 16000).present
