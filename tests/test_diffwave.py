"""--model diffwave: DiffWave on the raw waveform, small enough to test on a CPU."""

from __future__ import annotations

import math

import pytest
import soundfile as sf
import torch

from toy_model import make_db
from wavesmith.errors import WavesmithError
from wavesmith.generate import generate
from wavesmith.models.base import DataInfo
from wavesmith.models.diffwave import SC09, Config, DiffWave
from wavesmith.train import train
from wavesmith.train.logs import read

TINY = {"seconds": 0.05, "residual_channels": 8, "layers": 4, "dilation_cycle": 2}
LABELLED = DataInfo(8000, 1, ("hi", "lo"))


def tiny(info: DataInfo = LABELLED, **change) -> DiffWave:
    torch.manual_seed(0)
    return DiffWave(Config(**{**TINY, **change}), info).eval()


def test_the_loss_falls_when_overfitting_a_tiny_batch():
    model = tiny(p_uncond=0.0).train()
    t = torch.arange(400) / 8000
    audio = torch.stack([0.5 * torch.sin(2 * math.pi * 300 * t), 0.5 * torch.sin(2 * math.pi * 700 * t)])[:, None]
    # Two clips, each 16 times: many noise levels per step, so the loss is not one draw's luck.
    batch = {"audio": audio.repeat(16, 1, 1), "label": torch.tensor([0, 1]).repeat(16)}
    before = model.validation_loss(batch)["loss"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    after = model.validation_loss(batch)["loss"]
    assert after < 0.75 * before, (before, after)


@pytest.mark.parametrize("options", [{}, {"grid": "diffwave6", "sampler": "ddpm"}, {"steps": 3, "sampler": "ddim"}])
def test_sampling_has_the_requested_shape_and_a_seed_fixes_it(options):
    model = tiny()
    a = model.sample(2, 0.03, seed=1, **options)
    assert a.shape == (2, 1, 240) and torch.isfinite(a).all() and float(a.abs().max()) <= 1.0
    assert torch.equal(a, model.sample(2, 0.03, seed=1, **options))
    assert not torch.equal(a, model.sample(2, 0.03, seed=2, **options))


def test_labels_and_guidance_change_the_sample_and_unconditional_models_refuse_labels():
    model = tiny()
    torch.nn.init.normal_(model.net.out.weight, std=0.1)  # an untrained model predicts zero whatever the label
    assert model.accepts == {"label"}
    hi = model.sample(1, 0.02, {"label": torch.tensor([0])}, seed=3, guidance=3.0)
    lo = model.sample(1, 0.02, {"label": torch.tensor([1])}, seed=3, guidance=3.0)
    assert hi.shape == (1, 1, 160) and not torch.equal(hi, lo)
    plain = tiny(DataInfo(8000))
    assert plain.accepts == frozenset() and plain.label_embed is None
    with pytest.raises(WavesmithError, match="cannot use label"):
        plain.sample(1, 0.02, {"label": torch.tensor([0])})
    assert tiny(conditional=False).accepts == frozenset()


@pytest.mark.parametrize("call, message", [
    (lambda m: m.sample(1, 0.06), "at most 0.05 s"),
    (lambda m: m.sample(1, 0.0), "positive"),
    (lambda m: m.sample(1, 0.01, steps=0), "at least 1 step"),
    (lambda m: m.sample(1, 0.01, {"label": torch.tensor([0])}, guidance=-1.0), "guidance"),
    (lambda m: m.sample(1, 0.01, guidance=-1.0), "guidance"),
    (lambda m: m.sample(1, 0.01, {"label": torch.tensor([5])}), "out of range"),
    (lambda m: m.sample(1, 0.01, {"speaker": torch.tensor([0])}), "cannot use speaker"),
    (lambda m: m.sample(1, 0.01, temperature=0.0), "temperature"),
    (lambda m: m.sample(1, 0.01, grid="fast"), "grid"),
    (lambda m: m.sample(1, 0.01, sampler="euler"), "sampler"),
])
def test_bad_sampling_requests_are_one_line_errors(call, message):
    with pytest.raises(WavesmithError, match=message):
        call(tiny())


@pytest.mark.parametrize("change, message", [
    ({"layers": 0}, "at least 1"),
    ({"seconds": 0.0}, "seconds"),
    ({"beta_end": 1.5}, "beta"),
    ({"schedule": "sigmoid"}, "schedule"),
    ({"p_uncond": 1.0}, "p_uncond"),
    ({"guidance": -0.5}, "guidance"),
    ({"sample_steps": 0}, "sample_steps"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(WavesmithError, match=message):
        tiny(**change)


def test_the_papers_sc09_configuration_has_its_size():
    model = DiffWave(Config(**SC09), DataInfo(16000))  # unconditional, as the paper's SC09 model
    params = sum(p.numel() for p in model.parameters())
    assert 23e6 < params < 25e6, params  # the paper: 24 M
    assert model.schedule.kind == "linear" and model.schedule.steps == 200


def test_diffwave_trains_through_the_engine_with_previews(tmp_path):
    db = make_db(tmp_path)
    sets = ["workers=0", "batch_size=2", "steps=2", "preview_every=2", "log_every=1", "preview_seconds=0.02",
            "seconds=0.05", "residual_channels=8", "layers=4", "dilation_cycle=2", "sample_steps=2"]
    out = train(db, "diffwave", tmp_path / "run", sets=sets, progress=False)
    assert out["step"] == 2 and out["best_valid_loss"] is not None
    previews = read(tmp_path / "run", "preview")
    assert previews and "preview_skipped" not in previews[0], previews
    # generate: one window by default, a label by name.
    files = generate(tmp_path / "run", tmp_path / "out", n=2, label="lo", seed=1, watermark=False)
    assert [sf.info(str(f)).frames for f in files] == [400, 400]
