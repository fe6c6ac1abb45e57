"""The diffusion core: schedules, targets, samplers and guidance, checked on a Gaussian
whose exact denoiser is known, so a sampler's error is the sampler's own."""

from __future__ import annotations

import math

import pytest
import torch

from wavesmith import diffusion as D
from wavesmith.errors import WavesmithError

MU, STD = 0.7, 0.3


def exact(schedule: D.Schedule, prediction: str):
    """The Bayes denoiser for x0 ~ N(MU, STD^2), as a v or eps prediction."""

    def denoise(x, t):
        alpha, sigma = schedule.alpha_sigma(t)
        a, s = alpha.view(-1, 1), sigma.view(-1, 1)
        x0 = MU + a * STD**2 / (a**2 * STD**2 + s**2) * (x - a * MU)
        eps = (x - a * x0) / s
        return a * eps - s * x0 if prediction == "v" else eps

    return denoise


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedules_run_from_data_to_noise(kind):
    s = D.Schedule(kind)
    snr = s.logsnr(torch.linspace(0, 1, 101))
    assert torch.all(snr[1:] <= snr[:-1])  # monotone
    alpha, sigma = s.alpha_sigma(torch.tensor([0.0, 1.0]))
    assert alpha[0] > 0.99 and sigma[1] > alpha[1]
    assert torch.allclose(alpha**2 + sigma**2, torch.ones(2))
    if kind == "cosine":  # DiffWave's linear betas famously stop short of pure noise (alpha_bar 0.28)
        assert sigma[1] > 0.999


@pytest.mark.parametrize("sampler,steps", [("ddpm", 200), ("ddim", 200), ("dpm++", 12)])
@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_samplers_reach_the_data_distribution_with_the_exact_denoiser(sampler, steps, prediction):
    schedule = D.Schedule("cosine")
    g = torch.Generator().manual_seed(0)
    x = D.sample(exact(schedule, prediction), (20000, 1), schedule, steps=steps, sampler=sampler,
                 prediction=prediction, generator=g)
    assert abs(float(x.mean()) - MU) < 0.02
    assert abs(float(x.std()) - STD) < 0.02


def test_few_step_dpm_solver_beats_ddim_at_the_same_steps():
    schedule = D.Schedule("cosine")
    errs = {}
    for sampler in ("ddim", "dpm++"):
        x = D.sample(exact(schedule, "v"), (20000, 1), schedule, steps=4, sampler=sampler,
                     generator=torch.Generator().manual_seed(1))
        errs[sampler] = abs(float(x.std()) - STD)
    assert errs["dpm++"] < errs["ddim"]


