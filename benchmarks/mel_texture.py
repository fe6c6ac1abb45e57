"""Do a mel-diffusion model's spectrograms have the texture of real ones?

    python benchmarks/mel_texture.py --json --model RUN|NAME --db DB [--split valid] [--per-label 8] [--seed 0]

Samples ``--per-label`` windows of log-mel frames per label with the model's own sampling
defaults (no vocoder: what the diffusion itself makes) and reads the same window of the
split's real clips of that label. For each set, per window, over the bins within 40 dB of the
window's loudest bin:

- ``roughness``: the mean absolute change of the log-mel (natural log) from one frame to the
  next; a sustained note is smooth (real notes about 0.1), a model that leaves part of its sampling noise
  in the frames is speckled (well above 1), which the vocoder turns into a hiss between the
  harmonics;
- ``loud_share``: the share of the window's bins within those 40 dB; speckle makes a few bins
  stand far above the rest, so the share falls.

Medians per label and over all windows; ``roughness_ratio`` is generated over real (1 = real).
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch

from wavesmith.db import Database
from wavesmith.generate import load_model

RANGE_DB = 40.0


def texture(frames: torch.Tensor) -> list[tuple[float, float]]:
    """``(roughness, loud_share)`` of each window ``(n_mels, frames)`` of natural-log mel magnitudes."""
    out = []
    for x in frames.double():
        loud = x > x.max() - RANGE_DB / (20 / np.log(10))
        both = loud[:, 1:] & loud[:, :-1]
        step = (x[:, 1:] - x[:, :-1]).abs()
        out.append((float(step[both].mean()) if both.any() else float("nan"), float(loud.double().mean())))
    return out


def _medians(rows: list[tuple[float, float]]) -> dict[str, float]:
    return {"roughness": round(statistics.median(r for r, _ in rows), 3),
            "loud_share": round(statistics.median(s for _, s in rows), 3), "windows": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="mel-diffusion run folder, checkpoint or shipped name")
    ap.add_argument("--db", required=True, help="the database the model learned (its labels and real clips)")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--per-label", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model, _ = load_model(args.model)
    c = model.config
    labels = list(model.info.labels) or [None]
    result = {"model": args.model, "db": args.db, "split": args.split, "per_label": {}}
    every_gen, every_real = [], []
    with Database.open(args.db) as db:
        for k, name in enumerate(labels):
            cond = {"label": k} if name is not None else {}
            gen = texture(model.sample_frames(args.per_label, cond, seed=args.seed + k))
            clips = [cl for cl in db.clips(args.split) if name is None or cl.label == name][: 4 * args.per_label]
            real_frames = torch.cat([model.to_frames(torch.as_tensor(np.asarray(db.audio(cl.id), np.float32)[None, :1]))
                                     for cl in clips])  # each cut or padded to the model's window
            real = texture(real_frames * c.mel_scale + c.mel_mean)
            every_gen += gen
            every_real += real
            result["per_label"][name or "all"] = {"generated": _medians(gen), "real": _medians(real)}
    result["generated"], result["real"] = _medians(every_gen), _medians(every_real)
    result["roughness_ratio"] = round(result["generated"]["roughness"] / result["real"]["roughness"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, r in result["per_label"].items():
            print(f"{name:12s} roughness {r['generated']['roughness']:.3f} (real {r['real']['roughness']:.3f})  "
                  f"loud share {r['generated']['loud_share']:.3f} (real {r['real']['loud_share']:.3f})")
        print(f"all          roughness ratio {result['roughness_ratio']}")


if __name__ == "__main__":
    main()
