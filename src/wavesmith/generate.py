"""Generate marked audio files from a trained run: ``wavesmith generate RUN -n 16 --out DIR``.

:func:`load_model` rebuilds a model from one checkpoint file (no code is unpickled) with
its EMA weights. :func:`generate` samples it and hands the clips to :func:`save_clips`,
the one place where wavesmith output gets marked: a watermark inside the waveform
(:func:`wavesmith.watermark.embed`, payload derived from the checkpoint) and signed C2PA
Content Credentials in the file (:func:`wavesmith.watermark.sign_file`), then one line per
file in ``DIR/generated.jsonl`` saying how it was made.

Seeds: file ``i`` of a run with ``--seed s`` is sampled with seed ``file_seed(s, i)``
(``file_seed(s, 0) == s``), one file per ``model.sample`` call by default, so the same
seed gives the same files whatever ``-n`` is, and ``-n 1 --seed <the file's seed>``
remakes any one of them. With ``--batch-size B`` each call makes ``B`` files from the
seed of its first file; the record gives that seed and the file's place in the batch.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith import checkpoint as ckpt
from wavesmith import config as C
from wavesmith import models, shipped
from wavesmith import watermark as W
from wavesmith.device import pick_device
from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import hold_folder
from wavesmith.models.base import DataInfo, GenerativeModel
from wavesmith.seeds import mix64

RECORDS = "generated.jsonl"
MAX_SECONDS = 3600.0  # longest file one call makes: past this, memory runs out before a file is written


def file_seed(seed: int, index: int) -> int:
    """Seed of file ``index`` in a run seeded ``seed`` (index 0 keeps ``seed``; others splitmix64-spread)."""
    if index == 0:
        return int(seed)
    return mix64(seed, 0, index) % 2**31


def load_model(
    run_or_checkpoint: str | os.PathLike, device: str | None = None, checkpoint: str = "best"
) -> tuple[GenerativeModel, dict]:
    """The model of a checkpoint file, a run's ``best.pt`` (or newest one) or a shipped model, with its EMA weights.

    A path that exists wins over a shipped model of the same name. The model is in eval mode.
    For a run folder ``checkpoint="best"`` loads ``best.pt`` (lowest validation loss of the
    EMA weights; the newest checkpoint when the run has no ``best.pt``) and ``"last"`` the
    newest ``step-*.pt``. Returns ``(model, meta)``; ``meta`` has ``path``, ``sha256``,
    ``model_name``, ``step``, ``config`` and ``data_info``.
    """
    path = shipped.checkpoint_path(run_or_checkpoint, checkpoint)
    state, digest = ckpt.load(path)
    cls = models.get(state["model_name"])
    info = DataInfo.from_dict(state["data_info"])
    model = cls(C.from_dict(cls.Config, state["config"]["model"]), info)
    weights = state["ema"]["shadow"] if state.get("ema") else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise WavesmithError(f"{path} does not fit model {state['model_name']!r}: {one_line(e, 0)}") from None
    model.to(pick_device(device)).eval()
    meta = {"path": str(path), "sha256": digest, "model_name": state["model_name"], "step": int(state["step"]),
            "config": state["config"], "data_info": info.to_dict()}
    return model, meta


def save_clips(
    audio: np.ndarray | torch.Tensor,
    sample_rate: int,
    out_dir: str | os.PathLike,
    records: list[dict],
    format: str = "wav",
    watermark: bool = True,
    model: str | None = None,
    checkpoint_hash: str | None = None,
    lengths: list[int] | None = None,
    assertions: dict[str, dict] | None = None,
) -> list[Path]:
    """Write ``audio`` ``(n, C, T)`` as marked files ``DIR/<index>.<format>`` and append their records.

    ``assertions`` are added to every file's C2PA manifest by label (see
    :func:`wavesmith.watermark.sign_file`).
    ``lengths[i]`` cuts clip ``i`` to that many samples (with a 10 ms fade-out where it cuts).
    ``records[i]`` describes clip ``i`` (its ``index`` names the file, default ``i``); each
    is written to ``DIR/generated.jsonl`` with ``file``, ``watermark`` (``{"payload": p,
    "verified": b}``, ``b`` whether the written file's mark is found again with its payload,
    or ``false``), ``watermark_reason`` when a clip could not carry the mark or it is not
    found again, and ``c2pa``.
    """
    audio = A.as_float32(audio)
    if audio.ndim != 3 or len(audio) != len(records):
        raise ValueError(f"save_clips needs audio (n, C, T) and n records, not {audio.shape} and {len(records)}")
    fmt = A.check_format(format)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WavesmithError(f"cannot write to {out}: {e.strerror or e}") from None
    payload = W.payload_for(checkpoint_hash or model or "wavesmith") if watermark else None
    paths = []
    unsigned_reasons: set[str] = set()  # each said once: an unsigned format would repeat it for every file
    with open(out / RECORDS, "a", encoding="utf-8") as log:
        for i, (clip, rec) in enumerate(zip(audio, records, strict=True)):
            path = out / f"{int(rec.get('index', i)):03d}.{fmt}"
            rec = {"file": path.name, **rec}
            if lengths is not None and lengths[i] < clip.shape[-1]:
                clip = clip[:, : lengths[i]].copy()
                fade = min(clip.shape[-1], round(0.01 * sample_rate))
                clip[:, clip.shape[-1] - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
            if payload is not None:
                try:
                    clip = W.embed(clip, sample_rate, payload)
                    rec["watermark"] = {"payload": payload}
                except WavesmithError as e:  # too short or silent to carry the mark
                    rec["watermark"], rec["watermark_reason"] = False, str(e)
                    print(f"wavesmith: warning: {path.name} is not watermarked: {e}", file=sys.stderr)
            else:
                rec["watermark"] = False
            # written, read back for its mark and signed before it gets its name
            marked = payload if rec["watermark"] else None
            result = W.write_signed(path, clip, sample_rate, fmt, marked, model=model, checkpoint_hash=checkpoint_hash,
                                    assertions=assertions)
            check = result.pop("check")
            rec["c2pa"] = result
            if not result["signed"] and result["reason"] not in unsigned_reasons:
                unsigned_reasons.add(result["reason"])
                print(f"wavesmith: warning: {path.name}: {result['reason']}", file=sys.stderr)
            if check is not None:
                rec["watermark"]["verified"] = check["verified"]
                problem = W.check_problem(check, payload)
                if problem:
                    rec["watermark_reason"] = problem
                    print(f"wavesmith: warning: {path.name}: {problem}", file=sys.stderr)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            paths.append(path)
    return paths


def generate(
    run_or_checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int = 16,
    seconds: float | None = None,
    label: str | None = None,
    speaker: str | None = None,
    seed: int | None = None,
    temperature: float = 1.0,
    batch_size: int | None = None,
    format: str = "wav",
    device: str | None = None,
    prompt: str | os.PathLike | None = None,
    mel_from: str | os.PathLike | None = None,
    watermark: bool = True,
    checkpoint: str = "best",
    options: dict[str, Any] | None = None,
    progress: bool | None = None,
    trim: bool | None = None,
) -> list[Path]:
    """Sample ``n`` clips of ``seconds`` from a run, checkpoint or shipped model into ``out_dir``; returns the files.

    ``checkpoint`` picks a run's ``best.pt`` or its newest checkpoint (see :func:`load_model`).
    ``seconds=None`` means 2 s, or the model's longest clip if that is shorter (a WaveGAN window).
    ``options`` are sampler settings the model declares in ``sample_options`` (diffusion
    models: ``steps``, ``guidance``, ``sampler``); one it does not declare is refused.
    ``out_dir`` may exist, but no file in it is ever replaced: a folder that holds any of the
    names this run would write (or a ``generated.jsonl``) is refused before sampling, and a
    second run into a folder another run is writing fails at once (the folder is locked).
    ``progress`` shows a bar on stderr (default: when stderr is a terminal).
    ``trim`` cuts each file where its sound has died away (default: for models of one-shots,
    ``model.one_shots``); a watermarked file keeps at least the watermark's ``MIN_SECONDS``.
    """
    if n < 1 or (seconds is not None and not 0 < seconds <= MAX_SECONDS) or not 0 <= temperature < math.inf:
        raise WavesmithError(f"need -n >= 1, 0 < --seconds <= {MAX_SECONDS:g} and a finite --temperature >= 0")
    batch_size = batch_size or 1
    if batch_size < 1:
        raise WavesmithError(f"--batch-size must be at least 1, not {batch_size}")
    format = A.check_format(format)
    out = check_output_folder(out_dir)
    model, meta = load_model(run_or_checkpoint, device, checkpoint)
    if temperature == 0 and not model.greedy:
        raise WavesmithError(f"--temperature 0 (always the most likely value) is for models that sample step by step, "
                             f"like wavenet; {meta['model_name']} needs --temperature > 0")
    info = model.info
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - model.sample_options)
    if unknown:
        flags = ", ".join("--" + k for k in unknown)
        raise WavesmithError(f"{flags} cannot be used with a {meta['model_name']} model")

    if seconds is None:
        seconds = min(2.0, model.max_seconds or 2.0)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    fixed: dict[str, Any] = {}
    # "kick,snare" (or "all": every label) takes the labels in turn, one file each.
    names = (list(info.labels) if label == "all" else [x.strip() for x in label.split(",")]) if label else []
    label_ids = [info.label_id(x) for x in names]
    if speaker is not None:
        fixed["speaker"] = info.speaker_id(speaker)
    for key, path in (("prompt", prompt), ("mel_from", mel_from)):
        if path is not None:
            fixed[key] = torch.from_numpy(A.load(path, info.sample_rate, info.channels))[None].to(model.device)
    if not watermark:
        print("wavesmith: warning: --no-watermark: these files carry no watermark; do not pass them off as real "
              "recordings (the choice is recorded in generated.jsonl)", file=sys.stderr)
    settings = {"seconds": seconds, "temperature": temperature, "batch_size": batch_size, "format": format.lower(),
                "device": str(model.device), "prompt": str(prompt) if prompt else None,
                "mel_from": str(mel_from) if mel_from else None, "watermark": watermark,
                "trim": model.one_shots if trim is None else trim, **options}
    paths: list[Path] = []
    with _claim(out, n, format.lower()), _progress_bar(n, progress) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            call_seed = file_seed(seed, start)
            conditions = {k: (torch.full((b,), v, dtype=torch.int64, device=model.device) if isinstance(v, int)
                              else v.expand(b, *v.shape[1:])) for k, v in fixed.items()}
            if label_ids:
                ids = [label_ids[(start + j) % len(label_ids)] for j in range(b)]
                conditions["label"] = torch.tensor(ids, dtype=torch.int64, device=model.device)
            clips = model.sample(b, seconds, conditions or None, seed=call_seed, temperature=temperature, **options)
            records = [{"index": start + j, "model": meta["model_name"], "checkpoint": meta["path"],
                        "checkpoint_sha256": meta["sha256"], "step": meta["step"], "seed": call_seed,
                        "batch_index": j, "run_seed": seed, "label": names[(start + j) % len(names)] if names else None,
                        "speaker": speaker, "settings": settings}
                       for j in range(b)]
            shortest = round(W.MIN_SECONDS * info.sample_rate) if watermark else 0
            if clips.shape[-1] < shortest:  # silence after a short clip, so that it carries the mark
                clips = torch.nn.functional.pad(torch.as_tensor(clips), (0, shortest - clips.shape[-1]))
            lengths = None
            if model.one_shots if trim is None else trim:
                lengths = [max(shortest, A.sound_end(c, info.sample_rate)) for c in A.as_float32(clips)]
            paths += save_clips(clips, info.sample_rate, out, records, format=format, watermark=watermark,
                                model=meta["model_name"], checkpoint_hash=meta["sha256"], lengths=lengths)
            bar.update(b)
    return paths


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, or a one-line error when it cannot take a new set of files.

    Every command that writes marked files (generate, vocode, pitch, transfer) calls this
    before spending any time: a file where a folder should be, an unwritable folder, or
    one that already holds ``generated.jsonl``.
    """
    out = Path(out_dir)
    _check_writable(out)
    if (out / RECORDS).exists():
        raise WavesmithError(f"{out} already holds generated files ({RECORDS}); choose another --out")
    return out


