"""WaveNet generation: the cached queue algorithm against the full forward pass, and sample()."""

import numpy as np
import pytest
import torch

from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.wavenet import Config, WaveNet
from wavesmith.models.wavenet_cuda import TorchGenerator
from wavesmith.models.wavenet_fast import Generator

SMALL = dict(layers=6, stacks=2, kernel_size=3, residual_channels=16, gate_channels=32, skip_channels=16,
             cond_channels=8, n_mels=20, n_fft=256, hop_length=64)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(**kw) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet(Config(**{**SMALL, **kw}), DataInfo(16000, 1, ("kick", "snare", "hat"), ()))
    with torch.no_grad():  # random, not freshly initialised, weights: every path carries signal
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def full_forward_outputs(model, values, h, primer=None):
    seq = values if primer is None else torch.cat([primer, values], 1)
    if model.config.output == "mulaw":
        start = torch.full_like(seq[:, :1], model.config.quantization_channels // 2)
    else:
        seq = seq.float()
        start = torch.zeros_like(seq[:, :1])
    with torch.no_grad():
        return model(torch.cat([start, seq[:, :-1]], 1), h)


MODES = [("none", "mulaw"), ("label", "mulaw"), ("mel", "mulaw"), ("none", "mol")]


def graph_flow(model, n, h):
    """The CUDA-graph path's warm-up and in-place reset, stepping eagerly (no GPU here)."""
    return TorchGenerator(model, n, h, graph=True)


@pytest.mark.parametrize("conditioning,output", MODES)
@pytest.mark.parametrize("engine", [Generator, TorchGenerator, graph_flow])
def test_cached_generation_matches_full_forward(conditioning, output, engine):
    model = small(conditioning=conditioning, output=output)
    # longer than the receptive field (30) and than one chunk of noise / mel features (256)
    n, samples = 3, 700 if engine is Generator else 300  # (torch runs eagerly on a CPU: slow)
    mel = model.mel(torch.randn(n, samples) * 0.2) if conditioning == "mel" else None
    h = model.conditioning(n, samples, torch.tensor([0, 2, 1]) if conditioning == "label" else None, mel)
    gen = engine(model, n, h)
    values, outputs = gen.run(samples, None, seed=3, keep_outputs=True)
    if engine is graph_flow:  # the capture's warm-up steps and in-place reset really ran
        assert gen.flow == "graph-eager"
    full = full_forward_outputs(model, torch.as_tensor(values), h)
    fast = torch.as_tensor(outputs).permute(1, 2, 0)
    assert full.abs().max() > 0.3  # the comparison is not between near-zero numbers
    assert torch.allclose(fast, full, atol=1e-4, rtol=0)


def test_prompt_primes_the_queues_like_a_full_forward_pass():
    model = small(conditioning="label")
    n, first, samples = 2, 90, 120
    h = model.conditioning(n, first + samples, torch.tensor([1, 0]))
    primer = torch.randint(0, 256, (n, first))
    values, outputs = Generator(model, n, h).run(samples, primer.numpy(), seed=0, keep_outputs=True)
    full = full_forward_outputs(model, torch.as_tensor(values), h, primer)
    assert torch.allclose(torch.as_tensor(outputs).permute(1, 2, 0), full, atol=1e-4, rtol=0)


def test_sample_is_seeded_and_has_the_asked_shape():
    model = small(conditioning="label")
    a = model.sample(2, 0.01, {"label": torch.tensor([0, 2])}, seed=5)
    b = model.sample(2, 0.01, {"label": torch.tensor([0, 2])}, seed=5)
    c = model.sample(2, 0.01, {"label": torch.tensor([0, 2])}, seed=6)
    assert a.shape == (2, 1, 160) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 1.0


def test_prompt_returns_the_continuation_only_and_vocoder_follows_mel_from_length():
    model = small()
    out = model.sample(2, 0.005, {"prompt": torch.randn(1, 1, 50).clamp(-1, 1) * 0.3}, seed=0)
    assert out.shape == (2, 1, 80)
    vocoder = small(conditioning="mel")
    assert vocoder.sample(1, 9.0, {"mel_from": torch.randn(1, 1, 333) * 0.1}, seed=0).shape == (1, 1, 333)


def test_mixture_of_logistics_samples_16_bit_values():
    out = small(output="mol").sample(1, 0.01, seed=0)
    codes = (out.double() + 1) * (2**16 - 1) / 2
    assert torch.allclose(codes, codes.round(), atol=1e-3)


def test_temperature_zero_is_greedy_and_deterministic_without_seed():
    model = small()
    assert torch.equal(model.sample(1, 0.005, temperature=0), model.sample(1, 0.005, temperature=0))


@pytest.mark.parametrize("conditioning,conditions,message", [
    ("none", {"label": torch.tensor([0])}, "conditioning=label; this one has conditioning=none"),
    ("label", {"mel_from": torch.zeros(1, 1, 100)}, "mel-from"),
    ("mel", {}, "vocoder"),
    ("none", {"colour": "red"}, "colour"),
    ("label", {"label": torch.tensor([7])}, "out of range"),
    ("none", {"prompt": torch.zeros(1, 2, 100)}, "mono"),
])
def test_unsupported_conditions_are_user_errors(conditioning, conditions, message):
    with pytest.raises(WavesmithError, match=message):
        small(conditioning=conditioning).sample(1, 0.01, conditions, seed=0)


def test_generation_any_length_beyond_training_crops():
    model = small(crop=200)
    out = model.sample(1, 0.1, seed=1)  # 1600 samples, 8x the crop and 50x the receptive field
    assert out.shape[-1] == 1600 and np.isfinite(out.numpy()).all()
