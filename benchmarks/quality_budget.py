"""Quality at equal compute: each model trained for the same CPU minutes on the same database.

    python benchmarks/quality_budget.py --json --minutes M --data DIR [--set drums|speech]
        [--models wavenet,wavegan,mel-diffusion,diffwave] [--n 64] [--seeds K] [--work FOLDER]
        [--setting KEY=VALUE ...]

``DIR`` is laid out by ``shared/tools/get-real-audio``. ``--set drums`` builds a 16 kHz
database from every Hydrogen kit's hits labelled by kit piece (``scripts/ship/
hydrogen_manifest.py``); ``--set speech`` from the 8 kHz English prompts (no labels). Each
model in turn trains for ``M`` minutes (``train --time``) with settings sized for a CPU,
then generates ``--n`` clips of one second (or its window; labels in turn) and is
evaluated against the test split: ``fd_logmel``, ``fd_classifier``, Inception Score,
classifier accuracy on the requested labels, memorization; ``first_second`` holds
``fd_logmel`` (value, floor, noise) and memorization again against the real clips' first
second only (``evaluate --reference-seconds 1``: the real clips run up to 30 s, the
generated ones a second). ``--seeds K`` generates and evaluates K sets of ``--n`` clips
(seeds 0..K-1) and reports each set's figures and their medians: the frame statistics
behind ``fd_logmel`` weigh a clip by its length, so a few long clips move them, and one
set of clips is a noisy measurement. Generation speed is timed
on the same clips, in multiples of real time. Prints one JSON object (``--json``) or a table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from wavesmith import models as registry
from wavesmith.db import Database
from wavesmith.evaluate import evaluate
from wavesmith.generate import generate
from wavesmith.train import train

HERE = Path(__file__).resolve().parent
# Settings for a CPU budget of minutes (the engine's own defaults suit GPUs and hours).
SETS = {
    "wavenet": ["layers=20", "stacks=2", "residual_channels=64", "gate_channels=128", "skip_channels=64",
                "batch_size=8", "crop=8000", "conditioning=label"],
    "wavegan": ["model_dim=32", "batch_size=16", "warmup_steps=0"],
    # The first level at least as wide as the 80 mel bins: at 64 channels the samples keep a speckle of
    # their sampling noise (benchmarks/mel_texture.py) and 30 minutes on real drums gave first-second
    # fd_logmel 1.85x the floor at accuracy 0.79; at 96, 1.6x at 0.89 (README, "Figures").
    "mel-diffusion": ["channels=96", "mults=1,1,2", "seconds=1.0", "batch_size=16"],
    "diffwave": ["batch_size=8"],
}
COMMON = ["workers=0", "log_every=25", "valid_every=500", "checkpoint_every=500", "preview_every=0"]
UNLABELLED = {"wavenet": "conditioning=none"}


def build_db(data: Path, which: str, folder: Path) -> Path:
    db_path = folder / "db"
    if which == "drums":
        spec = importlib.util.spec_from_file_location("hm", HERE.parent / "scripts" / "ship" / "hydrogen_manifest.py")
        hm = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hm)
        rows = [r for kit in sorted(p.parent for p in (data / "drums").glob("*/drumkit.xml")) for r in hm.rows(kit)]
        manifest = folder / "manifest.csv"
        manifest.write_text("path,label\n" + "".join(f'"{p}",{label}\n' for p, label, _ in rows))
        db = Database.create(db_path, sample_rate=16000)
        db.add([], manifest=manifest, progress=False)
    else:
        db = Database.create(db_path, sample_rate=16000)
        db.add([data / "speech-en"], label_from="none", progress=False)
    db.close()
    return db_path


def _generated_set(model: str, run: Path, work: Path, db_path: Path, n: int, labelled: bool, seed: int) -> dict:
    """``n`` clips from ``run`` with ``seed``, evaluated against the test split (whole clips and first seconds)."""
    out = work / f"gen-{model}" if seed == 0 else work / f"gen-{model}-seed{seed}"
    if out.exists():
        shutil.rmtree(out)
    t = time.monotonic()
    files = generate(run, out, n=n, seconds=None if model == "wavegan" else 1.0, seed=seed,
                     label="all" if labelled else None, batch_size=16, watermark=False)
    gen_s = time.monotonic() - t
    import soundfile as sf

    audio_s = sum(sf.info(str(f)).duration for f in files)
    metrics = evaluate(out, db=db_path, split="test")
    row = {"seed": seed, "generate_x_realtime": round(audio_s / gen_s, 2)}
    for key in ("fd_logmel", "fd_classifier", "inception_score", "classifier_accuracy", "memorization"):
        if key in metrics:
            row[key] = metrics[key].get("value")
            if key == "fd_logmel":
                row["fd_logmel_real_floor"] = metrics[key].get("real_floor")
                row["fd_logmel_noise"] = metrics[key].get("noise")
    # Like with like: the generated clips are (about) one second, the real ones up to 30 s, so
    # whole clips weigh long decays and loops by their length. Also against their first second.
    first = evaluate(out, db=db_path, split="test", reference_seconds=1.0)
    fd = first["fd_logmel"]
    row["first_second"] = {"fd_logmel": fd.get("value"), "fd_logmel_real_floor": fd.get("real_floor"),
                           "fd_logmel_noise": fd.get("noise"), "memorization": first["memorization"].get("value")}
    return row


def run_one(model: str, db_path: Path, work: Path, minutes: float, n: int, labelled: bool, seeds: int = 1,
            extra: list[str] = ()) -> dict:
    sets = [*COMMON, *SETS.get(model, []), "steps=10000000", *extra]
    if not labelled and model in UNLABELLED:
        sets = [s for s in sets if not s.startswith("conditioning=")] + [UNLABELLED[model]]
    run = work / f"run-{model}"
    summary = train(db_path, model, run, sets=sets, time_limit=minutes * 60, progress=False)
    row = {"model": model, "steps": summary.get("step"), "train_minutes": minutes}
    results = [_generated_set(model, run, work, db_path, n, labelled, seed) for seed in range(seeds)]
    row["generate_x_realtime"] = results[0].pop("generate_x_realtime")
    row.update({k: dict(v) if isinstance(v, dict) else v for k, v in results[0].items() if k != "seed"})
    if seeds > 1:
        row["seeds"] = results
        for key in ("fd_logmel", "classifier_accuracy"):
            values = [r[key] for r in results if r.get(key) is not None]
            row[f"{key}_median"] = statistics.median(values) if values else None
        row["first_second"]["fd_logmel_median"] = statistics.median(r["first_second"]["fd_logmel"] for r in results)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="training minutes per model (default 30)")
    ap.add_argument("--data", type=Path, default=Path("/work/real-audio"), help="get-real-audio folder")
    ap.add_argument("--set", dest="which", choices=["drums", "speech"], default="drums")
    ap.add_argument("--models", default="wavenet,wavegan,mel-diffusion,diffwave")
    ap.add_argument("--n", type=int, default=64, help="clips generated per model and seed")
    ap.add_argument("--seeds", type=int, default=1, help="sets of --n clips per model (seeds 0..K-1); medians reported")
    ap.add_argument("--setting", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a training setting for every model, after the benchmark's own (e.g. decay_steps=5500)")
    ap.add_argument("--work", type=Path, help="keep databases, runs and clips here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    wanted = [m for m in args.models.split(",") if m]
    missing = [m for m in wanted if m not in registry.names()]
    if missing:
        print(f"quality_budget: not registered here, skipped: {', '.join(missing)}", file=sys.stderr)
    work = args.work or Path(tempfile.mkdtemp(prefix="wavesmith-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "db" if (work / "db").exists() else build_db(args.data, args.which, work)
    labelled = bool(Database.open(db_path).labels)
    rows = [run_one(m, db_path, work, args.minutes, args.n, labelled, args.seeds, args.sets)
            for m in wanted if m not in missing]
    result = {"set": args.which, "minutes": args.minutes, "n": args.n, "seeds": args.seeds, "settings": args.sets,
              "models": rows, "work": str(work)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for r in rows:
            print("  ".join(f"{k}={v}" for k, v in r.items()))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