def open_output_folder(out: Path, warnings: list[str]) -> None:
    """Make ``out`` (checked by :func:`check_output_folder`), then print ``warnings``.

    The warnings wait until nothing can fail any more, so that an error stays the only line.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WavesmithError(f"cannot make --out {out}: {e.strerror or e}") from None
    for warning in warnings:
        print(f"wavesmith: warning: {warning}", file=sys.stderr)


def _check_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot take files, before any sampling time is spent."""
    if out.exists() and not out.is_dir():
        raise WavesmithError(f"--out {out} is a file; give a folder")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise WavesmithError(f"cannot write to {out}: {existing} is not a writable folder")


@contextmanager
def _claim(out: Path, n: int, fmt: str) -> Iterator[None]:
    """Hold ``out`` for this run (:func:`wavesmith.files.hold_folder`: no lock file left behind).

    With the lock held, the folder is checked for every name this run would write, so a
    user's ``000.wav`` is never replaced and two runs never interleave their records. A
    folder this call made is removed again if the run fails before writing into it.
    """
    with hold_folder(out, f"another wavesmith run is writing to {out}; wait for it or choose another --out"):
        taken = sorted(p.name for p in out.iterdir() if p.name == RECORDS or _our_index(p.name, fmt) < n)
        if taken:
            raise WavesmithError(f"{out} already holds {taken[0]}; wavesmith never replaces files there: choose "
                                 "another --out (or an empty folder)")
        yield


def _our_index(name: str, fmt: str) -> float:
    """The index of a file named as this run names them (``007.wav``), else infinity."""
    stem, dot, ext = name.partition(".")
    return int(stem) if dot and ext == fmt and stem.isdigit() and name == f"{int(stem):03d}.{fmt}" else math.inf


@contextmanager
def _progress_bar(total: int, enabled: bool | None):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    bar = tqdm(total=total, unit="file", file=sys.stderr, disable=not show or total < 2, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
