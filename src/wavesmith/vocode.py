"""``wavesmith vocode``: analyse audio files into log-mel frames and resynthesize them.

The honest check of a vocoder: what comes back from the frames of a real recording is
the best any mel-domain model decoding through it can sound. Each output keeps its
source's rate, channels mixed to mono, and length, and is marked, signed and described
in ``generated.jsonl`` like every file wavesmith writes (with its ``source`` file).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from wavesmith import audio as A
from wavesmith import vocoder as V
from wavesmith.errors import WavesmithError
from wavesmith.generate import check_output_folder, save_clips


def vocode(paths: list[str | os.PathLike], out_dir: str | os.PathLike, vocoder: str = V.DEFAULT,
           format: str = "wav", device: str = "cpu", watermark: bool = True) -> list[Path]:
    """Resynthesize each file of ``paths`` through ``vocoder`` into ``out_dir``; returns the files written."""
    if not paths:
        raise WavesmithError("give at least one audio file to vocode")
    out = check_output_folder(out_dir)
    sources = []
    for p in paths:  # every input is read before anything is written
        x, rate = A.read(p)
        if x.shape[-1] < rate // 20:
            raise WavesmithError(f"{p} is too short to vocode ({x.shape[-1] / rate:.3f} s; at least 0.05 s)")
        sources.append((Path(p), A.to_channels(x, 1), rate))
    voc = V.load(vocoder, device)
    written: list[Path] = []
    for i, (path, x, rate) in enumerate(sources):
        y = voc.resynthesize(torch.from_numpy(x)[None].to(device), rate)
        record = {"index": i, "source": str(path), "model": f"vocoder:{voc.name}", "settings": {"vocoder": voc.name}}
        written += save_clips(y, rate, out, [record], format=format, watermark=watermark, model=f"vocoder:{voc.name}")
    return written
