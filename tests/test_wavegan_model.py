"""WaveGAN: shapes, phase shuffle, gradient penalty, seeds, the window limit, one training step."""

from __future__ import annotations

import pytest
import torch

from wavesmith.errors import WavesmithError
from wavesmith.models import get
from wavesmith.models.base import DataInfo
from wavesmith.models.wavegan import Config, WaveGAN
from wavesmith.models.wavegan_diagnostics import periodic_buzz_db, spectral_distance
from wavesmith.models.wavegan_fast import polyphase_weight
from wavesmith.models.wavegan_networks import gradient_penalty, phase_shuffle


def tiny(window: int = 1024, rate: int = 16000, channels: int = 1, labels: tuple[str, ...] = (), **kw) -> WaveGAN:
    torch.manual_seed(0)
    return WaveGAN(Config(window=window, model_dim=2, **kw), DataInfo(rate, channels, labels))


def test_registry_names_wavegan():
    assert get("wavegan") is WaveGAN


@pytest.mark.parametrize("window", [16384, 32768, 65536])
@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (8000, 1)])
def test_generator_and_critic_shapes_for_every_published_window(window, rate, channels):
    model = tiny(window, rate, channels)
    assert model.crop_samples == window
    audio = model.sample(2, window / rate, seed=0)
    assert audio.shape == (2, channels, window)
    assert audio.abs().max() <= 1.0  # tanh output
    assert model.critic(audio).shape == (2,)


def test_paper_model_has_the_published_size():
    model = WaveGAN(Config(), DataInfo())
    gen = sum(p.numel() for p in model.generator.parameters())
    # Donahue et al. table 2 (d=64, 16384): dense 100->16384 plus five 25-tap layers, about 19.1M weights
    assert 19.0e6 < gen < 19.2e6
    assert len(model.generator.ups) == 5 and len(model.critic.convs) == 5


def test_shorter_request_is_trimmed_from_the_full_window():
    model = tiny()
    full = model.sample(1, 1024 / 16000, seed=3)
    short = model.sample(1, 0.01, seed=3)
    assert short.shape[-1] == 160
    torch.testing.assert_close(short, full[..., :160])


def test_longer_request_is_refused_naming_the_window_and_wavenet():
    model = tiny(window=16384)
    with pytest.raises(WavesmithError, match=r"16384 samples \(1\.024 s at 16000 Hz\).*--model wavenet"):
        model.sample(1, 1.5)


def test_same_seed_same_audio_and_other_seed_other_audio():
    model = tiny()
    a, b, c = (model.sample(2, 0.05, seed=s) for s in (7, 7, 8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_temperature_scales_the_latent():
    model = tiny()
    torch.testing.assert_close(model.latent(3, seed=1, temperature=0.5), model.latent(3, seed=1) * 0.5)
    z = model.latent(1000, seed=2)
    assert z.min() >= -1 and z.max() <= 1 and z.shape == (1000, 100)


@pytest.mark.parametrize("window", [16384, 32768])
def test_fast_inference_path_matches_the_transposed_convolution(window):
    model = tiny(window=window, channels=2)
    z = model.latent(2, seed=0)
    with torch.no_grad():
        fast = model.generator(z, polyphase=True)
        slow = model.generator(z)  # nn.ConvTranspose1d
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)


def test_no_grad_alone_does_not_switch_the_generator_to_the_polyphase_path():
    model = tiny(window=4096)
    z = model.latent(2, seed=0)
    with torch.enable_grad():
        trained_path = model.generator(z).detach()
    with torch.no_grad():  # a caller's no_grad (an evaluation loop) keeps the same computation
        assert torch.equal(model.generator(z), trained_path)
    with pytest.raises(RuntimeError, match="for inference"):
        model.generator(z, polyphase=True)  # with gradients on: refused, not silently detached


def test_bf16_inference_stays_close_to_float32():
    model = tiny(window=4096)
    z = model.latent(4, seed=0)
    exact = model.decode(z)
    model.generator.fast_dtype = torch.bfloat16
    approx = model.decode(z)
    assert approx.dtype == torch.float32  # the last layer runs in float32
    snr = 10 * torch.log10(exact.square().mean() / (approx - exact).square().mean())
    assert snr > 30


@pytest.mark.parametrize("stride", [2, 4])
def test_polyphase_weight_reproduces_conv_transpose(stride):
    conv = torch.nn.ConvTranspose1d(3, 5, 25, stride, padding=(25 - stride + 1) // 2, output_padding=1)
    x = torch.randn(2, 3, 17)
    w, left, right = polyphase_weight(conv.weight.detach(), stride, conv.padding[0])
    y = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (left, right)), w).view(2, stride, 5, 17)
    y = y.permute(0, 2, 3, 1).reshape(2, 5, stride * 17) + conv.bias.detach()[:, None]
    torch.testing.assert_close(y, conv(x).detach(), atol=1e-5, rtol=1e-4)


