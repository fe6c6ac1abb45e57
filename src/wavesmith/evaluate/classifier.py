"""A small log-mel CNN classifier, the "inception network" of the classifier metrics.

As in the SC09 evaluations of WaveGAN (Donahue et al. 2019, section 6.1) and DiffWave, the
Inception Score and its relatives need a classifier trained on the real data. Ours is a
four-block CNN on a one-second log-mel window starting at the clip's onset; it trains in
seconds to minutes on a CPU. It is cached in the database folder under the database's
fingerprint, so adding or removing clips retrains it, and nothing else does.

Its penultimate layer (global average and max pools of the last block) gives the features of
the classifier Frechet distance and of NDB/K.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wavesmith import audio as A
from wavesmith.evaluate.features import N_MELS, fft_size
from wavesmith.files import atomic_path

WINDOW_SECONDS = 1.0
ONSET_DB = 40.0  # the window starts where the clip first comes within this of its peak
FORMAT_VERSION = 1


class Net(nn.Module):
    """Conv(3x3)-BN-ReLU-pool blocks over (mels, frames), then pooled features and a linear head."""

    def __init__(self, n_classes: int, width: int = 16):
        super().__init__()
        chans = [1, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i + 1]),
                       nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.dim = 2 * chans[-1]
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.dim, n_classes))

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mels, frames) normalised log-mel -> (B, dim) penultimate features."""
        h = self.body(mel[:, None])
        return torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(mel))


def onset_windows(clips: list[np.ndarray], sample_rate: int, seconds: float = WINDOW_SECONDS) -> torch.Tensor:
    """(n, samples) mono windows of ``seconds`` starting 10 ms before each clip's onset, zero-padded."""
    n = int(round(seconds * sample_rate))
    out = torch.zeros(len(clips), n)
    margin = int(0.01 * sample_rate)
    for i, c in enumerate(clips):
        x = np.asarray(c, dtype=np.float32).reshape(-1, c.shape[-1]).mean(0)
        mag = np.abs(x)
        peak = mag.max() if x.size else 0.0
        start = int(np.argmax(mag >= peak * 10 ** (-ONSET_DB / 20))) if peak > 0 else 0
        seg = x[max(0, start - margin): max(0, start - margin) + n]
        out[i, : len(seg)] = torch.from_numpy(seg)
    return out


@dataclass
class Classifier:
    """A trained :class:`Net` with what it needs to read audio the way it was trained."""

    net: Net
    labels: list[str]
    sample_rate: int
    mean: torch.Tensor  # (mels, 1) per-band normalisation from the training set
    std: torch.Tensor
    prior: np.ndarray  # label frequencies of the training set (for the AM score)
    test_accuracy: float | None = None
    seconds_trained: float = 0.0
    fingerprint: str = ""

    def mel(self, clips: list[np.ndarray]) -> torch.Tensor:
        return _mel(onset_windows(clips, self.sample_rate), self.sample_rate)

    @torch.inference_mode()
    def predict(self, clips: list[np.ndarray], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, classes) and penultimate features (n, dim) of ``clips``."""
        self.net.eval()
        probs, feats = [], []
        for s in range(0, len(clips), batch_size):
            m = (self.mel(clips[s: s + batch_size]) - self.mean) / self.std
            f = self.net.features(m)
            feats.append(f.double().numpy())
            probs.append(torch.softmax(self.net.head(f), -1).double().numpy())
        dim = self.net.dim
        if not probs:
            return np.zeros((0, len(self.labels))), np.zeros((0, dim))
        return np.concatenate(probs), np.concatenate(feats)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically; loads again with ``weights_only=True`` (no code unpickled)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "version": FORMAT_VERSION, "state": self.net.state_dict(), "labels": list(self.labels),
            "sample_rate": self.sample_rate, "mean": self.mean, "std": self.std,
            "prior": torch.from_numpy(np.asarray(self.prior, dtype=np.float64)),
            "test_accuracy": -1.0 if self.test_accuracy is None else float(self.test_accuracy),
            "seconds_trained": float(self.seconds_trained), "fingerprint": self.fingerprint,
            "width": self.net.body[0].out_channels,
        }
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Classifier:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("version") != FORMAT_VERSION:
            raise ValueError("classifier cache of another version")
        net = Net(len(blob["labels"]), width=int(blob["width"]))
        net.load_state_dict(blob["state"])
        net.eval()
        acc = float(blob["test_accuracy"])
        return cls(net, list(blob["labels"]), int(blob["sample_rate"]), blob["mean"], blob["std"],
                   blob["prior"].numpy(), None if acc < 0 else acc, float(blob["seconds_trained"]),
                   str(blob["fingerprint"]))


def _mel(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    n_fft = fft_size(sample_rate)
    return A.log_mel(x, sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=N_MELS)


def train(
    clips: list[np.ndarray],
    labels: np.ndarray,
    label_names: list[str],
    sample_rate: int,
    test_clips: list[np.ndarray] | None = None,
    test_labels: np.ndarray | None = None,
    max_steps: int = 1500,
    max_seconds: float = 300.0,
    batch_size: int = 64,
    seed: int = 0,
    log=None,
) -> Classifier:
    """Train on labelled clips (label ids index ``label_names``; -1 rows are dropped)."""
    labels = np.asarray(labels)
    keep = np.flatnonzero(labels >= 0)
    clips = [clips[i] for i in keep]
    y = torch.as_tensor(labels[keep], dtype=torch.long)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    t0 = time.monotonic()
    with torch.no_grad():
        mel = _mel(onset_windows(clips, sample_rate), sample_rate)
        mean = mel.mean((0, 2))[:, None]
        std = mel.std((0, 2))[:, None].clamp_min(1e-3)
        mel = (mel - mean) / std
    net = Net(len(label_names))
    batch = min(batch_size, len(clips))
    steps_per_epoch = math.ceil(len(clips) / batch)
    steps = int(min(max_steps, max(200, 30 * steps_per_epoch)))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    # Class-balanced sampling: small classes matter as much as large ones for the scores.
    counts = torch.bincount(y, minlength=len(label_names)).double()
    weights = (1.0 / counts.clamp_min(1))[y]
    net.train()
    for step in range(steps):
        idx = torch.multinomial(weights, batch, replacement=True, generator=g)
        m = _augment(mel[idx], g)
        loss = nn.functional.cross_entropy(net(m), y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % 100 == 0:
            log(f"classifier step {step + 1}/{steps} loss {loss.item():.3f}")
        if time.monotonic() - t0 > max_seconds:
            break
    net.eval()
    prior = (counts / counts.sum()).numpy()
    clf = Classifier(net, list(label_names), sample_rate, mean, std, prior, seconds_trained=time.monotonic() - t0)
    if test_clips is not None and test_labels is not None and (np.asarray(test_labels) >= 0).any():
        p, _ = clf.predict(test_clips)
        t = np.asarray(test_labels)
        clf.test_accuracy = float((p.argmax(1)[t >= 0] == t[t >= 0]).mean())
    return clf


def _augment(m: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random gain (+-6 dB, a shift of the log), time shift (+-4 frames) and one frequency mask."""
    b, f, t = m.shape
    m = m + (torch.rand(b, 1, 1, generator=g) - 0.5) * 0.5
    shift = int(torch.randint(-4, 5, (1,), generator=g))
    m = torch.roll(m, shift, dims=2)
    lo = int(torch.randint(0, f - 8, (1,), generator=g))
    m = m.clone()
    m[:, lo: lo + int(torch.randint(0, 8, (1,), generator=g))] = 0.0
    return m
