"""--model distilled-vocoder (a small student fitted to a teacher vocoder) and --vocoder for generate."""

from __future__ import annotations

import json

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
from wavesmith.models.distilled_vocoder import Config, DistilledVocoder, spectral_loss
from wavesmith.models.istft_nets import SHAPES, ISTFTGenerator
from wavesmith.train import train
from wavesmith.train.logs import read

TINY = ["student=istft-tiny", "segment=2048"]
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
    model = DistilledVocoder(Config(student="istft-tiny", segment=4096, lr=1e-2), DataInfo(22050))
    batch = {"audio": voiced(0.2).expand(2, 1, -1).clone()}
    real = model.segment(batch["audio"])[:, 0]
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
    out = train(db, "distilled-vocoder", run, sets=[*ENGINE, "steps=2", *TINY], progress=False)
    assert out["step"] == 2
    assert all(np.isfinite(line["loss"]) for line in read(run, "train"))
    train(db, "distilled-vocoder", run, sets=[*ENGINE, "steps=3", *TINY], resume=True, progress=False)
    vocoder = V.load(run)
    assert isinstance(vocoder.generator, ISTFTGenerator) and vocoder.planar_net() is None
    wave = vocoder(torch.randn(1, 80, 5) - 5)
    assert wave.shape == (1, 1, 5 * 256) and torch.isfinite(wave).all()
    # vocode takes the run by path, like a hifigan run.
    src = tmp_path / "in.wav"
    sf.write(str(src), voiced(0.5)[0, 0].numpy(), 22050)
    assert main(["vocode", str(src), "--out", str(tmp_path / "out"), "--vocoder", str(run)]) == 0
    assert sf.info(str(tmp_path / "out" / "000.wav")).frames == round(0.5 * 22050)


@pytest.mark.parametrize("change, message", [
    ({"student": "huge"}, "student must be one of"),
    ({"segment": 1000}, "multiple of 256"),
    ({"crops": "middle"}, "crops"),
    ({"lr": 0.0}, "lr > 0"),
    ({"log_weight": -1.0}, "log_weight"),
    ({"init": "universal"}, "does not fit the istft-tiny student"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(WavesmithError, match=message):
        DistilledVocoder(Config(**{"student": "istft-tiny", **change}), DataInfo(22050))


def test_the_lite_student_starts_from_v1s_weights_and_is_lighter():
    """hifigan-lite keeps V1's kernel-3 blocks (same tensors) and drops the kernel-7 and -11 ones."""
    model = DistilledVocoder(Config(student="hifigan-lite"), DataInfo(22050))
    v1 = V.load("universal").generator.state_dict()
    mine = model.generator.state_dict()
    assert torch.equal(mine["resblocks.1.convs1.0.weight"], v1["resblocks.3.convs1.0.weight"])  # stage 1, kernel 3
    assert torch.equal(mine["conv_post.weight"], v1["conv_post.weight"])
    assert sum(v.numel() for v in mine.values()) < 0.5 * sum(v.numel() for v in v1.values())
    x = voiced(0.3)
    y = model.vocoder().resynthesize(x, 22050)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_generate_decodes_a_shipped_model_with_another_vocoder(tmp_path):
    """--vocoder swaps the decoder of a mel-domain model: the same seed, other waveforms, recorded."""
    clips = {}
    for name in ("universal", "lj"):
        out = tmp_path / name
        assert main(["generate", "drums", "-n", "1", "--label", "kick", "--out", str(out), "--seed", "1",
                     "--steps", "4", "--vocoder", name, "--no-trim"]) == 0
        record = json.loads((out / "generated.jsonl").read_text().splitlines()[0])
        assert record["settings"]["vocoder"] == name
        clips[name], rate = sf.read(str(out / "000.wav"))
        assert rate == 22050 and np.abs(clips[name]).max() > 0.01
    assert clips["universal"].shape == clips["lj"].shape and not np.allclose(clips["universal"], clips["lj"])


def test_a_model_without_a_vocoder_refuses_the_flag(tmp_path, capsys):
    run = tmp_path / "toy"
    db = make_db(tmp_path / "db")
    train(db, "toy_model:ToyModel", run, sets=["workers=0", "batch_size=2", "steps=1", "preview_every=0"],
          progress=False)
    assert main(["generate", str(run), "-n", "1", "--out", str(tmp_path / "g"), "--vocoder", "lj",
                 "--plugin", "toy_model:ToyModel"]) == 2
    assert "--vocoder cannot be used" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--vocoder", "no-such-vocoder"], "unknown vocoder 'no-such-vocoder'"),
])
def test_an_unknown_vocoder_is_refused_before_any_file(tmp_path, capsys, argv, message):
    out = tmp_path / "gen"
    assert main(["generate", "drums", "-n", "1", "--out", str(out), "--steps", "2", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