def test_phase_shuffle_is_identity_at_zero_and_keeps_length():
    x = torch.randn(4, 3, 50)
    assert torch.equal(phase_shuffle(x, 0), x)
    torch.manual_seed(0)
    y = phase_shuffle(x, 2)
    assert y.shape == x.shape
    assert not torch.equal(y, x)  # 4 examples with shifts in -2..2: some shift is non-zero for seed 0


def test_phase_shuffle_shifts_with_reflect_padding():
    x = torch.arange(10.0).view(1, 1, 10).repeat(3, 2, 1)
    y = phase_shuffle(x, 2, shift=torch.tensor([2, -2, 0]))
    assert y[0, 0].tolist() == [2, 1, 0, 1, 2, 3, 4, 5, 6, 7]  # delayed by 2, reflected at the start
    assert y[1, 1].tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 8, 7]  # advanced by 2, reflected at the end
    assert torch.equal(y[2], x[2])


def test_gradient_penalty_back_propagates_into_the_critic():
    model = tiny()
    real, fake = torch.randn(3, 1, 1024) * 0.1, torch.randn(3, 1, 1024) * 0.1
    gp = gradient_penalty(model.critic, real, fake, None)
    assert gp.grad_fn is not None and gp.item() > 0
    gp.backward()  # double back-propagation: needs create_graph=True in the penalty
    grads = [p.grad for p in model.critic.parameters()]
    assert all(g is not None for g in grads[:-1])
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    class Linear(torch.nn.Module):  # D(x) = <u, x> with |u| = 1 has gradient norm 1 everywhere
        def forward(self, x, labels=None):
            u = torch.ones_like(x[0]) / x[0].numel() ** 0.5
            return (x * u).flatten(1).sum(1)

    gp = gradient_penalty(Linear(), torch.randn(4, 1, 64), torch.randn(4, 1, 64), None)
    assert gp.item() < 1e-8


def _fake_engine(model):
    opts = model.configure_optimizers()
    calls = []

    def update(name, loss):
        calls.append(name)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    return opts, calls, update


def test_train_step_makes_five_critic_updates_then_one_generator_update_and_logs_failure_signs():
    model = tiny(labels=("kick", "snare"))
    opts, calls, update = _fake_engine(model)
    assert set(opts) == {"critic", "generator"}
    assert opts["critic"].defaults["lr"] == 1e-4 and opts["critic"].defaults["betas"] == (0.5, 0.9)
    drawn = []

    def next_batch():
        drawn.append(1)
        return {"audio": torch.randn(4, 1, 1024) * 0.3, "label": torch.tensor([0, 1, -1, 1])}

    logs = model.train_step(next_batch, update, 0)
    assert calls == ["critic"] * 5 + ["generator"] and len(drawn) == 5
    for key in ("wasserstein", "gp", "critic_acc", "critic_wins", "diversity", "diversity_ratio"):
        assert isinstance(logs[key], float)
    assert 0.0 <= logs["critic_acc"] <= 1.0
    assert all(p.requires_grad for p in model.critic.parameters())  # unfrozen after the generator step


def test_generator_update_leaves_no_gradient_on_the_critic():
    model = tiny()
    opts = model.configure_optimizers()
    seen = {}

    def update(name, loss):
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if name == "generator":
            seen["critic_grads"] = [p.grad for p in model.critic.parameters() if p.grad is not None]
            seen["generator_grads"] = [p.grad for p in model.generator.parameters() if p.grad is not None]

    model.train_step(lambda: {"audio": torch.randn(2, 1, 1024) * 0.1, "label": torch.full((2,), -1)}, update, 0)
    assert seen["critic_grads"] == [] and len(seen["generator_grads"]) > 0


def test_validation_loss_compares_generated_with_held_out_spectra_and_reports_the_critic():
    model = tiny()
    model.eval()
    batch = {"audio": torch.randn(4, 1, 1024) * 0.2, "label": torch.full((4,), -1)}
    a, b = model.validation_loss(batch), model.validation_loss(batch)
    assert a == b  # fixed latents: checkpoints are compared on the same generated clips
    with torch.no_grad():
        fake = model.generator(model.latent(4, seed=0))
        expected = model.critic(batch["audio"]).mean() - model.critic(fake).mean()
    assert a["wasserstein"] == pytest.approx(float(expected), rel=1e-4, abs=1e-6)
    assert a["loss"] > 0
    assert spectral_distance(batch["audio"], batch["audio"], 16000) == 0
    quiet = torch.sin(torch.arange(1024) * 0.3).repeat(4, 1, 1) * 0.2  # one steady tone for every clip
    assert spectral_distance(quiet, batch["audio"], 16000) > 1.0


