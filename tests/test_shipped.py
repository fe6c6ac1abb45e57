"""Shipped models: export a run as a name, generate from the name, and the errors around it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from toy_model import make_db
from wavesmith import shipped
from wavesmith.cli import main
from wavesmith.train import train

TINY = ["workers=0", "batch_size=2", "steps=2", "preview_every=0", "valid_every=0", "log_every=1",
        "seconds=0.3", "channels=8", "mults=[1, 2]", "blocks=1", "sample_steps=2"]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A tiny trained mel-diffusion run, exported as the shipped model 'tones' into a folder of its own."""
    root = tmp_path_factory.mktemp("shipped")
    db = make_db(root, rate=16000)
    train(db, "mel-diffusion", root / "run", sets=TINY, progress=False)
    folder = root / "models"
    shipped.export(root / "run", "tones", {"summary": "test tones.", "trained_on": "synthetic tones"}, folder)
    return folder


@pytest.fixture
def ship(package, monkeypatch, tmp_path):
    monkeypatch.setattr(shipped, "folder", lambda: package)
    monkeypatch.chdir(tmp_path)
    return package


def test_export_keeps_only_half_precision_ema_weights(package):
    state = torch.load(package / "tones.pt", weights_only=True)
    assert state["ema"] is None
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    card = json.loads((package / "tones.json").read_text())
    assert card["model"] == "mel-diffusion" and card["labels"] == ["hi", "lo"] and card["step"] == 2


def test_generate_from_a_shipped_name(ship, tmp_path):
    assert main(["generate", "tones", "-n", "2", "--seconds", "0.25", "--label", "lo", "--seed", "1",
                 "--out", str(tmp_path / "out"), "--steps", "3", "--guidance", "1.5"]) == 0
    files = sorted((tmp_path / "out").glob("*.wav"))
    assert len(files) == 2 and sf.info(str(files[0])).frames == 16000  # 0.25 s, padded to carry the mark
    record = json.loads((tmp_path / "out" / "generated.jsonl").read_text().splitlines()[0])
    assert record["checkpoint"].endswith("tones.pt") and record["settings"]["steps"] == 3


def test_the_same_seed_gives_the_same_files(ship, tmp_path):
    for out in ("a", "b"):
        assert main(["generate", "tones", "-n", "1", "--seconds", "0.25", "--seed", "5", "--no-watermark",
                     "--out", str(tmp_path / out)]) == 0
    a, _ = sf.read(str(tmp_path / "a" / "000.wav"))
    b, _ = sf.read(str(tmp_path / "b" / "000.wav"))
    assert (a == b).all()


