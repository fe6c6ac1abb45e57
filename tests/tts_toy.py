"""A tiny TTS trained for a few steps on espeak-ng speech, for the voice tests (no shipped model needed).

espeak-ng (the text front end's own program) speaks the training sentences in two voices,
so the toy has real phonemes, pitch and pauses to learn from, in seconds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from wavesmith import analysis as AN
from wavesmith import audio as A
from wavesmith import checkpoint as ckpt
from wavesmith import config as C
from wavesmith.models.base import DataInfo
from wavesmith.models.tts import TTS, Config

RATE = 16000
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A watched pot never boils, they say.",
    "Bring me the red book from the table, please.",
    "It was a bright cold day in April.",
    "How much wood would a woodchuck chuck?",
]
VOICES = {"amy": "en-us+f3", "bob": "en-us"}
HAS_ESPEAK = shutil.which("espeak-ng") is not None


def speak(path: Path, text: str, voice: str = "en-us", speed: int = 160) -> Path:
    """espeak-ng's reading of ``text`` as a WAV file at 22.05 kHz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


def tiny_config(**over) -> Config:
    base = dict(channels=32, encoder_convs=1, encoder_attention=1, decoder_channels=32, decoder_dilations=(1, 2),
                speaker_dim=16, dropout=0.0, max_seconds=6.0)
    return Config(**{**base, **over})


def batch_of(model: TTS, clips: list[tuple[np.ndarray, str, int]]) -> dict:
    """A training batch of ``(audio at RATE, text, speaker id)`` clips."""
    longest = max(len(x) for x, _, _ in clips)
    f0s = [AN.contours(x[None], RATE, model.features)[0] for x, _, _ in clips]
    audio = torch.zeros(len(clips), 1, longest)
    f0 = torch.zeros(len(clips), max(len(f) for f in f0s))
    for i, ((x, _, _), f) in enumerate(zip(clips, f0s, strict=True)):
        audio[i, 0, : len(x)] = torch.from_numpy(x)
        f0[i, : len(f)] = torch.from_numpy(f)
    return {"audio": audio, "length": torch.tensor([len(x) for x, _, _ in clips]), "text": [t for _, t, _ in clips],
            "speaker": torch.tensor([s for _, _, s in clips]), "f0": f0}


def train_toy(root: Path, steps: int = 40, config: Config | None = None) -> Path:
    """Train a tiny TTS on espeak-ng speech of :data:`SENTENCES` in :data:`VOICES`; returns its checkpoint."""
    torch.manual_seed(0)
    info = DataInfo(RATE, 1, (), tuple(VOICES))
    config = config or tiny_config()
    model = TTS(config, info)
    clips = []
    for sid, (name, voice) in enumerate(VOICES.items()):
        for i, text in enumerate(SENTENCES):
            x = A.load(speak(root / "train" / f"{name}{i}.wav", text, voice), RATE, 1)[0]
            clips.append((x, text, sid))
    batch = batch_of(model, clips)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model.losses(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = {"format": ckpt.FORMAT, "model_name": "tts", "config": {"model": C.to_dict(config), "train": {}},
             "data_info": info.to_dict(), "step": steps, "model": model.state_dict(), "ema": None}
    return ckpt.save(state, root / "toy-tts.pt")
