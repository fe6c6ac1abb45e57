"""--model istft-vocoder and the shipped "fast" vocoder: a frame-rate generator with an inverse STFT."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sounds import voiced
from toy_model import make_db
from wavesmith import melspec as M
from wavesmith import vocoder as V
from wavesmith.cli import main
from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.hifigan import Config as HiFiGANConfig
from wavesmith.models.hifigan import HiFiGAN
from wavesmith.models.istft_nets import SHAPES, ISTFTGenerator
from wavesmith.models.istft_vocoder import Config, ISTFTVocoder, spectral_loss
from wavesmith.train import train
from wavesmith.train.logs import read

TINY = ["shape=tiny", "segment=2048"]
ENGINE = ["workers=0", "batch_size=2", "log_every=1", "valid_every=0", "preview_every=0"]


def test_overlap_add_inverts_the_melspec_framing():
    """STFT frames cut the way log-mel frames are come back to the very signal, F frames to F * hop samples."""
    g = ISTFTGenerator(SHAPES["tiny"])
    x = torch.randn(2, 256 * 24)
    pad = (1024 - 256) // 2
    padded = torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    frames = torch.stft(padded, 1024, 256, window=torch.hann_window(1024), center=False, return_complex=True)
    assert frames.shape[-1] == M.log_mel(x).shape[-1] == 24
    y = g.overlap_add(frames)
    assert y.shape == (2, 1, 24 * 256)
    assert float((y[:, 0] - x).abs().max()) < 1e-5


def test_the_student_learns_the_teachers_waveform():
    """Sixty steps of distillation on one voice bring the student's spectra much closer to the teacher's."""
    torch.manual_seed(0)
    model = ISTFTVocoder(Config(shape="tiny", segment=4096, lr=1e-2), DataInfo(22050))
    batch = {"audio": voiced(0.2).expand(2, 1, -1).clone()}
    real = model.segment(batch["audio"])
    mel = M.log_mel(real, model.spec)
    target = model.target(real, mel)
    assert target.shape == real.shape and not target.requires_grad
    before = float(spectral_loss(model.generator(mel)[:, 0], target).detach())
    opt = model.configure_optimizers()["generator"]

    def update(name, loss):
        opt.zero_grad()
        loss.backward()
        opt.step()

    logs = [model.train_step(lambda: batch, update, i) for i in range(60)]
    after = float(spectral_loss(model.generator(mel)[:, 0], target).detach())
    assert after < 0.5 * before, (before, after)  # measured: 2.48 to 0.98
    assert {"loss", "spectral", "mel_l1_teacher"} <= set(logs[-1])
    assert "_teacher" not in str(list(model.state_dict())) and all("teacher" not in k for k in model.state_dict())


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return make_db(tmp_path_factory.mktemp("istft"))


def test_a_run_trains_resumes_and_decodes_as_a_vocoder(db, tmp_path):
    run = tmp_path / "run"
    out = train(db, "istft-vocoder", run, sets=[*ENGINE, "steps=2", *TINY], progress=False)
    assert out["step"] == 2
    assert all(np.isfinite(line["loss"]) for line in read(run, "train"))
    train(db, "istft-vocoder", run, sets=[*ENGINE, "steps=3", *TINY], resume=True, progress=False)
    vocoder = V.load(run)
    assert isinstance(vocoder.generator, ISTFTGenerator)
    wave = vocoder(torch.randn(1, 80, 5) - 5)
    assert wave.shape == (1, 1, 5 * 256) and torch.isfinite(wave).all()
    # vocode takes the run by path, like a hifigan run.
    src = tmp_path / "in.wav"
    sf.write(str(src), voiced(0.5)[0, 0].numpy(), 22050)
    assert main(["vocode", str(src), "--out", str(tmp_path / "out"), "--vocoder", str(run)]) == 0
    assert sf.info(str(tmp_path / "out" / "000.wav")).frames == round(0.5 * 22050)


@pytest.mark.parametrize("change, message", [
    ({"shape": "huge"}, "shape must be one of"),
    ({"segment": 1000}, "multiple of 256"),
    ({"crops": "middle"}, "crops"),
    ({"lr": 0.0}, "lr > 0"),
    ({"init": "universal"}, "not an iSTFT vocoder"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(WavesmithError, match=message):
        ISTFTVocoder(Config(**{"shape": "tiny", **change}), DataInfo(22050))


def test_a_hifigan_cannot_start_from_the_fast_weights():
    with pytest.raises(WavesmithError, match="not a HiFi-GAN generator"):
        HiFiGAN(HiFiGANConfig(init="fast", disc_width=0.05), DataInfo(22050))


def test_the_shipped_fast_vocoder_resynthesizes_a_voice_nearly_as_well_as_universal():
    x = voiced(1.0)
    errors = {}
    for name in ("fast", "universal"):
        y = V.load(name).resynthesize(x, 22050)
        assert y.shape == x.shape and torch.isfinite(y).all()
        errors[name] = float((M.log_mel(y[:, 0]) - M.log_mel(x[:, 0])).abs().mean())
    noise = float((M.log_mel(torch.randn_like(x[:, 0]) * 0.05) - M.log_mel(x[:, 0])).abs().mean())
    assert errors["fast"] < 1.5 * errors["universal"] + 0.05 and errors["fast"] < noise / 4, (errors, noise)
    assert "fast" in {v["name"] for v in _vocoders_listed()}


def _vocoders_listed():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "wavesmith", "models", "--json"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)["vocoders"]


def test_shipped_drums_decode_through_the_fast_vocoder(tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "drums", "-n", "2", "--label", "kick", "--out", str(out), "--seed", "1",
                 "--steps", "4", "--vocoder", "fast"]) == 0
    import json

    records = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert [r["settings"]["vocoder"] for r in records] == ["fast", "fast"]
    audio, rate = sf.read(str(out / "000.wav"))
    assert rate == 22050 and np.abs(audio).max() > 0.01


@pytest.mark.parametrize("argv, message", [
    (["--vocoder", "no-such-vocoder"], "unknown vocoder 'no-such-vocoder'"),
])
def test_an_unknown_vocoder_is_refused_before_any_file(tmp_path, capsys, argv, message):
    out = tmp_path / "gen"
    assert main(["generate", "drums", "-n", "1", "--out", str(out), "--steps", "2", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
