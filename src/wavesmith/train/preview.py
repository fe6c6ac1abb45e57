"""Preview clips during training: hear (and see) what the EMA weights make at this step.

``RUN/previews/step-XXXXXXX.wav`` holds ``preview_count`` clips one after another (a
quarter second of silence between them) and ``.png`` their spectrogram. With
``preview_eval`` the clips are also scored by ``wavesmith.evaluate.quick_metrics``
against the valid split, so ``metrics.jsonl`` shows quality over time, not only loss.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith.errors import WavesmithError

GAP_SECONDS = 0.25


def preview(model, info, tc, run_dir: Path, step: int, db) -> dict[str, Any]:
    """Sample, write the preview files and return figures for ``metrics.jsonl``."""
    t0 = time.monotonic()
    n = tc.preview_count
    conditions = None
    if info.labels:  # walk through the labels so every class gets heard
        conditions = {"label": torch.arange(n, device=model.device) % len(info.labels)}
    try:
        clips = model.sample(n, tc.preview_seconds, conditions, seed=tc.seed)
    except WavesmithError:
        if conditions is None:
            raise
        clips = model.sample(n, tc.preview_seconds, None, seed=tc.seed)
    clips = clips.detach().float().cpu().numpy()
    gap = np.zeros((clips.shape[1], int(GAP_SECONDS * info.sample_rate)), dtype=np.float32)
    joined = np.concatenate([x for c in clips for x in (c, gap)][:-1], axis=1)
    folder = Path(run_dir) / "previews"
    stem = folder / f"step-{step:07d}"
    A.write(stem.with_suffix(".wav"), joined, info.sample_rate)
    from wavesmith.plot import spectrogram_png

    png = spectrogram_png(joined, info.sample_rate)
    tmp = stem.with_suffix(".png.tmp")
    tmp.write_bytes(png)
    tmp.replace(stem.with_suffix(".png"))
    figures: dict[str, Any] = {"file": str(stem.with_suffix(".wav")), "seconds": round(time.monotonic() - t0, 3),
                               "peak": float(np.abs(clips).max()) if clips.size else 0.0}
    if tc.preview_eval:
        figures.update(_quick_metrics(list(clips), info.sample_rate, db))
    return figures


def _quick_metrics(clips: list[np.ndarray], sample_rate: int, db) -> dict[str, Any]:
    try:
        from wavesmith.evaluate import quick_metrics
    except ImportError as e:
        print(f"wavesmith: preview_eval skipped: wavesmith.evaluate.quick_metrics unavailable ({e})",
              file=sys.stderr)
        return {"eval_skipped": "wavesmith.evaluate.quick_metrics unavailable"}
    try:
        return {f"eval_{k}": float(v) for k, v in quick_metrics(clips, sample_rate, db, split="valid").items()}
    except WavesmithError as e:
        return {"eval_skipped": str(e)}