def test_a_run_folder_wins_over_a_shipped_name(ship, tmp_path, capsys):
    (tmp_path / "tones").mkdir()  # an (empty) run folder called like the shipped model
    assert main(["generate", "tones", "-n", "1", "--out", str(tmp_path / "out")]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err


def test_models_lists_the_shipped_models_and_vocoders(ship, capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listing["models"]] == ["tones"]
    assert "universal" in [v["name"] for v in listing["vocoders"]]
    assert main(["models"]) == 0
    assert "tones" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--steps", "0"], "at least 1 step"),
    (["--guidance", "-1"], "guidance scale must be at least 0"),
    (["--guidance", "nan"], "guidance scale must be at least 0"),
    (["--label", "mid"], "unknown label 'mid'"),
    (["--seconds", "5"], "at most"),
    (["--speaker", "x"], "without speakers"),
])
def test_bad_sampling_requests_are_one_line_and_write_nothing(ship, tmp_path, capsys, extra, message):
    assert main(["generate", "tones", "-n", "1", "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out" / "000.wav").exists()
    assert not list((tmp_path / "out").glob("*.wav")) if (tmp_path / "out").exists() else True


def test_an_unknown_name_lists_the_shipped_models(ship, tmp_path, capsys):
    assert main(["generate", "drumz", "-n", "1", "--out", str(tmp_path / "out")]) == 2
    assert "shipped models: tones" in capsys.readouterr().err


def test_sampler_options_are_refused_for_models_without_them(tmp_path, capsys):
    db = make_db(tmp_path)
    train(db, "wavegan", tmp_path / "gan", sets=["workers=0", "batch_size=2", "steps=1", "preview_every=0",
                                                  "valid_every=0", "window=1024", "model_dim=4", "n_critic=1"],
          progress=False)
    assert main(["generate", str(tmp_path / "gan"), "-n", "1", "--steps", "4", "--out", str(tmp_path / "o")]) == 2
    assert "--steps cannot be used with a wavegan model" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o" / "000.wav")


def test_fine_tuning_starts_from_a_shipped_model_with_labels_matched_by_name(ship, tmp_path):
    from wavesmith import checkpoint as ckpt
    from wavesmith.train.logs import read

    db = make_db(tmp_path / "new", rate=22050, labels=("lo", "new"))
    sets = ["workers=0", "batch_size=2", "steps=1", "preview_every=0", "valid_every=0", "warmup_steps=1000000"]
    train(db, None, tmp_path / "tuned", sets=sets, progress=False, init="tones")
    start = read(tmp_path / "tuned", "init")[0]
    assert start["source"].endswith("tones.pt")
    old = torch.load(ship / "tones.pt", weights_only=True)["model"]["label_embed.weight"].float()
    state, _ = ckpt.load(ckpt.resolve_path(tmp_path / "tuned"))
    new = state["model"]["label_embed.weight"]
    # a learning rate of about 1e-10: the weights are still the shipped ones; "lo" keeps its row, "new" starts as "none"
    assert torch.allclose(new[0], old[1], atol=1e-3) and torch.allclose(new[1], old[-1], atol=1e-3)
    assert state["config"]["model"]["channels"] == 8  # the model config came from the shipped model


def test_init_from_a_missing_source_is_one_line(ship, tmp_path, capsys):
    db = make_db(tmp_path / "new")
    assert main(["train", str(db), "--run", str(tmp_path / "r"), "--init", "nothing-here", "--steps", "1"]) == 2
    assert "no run, checkpoint or shipped model" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_sound_end_is_where_a_hit_dies_away():
    from wavesmith import audio as A

    rate = 16000
    x = np.zeros((1, rate), np.float32)
    t = np.arange(4000) / rate
    x[0, :4000] = np.sin(2 * np.pi * 200 * t) * np.exp(-t * 30)  # 50 dB down after about 0.19 s
    end = A.sound_end(x, rate)
    assert 0.17 * rate < end < 0.23 * rate
    assert A.sound_end(np.zeros((1, 100), np.float32), rate) == 100  # silence keeps its length


def test_one_shots_are_cut_after_their_sound_but_keep_a_watermarkable_second(ship, tmp_path):
    assert main(["generate", "tones", "-n", "1", "--seconds", "0.25", "--no-watermark", "--trim",
                 "--out", str(tmp_path / "a")]) == 0
    assert main(["generate", "tones", "-n", "1", "--seconds", "0.25", "--no-watermark", "--no-trim",
                 "--out", str(tmp_path / "b")]) == 0
    a, b = (sf.info(str(tmp_path / d / "000.wav")).frames for d in ("a", "b"))
    assert a <= b == 4000
    record = json.loads((tmp_path / "b" / "generated.jsonl").read_text())
    assert record["settings"]["trim"] is False


def test_a_one_shot_shorter_than_the_watermarks_second_is_padded_and_marked(ship, tmp_path):
    assert main(["generate", "tones", "-n", "1", "--seconds", "0.25", "--out", str(tmp_path / "w")]) == 0
    assert sf.info(str(tmp_path / "w" / "000.wav")).frames == 16000  # 0.25 s of sound, then silence to 1 s
    record = json.loads((tmp_path / "w" / "generated.jsonl").read_text())
    assert record["watermark"] and record["watermark"]["payload"] is not None


def _saved_before(tmp_path, *keys):
    """The shipped notes model's checkpoint as a run written before the config ``keys`` existed."""
    from wavesmith import checkpoint as ckpt

    state, _ = ckpt.load(shipped.path("notes"))
    for key in keys:
        del state["config"]["model"][key]
    return ckpt.save(state, tmp_path / "old.pt")


def test_a_model_made_before_the_guidance_interval_keeps_guiding_every_step(tmp_path):
    from wavesmith.config import from_dict
    from wavesmith.generate import load_model
    from wavesmith.models.mel_diffusion import Config

    old = from_dict(Config, {"guidance": 4.0})  # a checkpoint's config saved before the key existed
    assert old.guidance_logsnr == (-20.0, 20.0) and old.guidance == 4.0  # its own scale, not the new default
    model, _ = load_model(_saved_before(tmp_path, "guidance_logsnr"))
    assert model.config.guidance_logsnr == (-20.0, 20.0) and model.config.min_snr == 5.0


@pytest.mark.parametrize("name, guidance", [("drums", 3.0), ("notes", 4.0)])  # drums' scale chosen on its valid split
def test_the_shipped_mel_models_are_as_wide_as_a_mel_frame_and_guide_in_the_interval(name, guidance):
    from wavesmith.generate import load_model

    model, meta = load_model(name)
    c = model.config
    assert c.channels * c.mults[0] >= model.spec.n_mels  # narrower, their samples were speckled
    assert (c.min_snr, c.guidance, c.guidance_logsnr) == (5.0, guidance, (-3.0, 6.0))
    assert meta["config"]["model"]["min_snr"] == 5.0  # trained so, recorded so


def test_new_mel_diffusion_runs_guide_in_an_interval_and_refuse_an_empty_one():
    from wavesmith.errors import WavesmithError
    from wavesmith.models.mel_diffusion import Config

    assert Config().guidance_logsnr == (-3.0, 6.0)
    for bad in ((6.0, -3.0), (1.0, 1.0), (float("nan"), 1.0)):
        with pytest.raises(WavesmithError, match="guidance_logsnr"):
            Config(guidance_logsnr=bad).validate()


def test_new_mel_diffusion_runs_weigh_the_loss_by_min_snr_and_older_runs_keep_training_as_they_did(tmp_path):
    from wavesmith.config import from_dict
    from wavesmith.errors import WavesmithError
    from wavesmith.generate import load_model
    from wavesmith.models.mel_diffusion import Config

    assert Config().min_snr == 5.0 and Config().guidance == 4.0
    assert from_dict(Config, {"guidance": 3.0}).min_snr == 0.0  # saved before the key: plain loss on resume
    model, _ = load_model(_saved_before(tmp_path, "min_snr"))
    assert model.config.min_snr == 0.0 and model.config.guidance_logsnr == (-3.0, 6.0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(WavesmithError, match="min_snr"):
            Config(min_snr=bad).validate()
