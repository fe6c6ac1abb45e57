"""Engine overhead per training step against a bare PyTorch loop on the same model and data.

Both loops draw batches of the same size from a ``ClipDataset`` of the same database
through a DataLoader and call ``model.train_step``. The bare loop's ``update`` is only
``zero_grad; backward; step``; the engine adds what it owns: the learning-rate schedule,
gradient clipping, EMA of the weights, the stop-signal check and a ``metrics.jsonl`` line
every step (``log_every=1``, the worst case; validation, previews and checkpoints are off
here). The two loops alternate step by step, so that load from other processes hits both
alike; step times are medians over the ``--steps`` steps after ``--warmup``.

    python benchmarks/engine_overhead.py --json [--model wavenet] [--set model.layers=10] [--steps 30]

Prints one JSON object: median seconds per step of each loop, and ``overhead`` = engine / bare - 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wavesmith import config as C
from wavesmith import models
from wavesmith.models.base import DataInfo
from wavesmith.train.config import TrainConfig
from wavesmith.train.data import to_device
from wavesmith.train.engine import session


def make_db(root: Path, clips: int, rate: int):
    """A database of noisy tones (enough clips that neither loop repeats an epoch often)."""
    import soundfile as sf

    from wavesmith.db import Database

    rng = np.random.default_rng(0)
    src = root / "src"
    src.mkdir(parents=True)
    for i in range(clips):
        t = np.arange(rate) / rate
        x = 0.3 * np.sin(2 * np.pi * (100 + 13 * i) * t) + 0.02 * rng.standard_normal(rate)
        sf.write(str(src / f"c{i:03d}.wav"), x.astype(np.float32), rate)
    db = Database.create(root / "db", sample_rate=rate, split_ratios=(0.9, 0.1, 0.0))
    db.add([src], workers=1, progress=False)
    return db


def bare_stepper(db, cls, mc, tc: TrainConfig, device: torch.device):
    """The plainest loop that runs the same model on the same data, one step per call."""
    from wavesmith.db import ClipDataset

    torch.manual_seed(tc.seed)
    info = DataInfo(db.sample_rate, db.channels, tuple(db.labels), tuple(db.speakers), tuple(db.languages))
    model = cls(mc, info).to(device)
    opts = model.configure_optimizers()
    ds = ClipDataset(db, "train", crop_samples=model.crop_samples, train=True, seed=tc.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=tc.batch_size, shuffle=True, drop_last=True,
                                         num_workers=tc.workers, persistent_workers=tc.workers > 0)
    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            return to_device(next(it), device)
        except StopIteration:
            it = iter(loader)
            return to_device(next(it), device)

    def update(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    step = 0

    def one_step():
        nonlocal step
        model.train_step(next_batch, update, step)
        step += 1

    return one_step


def timed(fn, device: torch.device) -> float:
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wavenet")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from wavesmith.device import pick_device

    device = pick_device(args.device)
    cls = models.get(args.model)
    sets = ["workers=0", "batch_size=8", *args.sets]
    resolved = C.resolve({"model": cls.Config(), "train": TrainConfig()}, None, sets)
    mc, tc = resolved["model"], resolved["train"]
    bare, engine = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = make_db(root, clips=64, rate=16000)
        bare_step = bare_stepper(db, cls, mc, tc, device)
        engine_sets = [*sets, f"steps={args.steps + args.warmup}", "log_every=1", "valid_every=0", "preview_every=0"]
        with session(root / "db", args.model, root / "run", sets=engine_sets, device=args.device,
                     progress=False) as loop:
            loop.begin()
            # Alternate the two loops step by step, so that load from other processes hits both alike.
            for i in range(args.warmup + args.steps):
                b, e = timed(bare_step, device), timed(loop.step_once, device)
                if i >= args.warmup:
                    bare.append(b)
                    engine.append(e)
            loop.log.close()
        params = sum(p.numel() for p in loop.model.parameters())
        db.close()
    b, e = statistics.median(bare), statistics.median(engine)
    result = {
        "benchmark": "engine_overhead", "model": args.model, "parameters": params, "device": str(device),
        "batch_size": tc.batch_size, "workers": tc.workers, "steps_timed": len(bare),
        "bare_s_per_step": round(b, 5), "engine_s_per_step": round(e, 5), "overhead": round(e / b - 1, 4),
        "target": "< 0.05", "sets": sets, "torch": torch.__version__,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
