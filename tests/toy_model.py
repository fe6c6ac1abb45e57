"""A tiny GenerativeModel for the engine and generate tests (``--model toy_model:ToyModel``).

Two optimizers (like a GAN), a random draw in every step (so resuming must restore the
random state) and every condition of the contract, in a few hundred parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sounds import tone
from wavesmith import models
from wavesmith.errors import WavesmithError
from wavesmith.models.base import GenerativeModel, generator_for


@dataclass
class Config:
    crop: int = 256  # training crop in samples
    width: int = 4  # hidden channels of the denoiser
    lr: float = 1e-2  # learning rate of both optimizers
    sgd: bool = False  # plain SGD instead of Adam (so a test can see clipping in the weights)
    noise: float = 0.1  # std of the noise the denoiser removes
    inner: int = 2  # batches drawn per step (two updates of "denoiser", one of "gain")
    sleep: float = 0.0  # seconds to sleep per step (lets a test interrupt a run mid-way)


class ToyModel(GenerativeModel):
    name = "toy"
    Config = Config

    def __init__(self, config: Config, info):
        super().__init__(config, info)
        c = info.channels
        self.denoiser = nn.Sequential(nn.Conv1d(c, config.width, 3, padding=1), nn.Tanh(),
                                      nn.Conv1d(config.width, c, 3, padding=1))
        self.gain = nn.Parameter(torch.ones(()))
        self.label_bias = nn.Embedding(max(1, len(info.labels)), c)

    @property
    def crop_samples(self) -> int:
        return self.config.crop

    def configure_optimizers(self):
        opt = torch.optim.SGD if self.config.sgd else torch.optim.Adam
        return {
            "denoiser": opt([*self.denoiser.parameters(), *self.label_bias.parameters()], lr=self.config.lr),
            "gain": opt([self.gain], lr=self.config.lr),
        }

    def loss(self, batch) -> torch.Tensor:
        x = batch["audio"]
        noisy = x + self.config.noise * torch.randn_like(x)
        out = self.denoiser(noisy) * self.gain + self.label_bias(batch["label"].clamp(min=0))[..., None]
        return ((out - x) ** 2 * batch["mask"][:, None]).mean()

    def train_step(self, next_batch, update, step):
        for _ in range(self.config.inner):
            loss = self.loss(next_batch())
            update("denoiser", loss)
        gain_loss = self.loss(next_batch())
        update("gain", gain_loss)
        if self.config.sleep:
            time.sleep(self.config.sleep)
        return {"loss": loss.item(), "gain_loss": gain_loss.item()}

    @torch.no_grad()
    def validation_loss(self, batch):
        return {"loss": float(self.loss(batch))}

    @torch.no_grad()
    def sample(self, n, seconds, conditions=None, seed=None, temperature=1.0):
        conditions = conditions or {}
        if "speaker" in conditions:
            raise WavesmithError("the toy model has no speaker conditioning")
        t = int(round(seconds * self.info.sample_rate))
        g = generator_for(seed, self.device)
        z = torch.randn(n, self.info.channels, t, generator=g, device=self.device) * 0.3 * temperature
        for key in ("prompt", "mel_from"):
            if conditions.get(key) is not None:
                w = torch.as_tensor(conditions[key], device=self.device)
                k = min(t, w.shape[-1])
                z[..., :k] += w[..., :k]
        out = torch.tanh(self.denoiser(z) * self.gain) * 0.5 + 0.2 * torch.sin(torch.arange(t, device=z.device) * 0.1)
        if conditions.get("label") is not None:
            out = out + 0.01 * self.label_bias(conditions["label"].to(self.device))[..., None]
        return out


def make_db(root: Path, n: int = 20, rate: int = 8000, seconds: float = 0.3, labels=("hi", "lo"),
            split_ratios=(0.6, 0.3, 0.1)) -> Path:
    """A small clip database of tones in ``root/db`` (labels from folder names)."""
    import soundfile as sf

    from wavesmith.db import Database

    src = root / "src"
    for i in range(n):
        label = labels[i % len(labels)]
        (src / label).mkdir(parents=True, exist_ok=True)
        sf.write(str(src / label / f"t{i:02d}.wav"), tone(200 + 40 * i, rate, seconds, amp=0.4), rate)
    db = Database.create(root / "db", sample_rate=rate, channels=1, split_ratios=split_ratios)
    db.add([src], label_from="parent", workers=1, progress=False)
    db.close()
    return root / "db"


# Importing this module is the tests' opt-in to the plug-in (what `generate --plugin` does):
# checkpoints of toy runs name it, and wavesmith imports no module a file names by itself.
models.register("toy_model:ToyModel", "toy_model:ToyModel")
