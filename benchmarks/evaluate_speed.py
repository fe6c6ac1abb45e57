"""How long does ``wavesmith evaluate`` take on 1,000 one-second clips, classifier cached?

Builds a clip database from the real drum hits of /work/real-audio/drums (labelled by kit
piece, see evaluate_ordering.py), trains and caches its classifier (not timed), writes N
one-second clips (real hits from the held-out part, each with a little noise so nothing
is an exact copy) plus a generated.jsonl, then times ``evaluate()`` end to end (reading the
files, every metric with its calibration) a few times, without and with the HTML report.

    python benchmarks/evaluate_speed.py --json [--n 1000] [--repeats 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_ordering import REAL, SR, drum_label  # noqa: E402

from wavesmith import audio as A  # noqa: E402
from wavesmith.db import Database  # noqa: E402
from wavesmith.evaluate import evaluate  # noqa: E402
from wavesmith.evaluate.run import classifier_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="generated clips")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = [p for p in sorted((REAL / "drums").rglob("*")) if p.suffix.lower() in (".wav", ".flac", ".aiff")
                 and drum_label(p)]
        manifest = tmp / "manifest.csv"
        manifest.write_text("path,label\n" + "".join(f'"{p}",{drum_label(p)}\n' for p in paths))
        db = Database.create(tmp / "db", sample_rate=SR)
        db.add([], manifest=manifest, progress=False)
        t = time.monotonic()
        _, info = classifier_for(db)
        train_s = time.monotonic() - t
        held = [c for c in db.clips() if c.split != "train"]
        rng = np.random.default_rng(0)
        gen = tmp / "gen"
        lines = []
        for i in range(args.n):
            c = held[i % len(held)]
            x = np.zeros((1, SR), np.float32)
            a = db.audio(c.id)[:, :SR]
            x[:, : a.shape[1]] = a
            x += 1e-3 * rng.standard_normal(x.shape).astype(np.float32)
            A.write(gen / f"{i:04d}.wav", x, SR)
            lines.append(json.dumps({"file": f"{i:04d}.wav", "label": c.label}))
        (gen / "generated.jsonl").write_text("\n".join(lines) + "\n")
        times, times_report = [], []
        for _ in range(args.repeats):
            t = time.monotonic()
            res = evaluate(gen, db=db, json_path=tmp / "e.json")
            times.append(time.monotonic() - t)
        for _ in range(max(1, args.repeats // 2)):
            t = time.monotonic()
            evaluate(gen, db=db, json_path=tmp / "e.json", report_path=tmp / "r.html")
            times_report.append(time.monotonic() - t)
        out = {"benchmark": "evaluate_speed", "clips": args.n, "clip_seconds": 1.0, "sample_rate": SR,
               "database_clips": len(db), "reference_clips": res["n_reference"], "train_clips": res["n_train"],
               "torch_threads": torch.get_num_threads(),
               "classifier_train_seconds": round(train_s, 1), "classifier_test_accuracy": info["test_accuracy"],
               "seconds": [round(x, 1) for x in times], "median_seconds": round(statistics.median(times), 1),
               "seconds_with_report": [round(x, 1) for x in times_report],
               "report_mb": round((tmp / "r.html").stat().st_size / 1e6, 2),
               "fd_logmel": res["fd_logmel"]["value"], "classifier_accuracy": res["classifier_accuracy"]["value"]}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
