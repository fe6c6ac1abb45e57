"""--model hifigan: a vocoder trained or fine-tuned through the engine, usable as a vocoder afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sounds import voiced
from toy_model import make_db
from wavesmith import vocoder as V
from wavesmith.checkpoint import latest
from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.hifigan import Config, HiFiGAN
from wavesmith.train import train
from wavesmith.train.logs import read

# V3 from random weights with discriminators at 1/20 of the paper's width: seconds per step.
TINY = ["variant=v3", "init=none", "segment=1024", "disc_width=0.05"]
ENGINE = ["workers=0", "batch_size=2", "log_every=1", "valid_every=0", "preview_seconds=0.2"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return make_db(tmp_path_factory.mktemp("hifigan"))  # 8 kHz: every batch is resampled to 22.05 kHz


def test_tiny_hifigan_trains_previews_and_loads_as_a_vocoder(db, tmp_path):
    run = tmp_path / "run"
    out = train(db, "hifigan", run, sets=[*ENGINE, "steps=2", "preview_every=2", *TINY], progress=False)
    assert out["step"] == 2
    logs = read(run, "train")
    assert {"mel_l1", "d_loss", "adversarial", "feature_matching"} <= set(logs[-1])
    assert all(np.isfinite(v) for line in logs for k, v in line.items() if isinstance(v, float))
    previews = read(run, "preview")
    assert previews and "preview_skipped" not in previews[0], previews
    valid = read(run, "valid")
    assert valid and valid[-1]["loss"] == valid[-1]["mel_l1"] > 0

    # Both optimizers' state is in the checkpoint and carries on when the run resumes.
    state, _, _ = latest(run)
    adam_steps = {name: {float(s["step"]) for s in opt["state"].values()} for name, opt in state["optimizers"].items()}
    assert adam_steps == {"discriminator": {2.0}, "generator": {2.0}}
    train(db, "hifigan", run, sets=[*ENGINE, "steps=3", "preview_every=0", *TINY], resume=True, progress=False)
    state, _, _ = latest(run)
    assert {float(s["step"]) for opt in state["optimizers"].values() for s in opt["state"].values()} == {3.0}

    vocoder = V.load(run)
    assert isinstance(vocoder, V.Vocoder)
    wave = vocoder(torch.randn(1, 80, 5) - 5)
    assert wave.shape == (1, 1, 5 * 256) and torch.isfinite(wave).all()


def test_a_run_of_another_model_is_not_a_vocoder(db, tmp_path):
    run = tmp_path / "toy"
    train(db, "toy_model:ToyModel", run, sets=["workers=0", "batch_size=2", "steps=1", "preview_every=0"],
          progress=False)
    with pytest.raises(WavesmithError, match="not a vocoder"):
        V.load(run)


def test_universal_init_resynthesizes_a_voice_closely_and_random_init_does_not():
    batch = {"audio": voiced().expand(2, 1, -1).clone()}
    pretrained = HiFiGAN(Config(disc_width=0.05), DataInfo(22050))  # v1, init auto = universal
    scratch = HiFiGAN(Config(init="none", disc_width=0.05), DataInfo(22050))
    low, high = pretrained.validation_loss(batch)["mel_l1"], scratch.validation_loss(batch)["mel_l1"]
    assert low < 0.4 < 1.0 < high, (low, high)
    # sample() resynthesizes at the database's rate with the input's length.
    out = pretrained.sample(1, 0.1, {"mel_from": batch["audio"][:1, :, :5000]})
    assert out.shape == (1, 1, 5000) and float(out.abs().max()) > 0.05


@pytest.mark.parametrize("change, message", [
    ({"segment": 1000}, "multiple of 256"),
    ({"variant": "v3", "init": "universal"}, "v1 generator"),
    ({"variant": "v9"}, "variant"),
    ({"init": "nonsense"}, "init must be"),
    ({"disc_width": 0.0}, "disc_width"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(WavesmithError, match=message):
        HiFiGAN(Config(**{"variant": "v3", "init": "none", **change}), DataInfo(22050))


def test_sampling_needs_a_waveform_to_analyse():
    model = HiFiGAN(Config(variant="v3", init="none", disc_width=0.05), DataInfo(16000))
    with pytest.raises(WavesmithError, match="mel_from"):
        model.sample(1, 0.1)
    with pytest.raises(WavesmithError, match="label"):
        model.sample(1, 0.1, {"label": torch.zeros(1, dtype=torch.long), "mel_from": torch.zeros(1, 1, 800)})
    with pytest.raises(WavesmithError, match="mono waveform"):
        model.sample(1, 0.1, {"mel_from": torch.zeros(1, 2, 800)})
