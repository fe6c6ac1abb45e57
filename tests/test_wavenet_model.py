"""WaveNet: the network, its losses and the training contract."""

import math

import pytest
import torch

from wavesmith.audio import mulaw_decode, mulaw_encode
from wavesmith.errors import WavesmithError
from wavesmith.models import get
from wavesmith.models.base import DataInfo
from wavesmith.models.wavenet import Config, WaveNet, mol_log_prob, quantize16

SMALL = dict(layers=6, stacks=2, kernel_size=3, residual_channels=16, gate_channels=32, skip_channels=16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(**kw) -> WaveNet:
    torch.manual_seed(0)
    info = DataInfo(16000, 1, ("kick", "snare"), ("ann", "bob"))
    return WaveNet(Config(**{**SMALL, **kw}), info)


def test_registry_builds_wavenet_with_documented_defaults():
    assert get("wavenet") is WaveNet
    m = WaveNet(Config(), DataInfo())
    assert m.crop_samples == Config().crop
    assert set(m.configure_optimizers()) == {"model"}


def test_reference_configuration_has_about_four_million_parameters():
    c = Config(layers=30, stacks=3, kernel_size=3, residual_channels=128, gate_channels=256, skip_channels=128)
    params = sum(p.numel() for p in WaveNet(c, DataInfo()).parameters())
    assert 3.9e6 < params < 4.1e6


def test_outputs_never_depend_on_later_inputs():
    m = small().eval()
    inp = torch.randint(0, 256, (2, 300))
    t = 150
    changed = inp.clone()
    changed[:, t + 1 :] = torch.randint(0, 256, (2, 300 - t - 1))
    a, b = m(inp), m(changed)
    assert torch.equal(a[..., : t + 1], b[..., : t + 1])
    assert not torch.allclose(a[..., t + 1 :], b[..., t + 1 :])


def test_receptive_field_matches_formula_and_gradients():
    m = small(output="mol", input_kernel=2).eval()
    # (input_kernel - 1) + sum((k - 1) * d) + 1 with dilations 1, 2, 4, 1, 2, 4 and k = 3
    assert m.receptive_field == 1 + 2 * (1 + 2 + 4) * 2 + 1
    inp = torch.randn(1, 200, requires_grad=True)
    m(inp)[0, :, 150].sum().backward()
    seen = (inp.grad[0].abs() > 0).nonzero().flatten()
    assert seen.min().item() == 150 - m.receptive_field + 1 and seen.max().item() == 150
    assert len(seen) == m.receptive_field


def test_mulaw_round_trip_error_is_within_half_a_step():
    x = torch.linspace(-1, 1, 20001)
    recon = mulaw_decode(mulaw_encode(x))
    err = (recon - x).abs()
    # half a quantisation step in the companded domain, mapped back through d x / d y
    # (d x / d y grows with |x|: take it at the larger of the value and its reconstruction)
    bound = (1 / 255) * (math.log(256) / 255) * (1 + 255 * torch.maximum(x.abs(), recon.abs())) + 1e-6
    assert torch.all(err <= bound)
    assert mulaw_encode(torch.tensor([0.0])).item() == 128


def test_mixture_of_logistics_assigns_probabilities_summing_to_one_over_16_bit_values():
    torch.manual_seed(1)
    m = 4
    params = torch.cat([torch.randn(1, m, 1), torch.rand(1, m, 1) * 1.6 - 0.8, torch.rand(1, m, 1) * 4 - 7], 1)
    grid = quantize16(torch.linspace(-1, 1, 2**16))[None]
    logp = mol_log_prob(params.expand(1, 3 * m, grid.shape[1]), grid, m)
    assert torch.exp(logp.double()).sum().item() == pytest.approx(1.0, abs=2e-3)
    mu = params[0, m + params[0, :m, 0].argmax(), 0]
    near, far = quantize16(mu.reshape(1, 1)), quantize16((-mu).sign().reshape(1, 1))  # the far end of [-1, 1] from mu
    assert mol_log_prob(params, near, m) > mol_log_prob(params, far, m)


def batch(x: torch.Tensor, mask: torch.Tensor | None = None, label=None) -> dict:
    b = x.shape[0]
    return {
        "audio": x[:, None],
        "mask": torch.ones_like(x) if mask is None else mask,
        "label": torch.tensor(label if label is not None else [-1] * b),
        "speaker": torch.full((b,), -1),
        "text": [""] * b,
    }


def test_loss_ignores_padded_samples():
    m = small().eval()
    x = torch.sin(torch.arange(800) * 0.05)[None].repeat(2, 1) * 0.5
    mask = torch.ones_like(x)
    mask[1, 500:] = 0
    y = x.clone()
    y[1, 500:] = torch.randn(300).clamp(-1, 1)  # garbage where the clip has ended
    clean, garbage = m.validation_loss(batch(x, mask))["loss"], m.validation_loss(batch(y, mask))["loss"]
    assert clean == pytest.approx(garbage, rel=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(output="mol"), dict(conditioning="label")])
def test_overfits_one_short_clip_within_seconds(kw):
    mol = kw.get("output") == "mol"
    m = small(lr=1e-3 if mol else 3e-3, **kw)
    opt = m.configure_optimizers()["model"]
    t = torch.arange(1600) / 16000
    x = (0.6 * torch.sin(2 * math.pi * 220 * t) * torch.exp(-t * 8))[None]
    b = batch(x, label=[1])

    def update(name, loss):
        assert name == "model"
        opt.zero_grad()
        loss.backward()
        opt.step()

    first = m.validation_loss(b)["loss"]
    for step in range(250 if mol else 80):
        logs = m.train_step(lambda: b, update, step)
    # mu-law: from ~5.5 nats (uniform over 256) to under half; mol: 3 nats per sample fewer
    assert logs["loss"] < first - 3.0 if mol else logs["loss"] < first * 0.5


def test_wavenet_refuses_multichannel_databases_and_missing_classes():
    with pytest.raises(WavesmithError, match="one channel"):
        WaveNet(Config(), DataInfo(16000, 2))
    with pytest.raises(WavesmithError, match="labels"):
        WaveNet(Config(conditioning="label"), DataInfo(16000, 1))
