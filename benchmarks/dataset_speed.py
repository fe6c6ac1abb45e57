"""Throughput of :class:`wavesmith.db.ClipDataset`: one-second random crops per second, one process.

    python benchmarks/dataset_speed.py --json [--clips 400] [--batch-size 64]

Measures items read by indexing, batches through a ``DataLoader`` (``num_workers=0``,
default collate), and batches built in place by ``ClipDataset.batch`` (a ``BatchSampler``
with ``batch_size=None``); median of ``--repeats`` passes over the dataset.
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
import soundfile as sf
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=400, help="clips of 3 s at 16 kHz in the database")
    ap.add_argument("--crop", type=int, default=16000, help="crop length in samples (default: 1 s)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    from wavesmith.db import ClipDataset, Database

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.clips):
            seconds = 0.5 if i % 10 == 0 else 3.0  # some clips shorter than the crop: padding
            x = rng.uniform(-0.5, 0.5, (int(16000 * seconds), 1)).astype(np.float32)
            sf.write(str(src / f"{'ab'[i % 2]}{i:05d}.wav"), x, 16000)
        db = Database.create(Path(tmp) / "db", split_ratios="1,0,0")
        db.add([src], progress=False)
        ds = ClipDataset(db, split="train", crop_samples=args.crop, train=True, seed=0)

        def by_index() -> float:
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            return len(ds) / (time.perf_counter() - t0)

        def by_loader() -> float:
            loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=0)
            t0 = time.perf_counter()
            n = sum(b["audio"].shape[0] for b in loader)
            return n / (time.perf_counter() - t0)

        def by_batched_loader() -> float:
            from torch.utils.data import BatchSampler, RandomSampler

            sampler = BatchSampler(RandomSampler(ds), args.batch_size, drop_last=False)
            loader = torch.utils.data.DataLoader(ds, batch_size=None, sampler=sampler, num_workers=0)
            t0 = time.perf_counter()
            n = sum(b["audio"].shape[0] for b in loader)
            return n / (time.perf_counter() - t0)

        by_index(), by_loader(), by_batched_loader()  # warm the page cache and the memory map
        index_rates = [by_index() for _ in range(args.repeats)]
        loader_rates = [by_loader() for _ in range(args.repeats)]
        batched_rates = [by_batched_loader() for _ in range(args.repeats)]
        db.close()
    out = {
        "benchmark": "dataset_speed",
        "clips": args.clips,
        "crop_samples": args.crop,
        "crops_per_second_index": round(statistics.median(index_rates)),
        "crops_per_second_loader": round(statistics.median(loader_rates)),
        "crops_per_second_batched_loader": round(statistics.median(batched_rates)),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