def test_the_same_seed_gives_the_same_samples():
    schedule = D.Schedule()
    one = D.sample(exact(schedule, "v"), (4, 3), schedule, steps=5, generator=torch.Generator().manual_seed(3))
    two = D.sample(exact(schedule, "v"), (4, 3), schedule, steps=5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(one, two)


def test_training_loss_is_zero_for_the_exact_denoiser_only_in_expectation_of_its_target():
    schedule = D.Schedule()
    x0 = MU + STD * torch.randn(4096, 1, generator=torch.Generator().manual_seed(0))
    good = D.training_loss(exact(schedule, "v"), x0, schedule, "v", generator=torch.Generator().manual_seed(1))
    bad = D.training_loss(lambda x, t: torch.zeros_like(x), x0, schedule, "v",
                          generator=torch.Generator().manual_seed(1))
    assert float(good) < 0.5 * float(bad)


def test_the_mask_leaves_padding_out_of_the_loss():
    schedule = D.Schedule()
    x0 = torch.zeros(8, 10)
    mask = torch.zeros(8, 10)
    mask[:, :5] = 1

    def wrong_on_padding(x, t):
        out = exact(schedule, "v")(x, t).clone()
        out[:, 5:] += 100.0
        return out

    masked = D.training_loss(wrong_on_padding, x0, schedule, mask=mask, generator=torch.Generator().manual_seed(0))
    assert float(masked) < 10.0


def test_linear_schedule_matches_its_discrete_alpha_bars():
    s = D.Schedule("linear", beta_start=1e-4, beta_end=0.05, steps=50)
    betas = torch.linspace(1e-4, 0.05, 50, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0)
    alpha, _ = s.alpha_sigma(torch.tensor([10 / 50, 50 / 50]))
    assert torch.allclose(alpha.double() ** 2, ab[[9, 49]], rtol=1e-3)


def test_a_grid_for_diffwave_betas_lands_on_their_noise_levels():
    s = D.Schedule("linear", beta_start=1e-4, beta_end=0.05, steps=50)
    betas = [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]
    grid = D.grid_for_betas(betas, s)
    assert len(grid) == 7 and grid[-1] == 0 and torch.all(grid[1:] < grid[:-1])
    ab = torch.cumprod(1 - torch.tensor(betas), 0)
    alpha, _ = s.alpha_sigma(grid[:-1].flip(0))
    assert torch.allclose(alpha**2, ab.float(), atol=0.02)


def test_guidance_mixes_conditional_and_unconditional_predictions():
    def denoise(x, t, conditioned):
        return torch.where(conditioned[:, None], 1.0, -1.0).expand_as(x)

    x, t = torch.zeros(2, 1), torch.zeros(2)
    assert float(D.guided(denoise, 1.0)(x, t)[0]) == 1.0
    assert float(D.guided(denoise, 0.0)(x, t)[0]) == -1.0
    assert float(D.guided(denoise, 3.0)(x, t)[0]) == -1.0 + 3.0 * 2.0


def test_guidance_limited_to_an_interval_is_the_plain_conditional_model_outside_it():
    calls = []

    def denoise(x, t, conditioned):
        calls.append(len(x))
        return torch.where(conditioned[:, None], 1.0, -1.0).expand_as(x)

    guide = D.guided(denoise, 3.0, active=lambda t: t < 0.5)
    x = torch.zeros(2, 1)
    out = guide(x, torch.tensor([0.2, 0.8]))  # one row inside the interval, one outside
    assert out[:, 0].tolist() == [-1.0 + 3.0 * 2.0, 1.0]
    calls.clear()
    assert guide(x, torch.tensor([0.9, 0.9]))[:, 0].tolist() == [1.0, 1.0]
    assert calls == [2]  # outside the interval: the conditional half alone, half the work


@pytest.mark.parametrize("bad", [-0.5, math.nan, math.inf])
def test_a_bad_guidance_scale_is_refused(bad):
    with pytest.raises(WavesmithError, match="guidance"):
        D.guided(lambda x, t, c: x, bad)


def test_bad_sampling_settings_are_refused():
    s = D.Schedule()
    with pytest.raises(WavesmithError, match="at least 1 step"):
        D.sample(exact(s, "v"), (2, 1), s, steps=0)
    with pytest.raises(WavesmithError, match="unknown sampler"):
        D.sample(exact(s, "v"), (2, 1), s, sampler="euler")
    with pytest.raises(WavesmithError, match="schedule"):
        D.Schedule("sigmoid")


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_min_snr_weighs_each_example_x0_error_by_its_clipped_snr(prediction):
    schedule, n, delta, gamma = D.Schedule(), 512, 0.5, 5.0
    x0 = torch.zeros(n, 3)

    def off_by_delta(x, t):  # implies x0_hat = delta everywhere (x0 is zero, so x = sigma eps)
        alpha, sigma = (a[:, None] for a in schedule.alpha_sigma(t))
        return (alpha * x - delta) / sigma if prediction == "v" else (x - alpha * delta) / sigma

    loss = D.training_loss(off_by_delta, x0, schedule, prediction, generator=torch.Generator().manual_seed(4),
                           min_snr=gamma)
    t = torch.rand(n, generator=torch.Generator().manual_seed(4))
    expected = (schedule.logsnr(t).double().exp().clamp(max=gamma) * delta**2).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-3)
    plain = D.training_loss(off_by_delta, x0, schedule, prediction, generator=torch.Generator().manual_seed(4))
    assert float(plain) > 2 * float(loss)  # unweighted, the nearly clean examples dominate


def test_min_snr_must_be_a_number_at_least_zero():
    with pytest.raises(WavesmithError, match="min_snr"):
        D.training_loss(lambda x, t: x, torch.zeros(2, 3), D.Schedule(), min_snr=-1)
