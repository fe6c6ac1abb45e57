"""A tiny conditional WaveGAN learns which label means low tones and which means high ones."""

from __future__ import annotations

import math
import os

import pytest
import torch

from wavesmith.models.base import DataInfo
from wavesmith.models.wavegan import Config, WaveGAN

RATE, WINDOW = 8000, 1024


def tone_bursts(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Decaying sine bursts: label 0 ("low") at 150-300 Hz, label 1 ("high") at 2-3 kHz."""
    n = len(labels)
    u = torch.rand(n, generator=g)
    freq = torch.where(labels == 0, 150 + 150 * u, 2000 + 1000 * u)
    t = torch.arange(WINDOW) / RATE
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    return (0.8 * torch.exp(-t / 0.05) * torch.sin(2 * math.pi * freq[:, None] * t + phase))[:, None]


def low_band_share(audio: torch.Tensor) -> torch.Tensor:
    """Share of each clip's spectral energy below 1 kHz."""
    power = torch.fft.rfft(audio[:, 0]).abs().square()
    freqs = torch.fft.rfftfreq(audio.shape[-1], 1 / RATE)
    return power[:, freqs < 1000].sum(1) / power.sum(1).clamp_min(1e-12)


@pytest.mark.parametrize("seed", [0])
def test_conditional_model_generates_low_tones_for_low_and_high_tones_for_high(seed):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: a second thread only adds contention on a shared CPU
    try:
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        model = WaveGAN(Config(window=WINDOW, model_dim=4, lr=2e-3, n_critic=2), DataInfo(RATE, 1, ("low", "high")))
        opts = model.configure_optimizers()

        def update(name, loss):
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()

        def next_batch():
            labels = torch.randint(2, (16,), generator=g)
            return {"audio": tone_bursts(labels, g), "label": labels}

        steps = int(os.environ.get("WAVESMITH_TEST_WAVEGAN_STEPS", 300))
        for step in range(steps):
            logs = model.train_step(next_batch, update, step)
        assert math.isfinite(logs["wasserstein"]) and logs["diversity"] > 0

        model.eval()
        low = model.sample(64, WINDOW / RATE, {"label": torch.zeros(64, dtype=torch.long)}, seed=1)
        high = model.sample(64, WINDOW / RATE, {"label": torch.ones(64, dtype=torch.long)}, seed=1)
        share_low, share_high = low_band_share(low), low_band_share(high)
        # same latents, different labels: the label alone moves energy below 1 kHz in the right direction
        assert share_low.median() > share_high.median() + 0.1, (share_low.median(), share_high.median())
        assert (share_low > share_high).float().mean() > 0.8
    finally:
        torch.set_num_threads(threads)
