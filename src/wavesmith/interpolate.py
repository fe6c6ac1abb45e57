"""Latent morphs: a row of clips that turns one generated sound into another.

A model with a latent space (WaveGAN) names each generated clip by its latent ``z``; the
clips of latents on a path from ``z(seed_a)`` to ``z(seed_b)`` morph between the two
sounds. The ends decode exactly the latents ``wavesmith generate --seed`` uses for those
seeds (same label and temperature, at the full window length), so they are those clips up
to float rounding between batched and single convolutions (a few 16-bit steps).

The path is spherical by default (slerp, Shoemake 1985; White, "Sampling Generative
Networks", 2016): WaveGAN's latents are uniform in a 100-d cube, so nearly all of them lie
near one radius, and the straight line between two of them passes closer to the centre
than any training latent, where the generator makes duller, quieter sounds. Slerp keeps
the radius and turns the direction. ``method="linear"`` gives the straight line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import torch

from wavesmith.errors import WavesmithError
from wavesmith.models.base import GenerativeModel

Method = Literal["slerp", "linear"]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` ``(D,)`` at fractions ``t`` ``(S,)``: ``(S, D)``.

    Follows the great circle between their directions while blending their norms
    linearly; falls back to the straight line when they are (anti-)parallel.
    """
    a, b, t = a.double(), b.double(), t.double()[:, None]
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return lerp(a, b, t[:, 0]).float()
    cos = torch.clamp(torch.dot(a / na, b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega) < 1e-6:
        return lerp(a, b, t[:, 0]).float()
    direction = (torch.sin((1 - t) * omega) * (a / na) + torch.sin(t * omega) * (b / nb)) / torch.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).float()


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation between ``a`` and ``b`` at fractions ``t``: ``(S, D)``."""
    t = t.to(a.dtype)[:, None]
    return (1 - t) * a + t * b


def morph_latents(
    model: GenerativeModel, seed_a: int, seed_b: int, steps: int, method: Method = "slerp", temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` latents from ``seed_a`` to ``seed_b`` (both included) and their fractions ``t``."""
    if steps < 2:
        raise WavesmithError(f"--steps must be at least 2 (the two ends), not {steps}")
    if method not in ("slerp", "linear"):
        raise WavesmithError(f"unknown interpolation {method!r}; use slerp or linear")
    za = model.latent(1, seed_a, temperature, device="cpu")[0]
    zb = model.latent(1, seed_b, temperature, device="cpu")[0]
    t = torch.linspace(0.0, 1.0, steps)
    z = slerp(za, zb, t) if method == "slerp" else lerp(za, zb, t)
    z[0], z[-1] = za, zb  # the ends are exactly the seeds' latents, not a rounding of them
    return z, t


def interpolate(
    run: str | os.PathLike,
    seed_a: int,
    seed_b: int,
    steps: int,
    out_dir: str | os.PathLike,
    label: str | None = None,
    to_label: str | None = None,
    method: Method = "slerp",
    temperature: float = 1.0,
    format: str = "wav",
    device: str | None = None,
    watermark: bool = True,
    batch_size: int = 16,
) -> list[Path]:
    """Write ``steps`` clips morphing from the sound of ``seed_a`` to that of ``seed_b``.

    ``run`` is a run directory or checkpoint of a model with a latent space (WaveGAN).
    A conditional model keeps one ``label`` along the path (by name); without one it uses
    the label that ``generate --seed SEED_A`` draws. With ``to_label`` the path also blends
    the two classes' embeddings linearly, from ``label`` to ``to_label``. Files are numbered in path order and
    written, watermarked and signed like ``generate``'s, with the fraction ``t`` of each
    clip recorded in ``generated.jsonl``.
    """
    from wavesmith.generate import RECORDS, load_model, save_clips

    if (Path(out_dir) / RECORDS).exists():
        raise WavesmithError(f"{out_dir} already holds generated files ({RECORDS}); choose another --out")
    model, meta = load_model(run, device=device)
    if not model.latent_space:
        raise WavesmithError(
            f"{run} holds a {model.name} model, which has no latent space to morph; "
            "interpolate needs a WaveGAN run (--model wavegan)"
        )
    z, t = morph_latents(model, seed_a, seed_b, steps, method, temperature)
    if not watermark:
        print(
            "wavesmith: warning: --no-watermark: these files carry no watermark; do not pass them off as real "
            "recordings (the choice is recorded in generated.jsonl)",
            file=sys.stderr,
        )
    labels = _path_labels(model, label, seed_a, steps)
    if to_label is not None:
        if labels is None:
            raise WavesmithError("--to-label needs a model trained with labels")
        start = torch.nn.functional.one_hot(labels, len(model.info.labels)).float()
        end = torch.nn.functional.one_hot(torch.tensor(model.info.label_id(to_label)), len(model.info.labels))
        labels = (1 - t[:, None]) * start + t[:, None] * end.float()
    clips = [
        model.decode(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size]).float().cpu()
        for i in range(0, steps, batch_size)
    ]
    settings = {"method": method, "temperature": temperature, "format": format.lower(), "device": str(model.device)}
    settings["watermark"] = watermark
    label_name = None if labels is None else model.info.labels[int(labels[0].argmax() if to_label else labels[0])]
    common = {
        "model": meta["model_name"],
        "checkpoint": meta["path"],
        "checkpoint_sha256": meta["sha256"],
        "step": meta["step"],
        "seed_a": seed_a,
        "seed_b": seed_b,
        "label": label_name,
        "to_label": to_label,
        "settings": settings,
    }
    records = [{"index": i, "t": round(float(ti), 6), **common} for i, ti in enumerate(t)]
    return save_clips(
        torch.cat(clips),
        model.info.sample_rate,
        out_dir,
        records,
        format=format,
        watermark=watermark,
        model=meta["model_name"],
        checkpoint_hash=meta["sha256"],
    )


def _path_labels(model: GenerativeModel, label: str | None, seed_a: int, steps: int) -> torch.Tensor | None:
    if "label" not in model.accepts:
        if label is not None:
            model.info.label_id(label)  # the one-line error for a model without labels
        return None
    if label is not None:
        return torch.full((steps,), model.info.label_id(label), dtype=torch.long)
    return model.sample_labels(1, seed_a).expand(steps)  # the label generate draws for seed_a
