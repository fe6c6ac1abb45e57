"""``wavesmith interpolate``: latent morphs between two seeds of a trained WaveGAN run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from toy_model import make_db
from wavesmith import audio as A
from wavesmith.cli import main
from wavesmith.errors import WavesmithError
from wavesmith.generate import generate
from wavesmith.interpolate import interpolate, lerp, slerp
from wavesmith.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("wavegan")
    db = make_db(root)  # 8 kHz tones labelled hi / lo
    sets = ["model.window=1024", "model.model_dim=2", "steps=2", "workers=0", "batch_size=4"]
    sets += ["preview_every=0", "valid_every=0", "warmup_steps=1"]
    train(db, "wavegan", root / "run", sets=sets, progress=False)
    return root / "run"


def test_slerp_keeps_unit_vectors_on_the_sphere_and_hits_both_ends():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path[2], torch.tensor([0.5**0.5, 0.5**0.5, 0.0]))
    assert lerp(a, b, torch.tensor([0.5]))[0].norm() < 0.75  # the straight line cuts inside the sphere


def test_ends_of_the_morph_are_the_clips_generate_writes_for_those_seeds(run_dir, tmp_path):
    paths = interpolate(run_dir, 11, 22, 4, tmp_path / "morph", label="lo", watermark=False)
    assert [p.name for p in paths] == ["000.wav", "001.wav", "002.wav", "003.wav"]
    morph = [A.read(p)[0] for p in paths]
    ends = []
    for seed in (11, 22):
        out = tmp_path / f"gen{seed}"
        (path,) = generate(run_dir, out, n=1, seconds=1024 / 8000, label="lo", seed=seed, watermark=False)
        ends.append(A.read(path)[0])
    # Same latents; only float rounding differs between a batch of 4 and a batch of 1 (BLAS
    # blocking), which moves a sample by at most a few 16-bit steps.
    lsb = 1 / 32768
    np.testing.assert_allclose(morph[0], ends[0], rtol=0, atol=8 * lsb)
    np.testing.assert_allclose(morph[-1], ends[1], rtol=0, atol=8 * lsb)
    assert np.abs(morph[1] - morph[0]).max() > 100 * lsb and np.abs(morph[1] - morph[-1]).max() > 100 * lsb
    records = [json.loads(line) for line in (tmp_path / "morph" / "generated.jsonl").read_text().splitlines()]
    assert [r["t"] for r in records] == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=1e-6)
    assert {r["label"] for r in records} == {"lo"} and records[0]["seed_a"] == 11


def test_cli_writes_the_morph_and_refuses_a_used_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["interpolate", str(run_dir), "--from", "1", "--to", "2", "--steps", "3", "--out", str(out)]
    assert main(argv + ["--no-watermark", "--method", "linear"]) == 0
    assert len(capsys.readouterr().out.split()) == 3 and len(list(out.glob("*.wav"))) == 3
    assert main(argv) == 2
    assert "already holds generated files" in capsys.readouterr().err


def test_bad_requests_are_one_line_errors(run_dir, tmp_path, monkeypatch):
    with pytest.raises(WavesmithError, match="at least 2"):
        interpolate(run_dir, 1, 2, 1, tmp_path / "a")
    with pytest.raises(WavesmithError, match="unknown label"):
        interpolate(run_dir, 1, 2, 3, tmp_path / "b", label="snare")
    import wavesmith.generate as G
    from toy_model import Config, ToyModel
    from wavesmith.models.base import DataInfo

    no_latent = ToyModel(Config(), DataInfo(8000))  # declares no latent space (the contract's default)
    monkeypatch.setattr(G, "load_model", lambda run, device=None: (no_latent, {}))
    with pytest.raises(WavesmithError, match="no latent space.*--model wavegan"):
        interpolate(run_dir, 1, 2, 3, tmp_path / "c")


def test_to_label_morphs_between_classes_ending_on_each_class_own_clip(run_dir, tmp_path):
    paths = interpolate(run_dir, 3, 4, 3, tmp_path / "m", label="hi", to_label="lo", watermark=False)
    ends = []
    for seed, label in ((3, "hi"), (4, "lo")):
        (path,) = generate(run_dir, tmp_path / f"g{seed}", n=1, seconds=0.128, label=label, seed=seed, watermark=False)
        ends.append(A.read(path)[0])
    np.testing.assert_allclose(A.read(paths[0])[0], ends[0], atol=1e-4)
    np.testing.assert_allclose(A.read(paths[-1])[0], ends[1], atol=1e-4)
    records = [json.loads(line) for line in (tmp_path / "m" / "generated.jsonl").read_text().splitlines()]
    assert records[0]["label"] == "hi" and records[0]["to_label"] == "lo"
