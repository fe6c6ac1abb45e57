"""The low-rank HiFi-GAN student: its closed-form fit to a full generator, and its run."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sounds import voiced
from toy_model import make_db
from wavesmith import melspec as M
from wavesmith import vocoder as V
from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.distilled_vocoder import Config, DistilledVocoder
from wavesmith.models.hifigan_nets import VARIANTS, Generator, GeneratorShape, LowRankConv1d
from wavesmith.models.lowrank_fit import fit_generator
from wavesmith.train import train

SMALL = GeneratorShape(64, (8, 8, 2, 2), (16, 16, 4, 4), (3, 7, 11), ((1, 3, 5),) * 3, True)


def _teacher() -> Generator:
    torch.manual_seed(0)
    return Generator(SMALL).eval()


def _mels() -> torch.Tensor:
    x = voiced(1.2)[:, 0].reshape(3, -1)  # three pieces of a gliding vowel
    x[2] += 0.05 * torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0))  # and one with noise
    return M.log_mel(x)


def _relative_error(student: Generator, teacher: Generator, mels: torch.Tensor) -> float:
    with torch.no_grad():
        y, t = student(mels), teacher(mels)
    return float((y - t).pow(2).sum() / t.pow(2).sum())


def _svd_copy(teacher: Generator, rank: float) -> Generator:
    """The plain alternative: each convolution's weights cut to rank by their singular values."""
    student = Generator(GeneratorShape(**{**SMALL.__dict__, "rank": rank})).eval()
    student.load_state_dict({k: v for k, v in teacher.state_dict().items() if not k.startswith("resblocks.")},
                            strict=False)
    full = dict(teacher.named_modules())
    with torch.no_grad():
        for name, mod in student.named_modules():
            if isinstance(mod, LowRankConv1d):
                w, b = full[name].weight, full[name].bias
                r = mod.reduce.out_channels
                u, s, vh = torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
                mod.reduce.weight.copy_((s[:r, None] * vh[:r]).reshape(r, w.shape[1], w.shape[2]))
                mod.reduce.bias.zero_()
                mod.expand.weight.copy_(u[:, :r, None])
                mod.expand.bias.copy_(b)
    return student


def test_a_low_rank_generator_is_lighter_and_runs_on_the_planar_path():
    shape = GeneratorShape(**{**VARIANTS["v1"].__dict__, "rank": 0.25})
    full, low = Generator(VARIANTS["v1"]).eval(), Generator(shape).eval()

    def operations(g: Generator) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            g(torch.randn(1, 80, 4))
        return counter.get_total_flops()

    assert operations(low) < 0.35 * operations(full)  # 16.3 against 52.8 GFLOP per audio second
    assert sum(isinstance(m, LowRankConv1d) for m in low.modules()) == 72
    net = V.planar(low.eval())
    mel = torch.randn(1, 80, 6) - 5
    with torch.no_grad():
        a = low(mel)
        b = net(mel[:, :, None].contiguous(memory_format=torch.channels_last))[:, :, 0]
    assert torch.allclose(a, b, atol=1e-5)


def test_at_full_rank_the_fit_reproduces_the_teacher():
    teacher, mels = _teacher(), _mels()
    student = Generator(GeneratorShape(**{**SMALL.__dict__, "rank": 0.999})).eval()  # rank C, factored
    errors = fit_generator(student, teacher, mels, ridge=1e-7)
    assert max(errors) < 1e-4, errors
    assert _relative_error(student, teacher, mels) < 1e-4


def test_the_fit_beats_cutting_the_weights_and_improves_with_rank():
    """Fitted on the data each layer sees, with each layer correcting the drift before it."""
    teacher, mels = _teacher(), _mels()
    fitted = {}
    for rank in (0.25, 0.5, 0.75):
        student = Generator(GeneratorShape(**{**SMALL.__dict__, "rank": rank})).eval()
        fit_generator(student, teacher, mels)
        fitted[rank] = _relative_error(student, teacher, mels)
    assert fitted[0.25] > fitted[0.5] > fitted[0.75], fitted
    cut = _relative_error(_svd_copy(teacher, 0.5), teacher, mels)
    assert fitted[0.5] < 0.5 * cut, (fitted, cut)


def test_the_fit_refuses_a_teacher_of_another_shape():
    student = Generator(GeneratorShape(**{**SMALL.__dict__, "rank": 0.5}))
    with pytest.raises(ValueError, match="low-rank copy"):
        fit_generator(student, Generator(VARIANTS["v3"]), _mels())


@pytest.mark.parametrize("change, message", [
    ({"rank": 1.0}, "rank must be between 0 and 1"),
    ({"rank": 0.0}, "rank must be between 0 and 1"),
    ({"fit_batches": 0}, "fit_batches"),
    ({"teacher": "none"}, "give a teacher"),
])
def test_bad_low_rank_settings_are_one_line_errors(change, message):
    with pytest.raises(WavesmithError, match=message):
        DistilledVocoder(Config(**{"student": "hifigan-lowrank", **change}), DataInfo(22050))


def test_a_run_fits_at_its_first_step_then_trains_and_never_refits(tmp_path, capsys, monkeypatch):
    """The first step fits the student to the universal V1 (a note on stderr); a resumed run does not refit."""
    from wavesmith.models import lowrank_fit

    calls = []
    real_fit = lowrank_fit.fit_generator

    def counted(student, teacher, mels, **kw):
        calls.append(mels.shape)
        return real_fit(student, teacher, mels[:1, :, :8], columns=2000)  # a small fit: the test checks the plumbing

    monkeypatch.setattr(lowrank_fit, "fit_generator", counted)
    db = make_db(tmp_path / "db")
    run = tmp_path / "run"
    sets = ["workers=0", "batch_size=1", "log_every=1", "valid_every=0", "preview_every=0", "student=hifigan-lowrank",
            "segment=2048", "fit_batches=2"]
    train(db, "distilled-vocoder", run, sets=[*sets, "steps=1"], progress=False)
    assert len(calls) == 1 and calls[0][0] == 2  # fit_batches batches of one crop
    assert "fitted the hifigan-lowrank student to universal" in capsys.readouterr().err
    train(db, "distilled-vocoder", run, sets=[*sets, "steps=2"], resume=True, progress=False)
    assert len(calls) == 1
    vocoder = V.load(run)
    assert vocoder.generator.shape.rank == 0.25
    wave = vocoder(torch.randn(1, 80, 4) - 5)
    assert wave.shape == (1, 1, 4 * 256) and torch.isfinite(wave).all()


def test_a_teacher_of_another_width_is_refused_in_one_line():
    model = DistilledVocoder(Config(student="hifigan-lowrank"), DataInfo(22050))
    model._teacher.append(V.Vocoder(Generator(VARIANTS["v2"]), M.HIFIGAN, "v2", precision="fp32"))
    with pytest.raises(WavesmithError, match="fitted to a HiFi-GAN V1 teacher"):
        model.fit_to_teacher(lambda: {"audio": voiced(0.5)})
