"""``wavesmith evaluate`` end to end on a small clip database: JSON schema, labels, copies, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import degrade
import numpy as np
import pytest

from wavesmith import audio as A
from wavesmith.cli import main
from wavesmith.db import Database
from wavesmith.evaluate import evaluate
from wavesmith.evaluate.run import classifier_for

SR = 8000


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaldb")
    clips, labels = degrade.synthetic_clips(120, SR, seed=1, seconds=0.5)
    for i, (c, k) in enumerate(zip(clips, labels, strict=True)):
        A.write(root / "src" / degrade.LABELS[k] / f"c{i:03d}.wav", c, SR)
    db = Database.create(root / "db", sample_rate=SR, split_ratios=(0.6, 0.2, 0.2))
    db.add([root / "src"], label_from="parent", progress=False)
    classifier_for(db, max_steps=50, batch_size=32)  # cache a quickly trained classifier; evaluate() reuses it
    db.close()
    return root / "db"


def _generated(folder: Path, n: int = 24, seed: int = 7, labels_shift: int | None = 0) -> Path:
    clips, labels = degrade.synthetic_clips(n, SR, seed=seed, seconds=0.5)
    lines = []
    for i, (c, k) in enumerate(zip(clips, labels, strict=True)):
        A.write(folder / f"g{i:02d}.wav", c, SR)
        if labels_shift is not None:
            lines.append(json.dumps({"file": f"g{i:02d}.wav", "label": degrade.LABELS[(k + labels_shift) % 4]}))
    if lines:
        (folder / "generated.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_cli_prints_a_table_and_writes_every_metric_with_its_calibration(db_path, tmp_path, capsys):
    gen = _generated(tmp_path / "gen")
    assert main(["evaluate", str(gen), "--db", str(db_path), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "fd_logmel" in out and "real_floor" in out and "(cached)" in out
    assert "accuracy per requested label: " in out
    res = json.loads((tmp_path / "e.json").read_text())
    for key in ("fd_logmel", "memorization", "classifier_accuracy", "inception_score", "fd_classifier", "ndb_k"):
        assert {"value", "real_floor", "noise", "better"} <= set(res[key]), key
    assert isinstance(res["memorization"]["flagged"], list)
    assert res["classifier"]["cached"] is True and res["classifier"]["test_accuracy"] >= 0.8
    assert res["classifier_accuracy"]["value"] >= 0.8  # the requested labels of generated.jsonl
    assert res["fd_logmel"]["noise"] > 10 * res["fd_logmel"]["value"]
    assert res["n_generated"] == 24 and res["floor_source"] == "the valid split"


def test_wrong_requested_labels_give_low_classifier_accuracy(db_path, tmp_path):
    gen = _generated(tmp_path / "gen", labels_shift=1)
    res = evaluate(gen, db=db_path)
    assert res["classifier_accuracy"]["value"] <= 0.3


def test_exported_training_clips_are_flagged_and_fresh_clips_are_not(db_path, tmp_path):
    gen = _generated(tmp_path / "gen", n=12, labels_shift=None)
    with Database.open(db_path) as db:
        for c in db.clips("train")[:5]:
            A.write(gen / f"copy{c.id}.wav", db.audio(c.id), SR)
        copies = sorted(f"copy{c.id}.wav" for c in db.clips("train")[:5])
    res = evaluate(gen, db=db_path)
    assert sorted(res["memorization"]["flagged"]) == copies
    assert res["memorization"]["real_floor"] == 0.0
    assert res["classifier_accuracy"]["value"] is None  # no generated.jsonl: nothing was requested


def test_unreadable_files_are_listed_and_skipped(db_path, tmp_path):
    gen = _generated(tmp_path / "gen", n=8)
    (gen / "broken.wav").write_bytes(b"RIFF not really a wave file")
    res = evaluate(gen, db=db_path)
    assert [s["file"] for s in res["skipped"]] == ["broken.wav"]
    assert res["n_generated"] == 8
    assert any("broken.wav" in n for n in res["notes"])


def test_other_rates_and_stereo_files_are_converted_and_reported(db_path, tmp_path):
    clips, _ = degrade.synthetic_clips(8, 16000, seed=3, seconds=0.5)
    for i, c in enumerate(clips):
        A.write(tmp_path / "gen" / f"s{i}.wav", np.repeat(c, 2, axis=0), 16000)
    res = evaluate(tmp_path / "gen", db=db_path)
    notes = " | ".join(res["notes"])
    assert "8 file(s) in generated folder at 16000 Hz resampled to 8000 Hz" in notes
    assert "8 file(s) in generated folder with 2 channel(s) mixed down to mono" in notes
    assert res["fd_logmel"]["value"] < 0.2 * res["fd_logmel"]["noise"]


def test_empty_folder_is_a_one_line_error(db_path, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no audio files" in err


def test_database_without_a_test_split_is_a_one_line_error(tmp_path, capsys):
    clips, _ = degrade.synthetic_clips(6, SR, seed=2, seconds=0.5)
    for i, c in enumerate(clips):
        A.write(tmp_path / "src" / f"c{i}.wav", c, SR)
    with Database.create(tmp_path / "db", sample_rate=SR, split_ratios=(1, 0, 0)) as db:
        db.add([tmp_path / "src"], progress=False)
    assert main(["evaluate", str(tmp_path / "src"), "--db", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no clips in its 'test' split (train: 6)" in err


def test_reference_folder_mode_has_label_free_metrics_and_flags_copies(tmp_path):
    ref = _generated(tmp_path / "ref", n=24, seed=11, labels_shift=None)
    gen = _generated(tmp_path / "gen", n=10, seed=12, labels_shift=None)
    (gen / "dup.wav").write_bytes((ref / "g03.wav").read_bytes())
    res = evaluate(gen, reference=ref, json_path=tmp_path / "r.json")
    assert res["memorization"]["flagged"] == ["dup.wav"]
    assert "inception_score" not in res and res["classifier"]["available"] is False
    assert res["fd_logmel"]["value"] < 0.2 * res["fd_logmel"]["noise"]
    assert json.loads((tmp_path / "r.json").read_text())["n_reference"] == 12


def test_classifier_is_retrained_when_the_database_changes(db_path, tmp_path):
    import shutil

    copy = tmp_path / "db"
    shutil.copytree(db_path, copy)
    with Database.open(copy) as db:
        clf, info = classifier_for(db, max_steps=5)
        assert info["cached"] is True
        clips, _ = degrade.synthetic_clips(4, SR, seed=99, seconds=0.5)
        for i, c in enumerate(clips):
            A.write(tmp_path / "more" / "tone_low" / f"m{i}.wav", c, SR)
        db.add([tmp_path / "more"], label_from="parent", progress=False)
        clf, info = classifier_for(db, max_steps=5)
        assert info["cached"] is False
        assert [p.name for p in (copy / "evaluate").glob("classifier-*.pt")] == [f"classifier-{db.fingerprint()}.pt"]


def test_quick_metrics_rank_real_clips_above_noise(db_path):
    from wavesmith.evaluate import quick_metrics

    real, _ = degrade.synthetic_clips(16, 16000, seed=21, seconds=0.5)  # another rate: resampled to the database's
    rng = np.random.default_rng(0)
    noise = [(0.05 * rng.standard_normal((1, 8000))).astype(np.float32) for _ in range(16)]
    import torch

    good = quick_metrics([torch.from_numpy(c[0]) for c in real], 16000, db_path)  # 1-D tensors, a path
    with Database.open(db_path) as db:
        bad = quick_metrics(noise, 16000, db)
    assert set(good) == {"fd_logmel", "loudness_w1", "centroid_w1", "duration_w1"}
    assert all(isinstance(v, float) for v in good.values())
    assert bad["fd_logmel"] > 10 * good["fd_logmel"] and bad["centroid_w1"] > 3 * good["centroid_w1"]


def test_reference_seconds_compares_with_the_first_seconds_of_long_real_clips(tmp_path, capsys):
    # Real clips: a half-second hit, then 2.5 s of a loud noise tail the generated clips lack.
    clips, _ = degrade.synthetic_clips(24, SR, seed=21, seconds=0.5)
    rng = np.random.default_rng(0)
    for i, c in enumerate(clips):
        tail = 0.3 * rng.standard_normal((*c.shape[:-1], int(2.5 * SR))).astype(np.float32)
        A.write(tmp_path / "ref" / f"r{i:02d}.wav", np.concatenate([c, tail], -1), SR)
    gen = _generated(tmp_path / "gen", n=12, seed=22, labels_shift=None)
    whole = evaluate(gen, reference=tmp_path / "ref")
    first = evaluate(gen, reference=tmp_path / "ref", reference_seconds=0.5)
    assert first["reference_seconds"] == 0.5 and whole["reference_seconds"] is None
    assert first["fd_logmel"]["value"] < 0.2 * whole["fd_logmel"]["value"]
    assert main(["evaluate", str(gen), "--reference", str(tmp_path / "ref"), "--reference-seconds", "0.5"]) == 0
    assert "their first 0.5 s" in capsys.readouterr().out
    assert main(["evaluate", str(gen), "--reference", str(tmp_path / "ref"), "--reference-seconds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--reference-seconds must be a positive number" in err[0]


def test_accuracy_per_label_says_what_each_requested_label_was_taken_for(db_path, tmp_path):
    res = evaluate(_generated(tmp_path / "right"), db=db_path, report_path=tmp_path / "right.html")
    per = res["classifier_accuracy"]["per_label"]
    assert sum(r["n"] for r in per.values()) == 24 and set(per) <= set(degrade.LABELS)
    assert all(r["value"] >= 0.5 and r["real_floor"] >= 0.5 for r in per.values())
    assert "accuracy per requested label" in (tmp_path / "right.html").read_text()
    shifted = evaluate(_generated(tmp_path / "shifted", labels_shift=1), db=db_path)["classifier_accuracy"]
    for j, name in enumerate(degrade.LABELS):  # asked for label j, the clip is label j - 1
        if name in shifted["per_label"]:
            row = shifted["per_label"][name]
            assert row["value"] <= 0.5 and row["taken_for"] == degrade.LABELS[(j - 1) % 4], (name, row)
