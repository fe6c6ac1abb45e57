"""Timbre transfer: play the melody of any recording with the timbre a DDSP run learned.

``wavesmith transfer RUN AUDIO... --out DIR``: the f0 and loudness contours of each input
(:func:`wavesmith.analysis.contours`, on the model's own frame grid, f0 by ``--tracker``,
dio-yin unless told) drive the model's
synthesizer, so the input's melody and phrasing come out in the run's timbre (Engel et
al. 2020, section 5.2). ``--semitones`` moves the melody (into the target's range, say),
``--loudness-db`` shifts the loudness contour. Inputs with no melody to follow (silence,
unpitched noise) are refused; a polyphonic input (a chord, a mix: scored by
:func:`wavesmith.analysis.polyphony`) is played as the one pitch the tracker follows, with
a one-line warning on stderr, or refused when no pitch can be followed in it. Outputs go
through :func:`wavesmith.generate.save_clips` (watermark, C2PA, ``generated.jsonl`` naming
the ``source`` of each file).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from wavesmith import analysis as AN
from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.generate import check_output_folder, load_model, open_output_folder, save_clips

MAX_SEMITONES = 24.0
MAX_LOUDNESS_DB = 40.0
MIN_VOICED = 0.05  # share of a clip's non-silent frames that must be pitched to count as a melody
SILENT_DB = -60.0  # A-weighted frame loudness under which a frame is silence


@dataclass
class TransferSettings:
    """How ``wavesmith transfer`` moves the input's contours before they are played."""

    semitones: float = 0.0  # melody transposition
    loudness_db: float = 0.0  # added to the loudness contour
    label: str | None = None  # timbre to play, for a run trained on several (labels)
    tracker: str = "dio-yin"  # f0 tracker of the input (analysis.TRACKERS)

    def check(self) -> None:
        if self.tracker not in AN.TRACKERS:
            raise WavesmithError(f"unknown --tracker {self.tracker!r}; use one of {', '.join(AN.TRACKERS)}")
        if not np.isfinite(self.semitones) or abs(self.semitones) > MAX_SEMITONES:
            raise WavesmithError(f"--semitones must be within +-{MAX_SEMITONES:g}, not {self.semitones:g}")
        if not np.isfinite(self.loudness_db) or abs(self.loudness_db) > MAX_LOUDNESS_DB:
            raise WavesmithError(f"--loudness-db must be within +-{MAX_LOUDNESS_DB:g}, not {self.loudness_db:g}")


def melody(path: str | os.PathLike, x: np.ndarray, sample_rate: int, spec: AN.FeatureSpec,
           settings: TransferSettings) -> tuple[np.ndarray, np.ndarray]:
    """The contours of ``x`` (1, T) on ``spec``'s grid, tracked with ``settings.tracker`` and moved by
    ``settings``; refuses input with no melody."""
    f0, ld = AN.contours(x, sample_rate, replace(spec, tracker=settings.tracker))
    sounding = ld > SILENT_DB
    if not sounding.any():
        raise WavesmithError(f"{path} is silent: there is no melody to follow")
    voiced = (f0 > 0) & sounding
    if voiced.sum() < max(3, MIN_VOICED * sounding.sum()):
        if polyphony(x, sample_rate, f0, spec) > AN.POLYPHONY_WARN:
            raise WavesmithError(f"{path} sounds like a chord or a mix with no one pitch to follow: "
                                 "transfer plays a melody, give it one voice or instrument")
        raise WavesmithError(f"{path} has no pitch to follow (unpitched noise or percussion): "
                             "transfer plays a melody, give it a pitched recording")
    return f0 * 2.0 ** (settings.semitones / 12.0), ld + settings.loudness_db


def polyphony(x: np.ndarray, sample_rate: int, f0: np.ndarray, spec: AN.FeatureSpec) -> float:
    """:func:`wavesmith.analysis.polyphony` of ``x`` with ``f0`` on ``spec``'s frame grid."""
    times = np.arange(len(f0)) / spec.frame_rate
    track = AN.F0Track(f0.astype(np.float64), f0 > 0, times, 1.0 / spec.frame_rate)
    return AN.polyphony(x, sample_rate, track, stride=2)


def transfer(
    run_or_checkpoint: str | os.PathLike,
    paths: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: TransferSettings,
    format: str = "wav",
    device: str | None = None,
    watermark: bool = True,
) -> list[Path]:
    """Play each of ``paths`` with the run's timbre into ``out_dir``; returns the written files.

    Every input is analysed and rendered before the first file is written, so a bad input
    leaves ``out_dir`` as it was.
    """
    settings.check()
    if not paths:
        raise WavesmithError("give at least one audio file")
    fmt = A.check_format(format)
    out = check_output_folder(out_dir)
    model, meta = load_model(run_or_checkpoint, device)
    if "f0" not in model.requires or model.features is None:
        raise WavesmithError(f"{meta['path']} is a {meta['model_name']} model; transfer needs a model that "
                             "plays f0 and loudness (train one with --model ddsp)")
    info = model.info
    fixed = {}
    if settings.label is not None:
        fixed["label"] = torch.tensor([info.label_id(settings.label)], device=model.device)
    elif "label" in model.requires:
        raise WavesmithError(f"this run holds several timbres: choose one with --label ({', '.join(info.labels)})")
    rendered, warnings = [], []
    for path in paths:
        x = A.load(path, info.sample_rate, 1)
        if x.shape[-1] == 0:
            raise WavesmithError(f"{path} holds no audio")
        f0, ld = melody(path, x, info.sample_rate, model.features, settings)
        shifted = f0 / 2.0 ** (settings.semitones / 12.0)
        if warning := AN.polyphony_warning(path, polyphony(x, info.sample_rate, shifted, model.features)):
            warnings.append(warning)
        conditions = {"f0": torch.from_numpy(f0)[None], "loudness": torch.from_numpy(ld)[None], **fixed}
        y = model.sample(1, x.shape[-1] / info.sample_rate, conditions, seed=0)
        rendered.append((Path(path), y.cpu().numpy()))
    open_output_folder(out, warnings)
    written = []
    for i, (path, y) in enumerate(rendered):
        record = {"index": i, "model": meta["model_name"], "checkpoint": meta["path"],
                  "checkpoint_sha256": meta["sha256"], "step": meta["step"], "source": str(path),
                  "settings": {**asdict(settings), "format": fmt, "watermark": watermark}}
        written += save_clips(y, info.sample_rate, out, [record], format=fmt, watermark=watermark,
                              model=meta["model_name"], checkpoint_hash=meta["sha256"])
    return written
