"""What a briefly trained WaveNet generates: not silence, not a steady tone, not noise.

The corpus is real-like: plucked strings (Karplus-Strong: a noise burst in a delay line
with a low-pass in the loop) at random pitches and levels, each starting after a random
pause and dying away, at 8 kHz. Generated audio must look like that on three counts that
each fail on one of the known failure modes, and the test first shows that each count
does reject the failure it names.
"""

import os

import numpy as np
import pytest
import torch

from wavesmith.models.base import DataInfo
from wavesmith.models.wavenet import Config, WaveNet

RATE = 8000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pluck(rng: np.random.Generator, f0: float, n: int, decay: float = 0.985) -> np.ndarray:
    period = int(RATE / f0)
    line = rng.uniform(-1, 1, period)
    out = np.empty(n)
    for i in range(n):
        j = i % period
        out[i] = line[j]
        line[j] = 0.5 * (line[j] + line[(j + 1) % period]) * decay
    return out


def corpus(seed: int = 0, clips: int = 24, n: int = 2400) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = np.zeros((clips, n), np.float32)
    for c in range(clips):
        start = int(rng.integers(0, 400))
        out[c, start:] = pluck(rng, rng.uniform(110, 330), n - start) * rng.uniform(0.3, 0.7)
    return torch.from_numpy(out)


def level_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-9))


def flatness(x: np.ndarray, frame: int = 256) -> float:
    """Median spectral flatness of the audible frames: ~0.56 for white noise, ~0 for a pitch."""
    values = []
    for f in x[: len(x) // frame * frame].reshape(-1, frame):
        if np.sqrt(np.mean(f**2)) > 1e-3:
            p = np.abs(np.fft.rfft(f * np.hanning(frame))) ** 2 + 1e-12
            values.append(np.exp(np.mean(np.log(p))) / np.mean(p))
    return float(np.median(values)) if values else 1.0


def envelope_variation(x: np.ndarray, frame: int = 256) -> float:
    """Coefficient of variation of the frame RMS: ~0 for a steady tone, large for notes that die away."""
    env = np.sqrt((x[: len(x) // frame * frame].reshape(-1, frame) ** 2).mean(1))
    return float(env.std() / (env.mean() + 1e-9))


def sounds_like_plucks(x: np.ndarray) -> bool:
    return level_db(x) > -45 and flatness(x) < 0.15 and envelope_variation(x) > 0.1


def test_the_check_rejects_silence_steady_tones_and_noise_and_accepts_the_corpus():
    rng = np.random.default_rng(1)
    t = np.arange(RATE // 2) / RATE
    assert not sounds_like_plucks(np.zeros(RATE // 2))
    assert not sounds_like_plucks(0.3 * np.sin(2 * np.pi * 220 * t))
    assert not sounds_like_plucks(rng.uniform(-0.3, 0.3, RATE // 2))
    assert not sounds_like_plucks(np.clip(rng.normal(0, 0.2, RATE // 2) * np.exp(-t * 6), -1, 1))  # decaying noise
    assert all(sounds_like_plucks(c.numpy()) for c in corpus(seed=2, clips=6))


@pytest.mark.slow
def test_briefly_trained_model_generates_plucks_not_silence_tone_or_noise():
    seed = int(os.environ.get("WAVENET_QUALITY_SEED", "0"))
    data = corpus(seed)
    torch.manual_seed(seed)
    model = WaveNet(
        Config(layers=10, stacks=1, kernel_size=2, residual_channels=32, gate_channels=64, skip_channels=32,
               lr=3e-3, crop=1000),
        DataInfo(RATE),
    )
    opt = model.configure_optimizers()["model"]
    g = torch.Generator().manual_seed(seed)

    def next_batch():
        idx = torch.randint(0, len(data), (8,), generator=g)
        start = int(torch.randint(0, data.shape[1] - model.crop_samples, (1,), generator=g))
        x = data[idx, start : start + model.crop_samples]
        return {"audio": x[:, None], "mask": torch.ones_like(x)}

    def update(name, loss):
        opt.zero_grad()
        loss.backward()
        opt.step()

    for step in range(400):
        model.train_step(next_batch, update, step)
    out = model.eval().sample(6, 0.5, seed=seed)[:, 0].double().numpy()
    good = [sounds_like_plucks(x) for x in out]
    detail = [(round(level_db(x)), round(flatness(x), 3), round(envelope_variation(x), 2)) for x in out]
    assert sum(good) >= 4, f"(level dB, flatness, envelope variation) per clip: {detail}"