def test_labels_are_checked():
    plain, cond = tiny(), tiny(labels=("hi", "lo"))
    with pytest.raises(WavesmithError, match="without labels"):
        plain.sample(1, 0.01, {"label": torch.tensor([0])})
    with pytest.raises(WavesmithError, match="label ids"):
        cond.sample(1, 0.01, {"label": torch.tensor([2])})
    with pytest.raises(WavesmithError, match="speaker"):
        cond.sample(1, 0.01, {"speaker": torch.tensor([0])})
    assert cond.sample(2, 0.01, seed=1).shape == (2, 1, 160)  # labels drawn from the seed


def test_post_processing_filter_keeps_the_length_and_learns():
    model = tiny(post_proc_filt_len=512)
    assert model.generator.post.weight.shape == (1, 1, 512)
    assert model.sample(2, 1024 / 16000, seed=0).shape == (2, 1, 1024)


def test_nearest_neighbour_upsampling_option_keeps_shapes():
    model = tiny(window=4096, upsample="nn")
    assert model.sample(2, 4096 / 16000, seed=0).shape == (2, 1, 4096)


def test_bad_window_is_a_user_error():
    with pytest.raises(WavesmithError, match="16384, 32768"):
        WaveGAN(Config(window=20000), DataInfo())


def test_train_step_under_bf16_autocast_keeps_float32_scores_and_finite_losses():
    model = tiny()
    _, calls, update = _fake_engine(model)
    batch = {"audio": torch.randn(4, 1, 1024) * 0.3, "label": torch.full((4,), -1)}
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the engine does on CUDA (precision=auto)
        assert model.critic(batch["audio"]).dtype == torch.float32
        logs = model.train_step(lambda: batch, update, 0)
    assert calls == ["critic"] * 5 + ["generator"]
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert model.max_seconds == 1024 / 16000


def test_even_kernel_is_refused():
    with pytest.raises(WavesmithError, match="kernel_size must be odd"):
        WaveGAN(Config(kernel_size=24), DataInfo())


def test_logs_flag_a_critic_that_separates_every_clip():
    class LoudnessCritic(torch.nn.Module):  # scores loudness: silence always loses to noise
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x, labels=None):
            return self.scale * x.abs().flatten(1).mean(1)

    model = tiny()
    model.critic = LoudnessCritic()
    torch.nn.init.zeros_(model.generator.ups[-1].conv.weight)
    torch.nn.init.zeros_(model.generator.ups[-1].conv.bias)  # the generator makes silence
    model.generator.ups[-1].conv.requires_grad_(False)
    _, _, update = _fake_engine(model)
    logs = model.train_step(lambda: {"audio": torch.randn(4, 1, 1024) * 0.5, "label": torch.full((4,), -1)}, update, 0)
    assert logs["critic_wins"] == 1.0 and logs["critic_acc"] == 1.0 and logs["wasserstein"] > 0.1
    assert logs["diversity"] == 0.0 and logs["diversity_ratio"] == 0.0  # collapse shows too


def test_one_hot_label_weights_decode_like_label_ids_and_blends_lie_between():
    model = tiny(labels=("hi", "lo"))
    z = model.latent(3, seed=0)
    ids = torch.tensor([0, 1, 1])
    torch.testing.assert_close(model.decode(z, torch.nn.functional.one_hot(ids, 2).float()), model.decode(z, ids))
    half = model.decode(z[:1], torch.tensor([[0.5, 0.5]]))
    assert not torch.allclose(half, model.decode(z[:1], ids[:1]))
    with pytest.raises(WavesmithError, match="label weights must have shape"):
        model.decode(z, torch.ones(3, 3))


def test_periodic_buzz_scores_a_checkerboard_pattern_far_above_noise():
    torch.manual_seed(0)
    noise = torch.randn(8, 1, 16384) * 0.1
    pattern = torch.tensor([1.0, -0.5, 0.2, -0.7]).repeat(4096) * 0.05  # period 4: lines at rate/4, rate/2
    assert periodic_buzz_db(noise) < 4
    assert periodic_buzz_db(noise + pattern) > 20
