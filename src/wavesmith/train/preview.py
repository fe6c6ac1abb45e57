"""Preview clips during training: hear (and see) what the EMA weights make at this step.

``RUN/previews/step-XXXXXXX.wav`` holds ``preview_count`` clips one after another (a
quarter second of silence between them) and ``.png`` their spectrogram. With
``preview_eval`` the clips are also scored by ``wavesmith.evaluate.quick_metrics``
against the valid split, so ``metrics.jsonl`` shows quality over time, not only loss.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.files import write_bytes

GAP_SECONDS = 0.25


def preview(model, info, tc, run_dir: Path, step: int, db) -> dict[str, Any]:
    """Sample, write the preview files and return figures for ``metrics.jsonl``."""
    t0 = time.monotonic()
    n = tc.preview_count
    # Never longer than the model can make (a WaveGAN window may be under a second).
    seconds = min(tc.preview_seconds, model.max_seconds or tc.preview_seconds)
    try:
        clips = model.sample(n, seconds, preview_conditions(model, info, n, seconds, db), seed=tc.seed)
    except WavesmithError as e:  # a preview must never stop a training run
        return {"preview_skipped": str(e)}
    clips = A.as_float32(clips)
    gap = np.zeros((clips.shape[1], int(GAP_SECONDS * info.sample_rate)), dtype=np.float32)
    joined = np.concatenate([x for c in clips for x in (c, gap)][:-1], axis=1)
    folder = Path(run_dir) / "previews"
    stem = folder / f"step-{step:07d}"
    A.write(stem.with_suffix(".wav"), joined, info.sample_rate)
    from wavesmith.plot import spectrogram_png

    write_bytes(stem.with_suffix(".png"), spectrogram_png(joined, info.sample_rate))
    figures: dict[str, Any] = {"file": str(stem.with_suffix(".wav")), "seconds": round(time.monotonic() - t0, 3),
                               "peak": float(np.abs(clips).max()) if clips.size else 0.0}
    if tc.preview_eval:
        figures.update(_quick_metrics(list(clips), info.sample_rate, db))
    return figures


def preview_conditions(model, info, n: int, seconds: float, db) -> dict[str, torch.Tensor] | None:
    """What the model declares it takes (``model.accepts``): every label in turn, the text,
    language and speaker of valid clips when it needs text (speech), or real valid clips to
    resynthesize when it needs log-mel frames (a vocoder); else nothing."""
    conditions: dict[str, torch.Tensor] = {}
    if "label" in model.accepts and info.labels:
        conditions["label"] = torch.arange(n, device=model.device) % len(info.labels)
    if "speaker" in model.accepts and info.speakers:
        conditions["speaker"] = torch.arange(n, device=model.device) % len(info.speakers)
    if "text" in model.requires:  # speech: say what valid clips say, in their speakers' voices
        clips = [c for c in (db.clips("valid") or db.clips()) if c.text][:n]
        if not clips:
            raise WavesmithError("no clips with text to speak for a preview")
        clips = [clips[i % len(clips)] for i in range(n)]
        languages = list(getattr(info, "languages", ()) or ())
        conditions["text"] = [c.text for c in clips]
        conditions["language"] = torch.tensor(
            [languages.index(c.language) if getattr(c, "language", None) in languages else -1 for c in clips])
        conditions["speaker"] = torch.tensor(
            [info.speakers.index(c.speaker) if c.speaker in info.speakers else -1 for c in clips])
    if "mel_from" in model.requires:
        clips = (db.clips("valid") or db.clips("test") or db.clips())[:n]
        if not clips:
            raise WavesmithError("no clips to resynthesize for a preview")
        length = int(seconds * info.sample_rate)
        real = np.zeros((n, info.channels, length), dtype=np.float32)
        for i in range(n):
            x = db.audio(clips[i % len(clips)].id)[:, :length]
            real[i, :, : x.shape[1]] = x
        conditions["mel_from"] = torch.from_numpy(real).to(model.device)
    return conditions or None


def _quick_metrics(clips: list[np.ndarray], sample_rate: int, db) -> dict[str, Any]:
    from wavesmith.evaluate import quick_metrics

    try:
        return {f"eval_{k}": float(v) for k, v in quick_metrics(clips, sample_rate, db, split="valid").items()}
    except WavesmithError as e:
        return {"eval_skipped": str(e)}
