"""The main job, end to end on the bundled clips: database, training, generation, evaluation.

``wavesmith demo`` is what a newcomer runs first (``bash scripts/demo.sh``). It must finish
in a few minutes on a 2-core CPU, so it trains a small model briefly: the point is to show
every stage working on real recordings and where its outputs are, not to make good audio.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from wavesmith.errors import WavesmithError


def run_demo(
    out: str | Path = "demo",
    model: str = "wavegan",
    minutes: float = 2.5,
    n: int = 6,
    seed: int = 0,
    log=print,
) -> dict:
    """Build ``out/db`` from the bundled clips, train ``model`` for ``minutes``, generate ``n`` files.

    Returns a summary dict with the paths it wrote. An existing ``out`` is reused: the
    database is extended (nothing is decoded twice) and the training run resumed.
    """
    from wavesmith.db import Database, bundled_clips_dir

    out = Path(out)
    if not 0 <= minutes < math.inf or n < 1 or not 0 <= seed < 2**32:
        raise WavesmithError("need --minutes >= 0 (finite), -n >= 1 and a --seed in [0, 2^32)")
    if out.exists() and not out.is_dir():
        raise WavesmithError(f"--out {out} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WavesmithError(f"cannot make {out}: {e.strerror or e}") from None
    t0 = time.monotonic()
    db_path = out / "db"
    db = Database.open(db_path) if db_path.exists() else Database.create(db_path, sample_rate=16000, channels=1)
    log(f"[1/4] database {db_path} from the bundled clips in {bundled_clips_dir()}")
    db.add([bundled_clips_dir()], label_from="parent")
    info = db.info()
    log(
        f"      {info['clips']} clips, {info['hours'] * 3600:.1f} s of audio, "
        f"labels: {', '.join(f'{k} ({v})' for k, v in info['labels'].items())}"
    )
    summary = {"db": str(db_path), "info": info}
    if minutes <= 0:
        return summary
    summary.update(_train_and_generate(db_path, out, model, minutes, n, seed, log))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    log(f"done in {summary['seconds']:.0f} s; summary in {out / 'summary.json'}")
    return summary


# A WaveGAN small enough to make visible progress in two CPU minutes on 48 drum hits:
# d=16 instead of the paper's 64 (1/16 of the weights), 16384-sample window (about 1 s).
DEMO_SETS = {
    "wavegan": ["model_dim=16", "batch_size=16", "workers=0", "warmup_steps=0", "ema_decay=0.99",
                "log_every=5", "valid_every=50", "checkpoint_every=50", "preview_every=50"],
    "wavenet": ["layers=10", "stacks=1", "residual_channels=32", "gate_channels=64", "skip_channels=32",
                "batch_size=8", "workers=0", "warmup_steps=0", "log_every=10", "valid_every=100",
                "checkpoint_every=100", "preview_every=100"],
}


def _train_and_generate(db_path: Path, out: Path, model: str, minutes: float, n: int, seed: int, log) -> dict:
    from wavesmith.evaluate import evaluate
    from wavesmith.generate import generate
    from wavesmith.train import train

    run = out / f"run-{model}"
    log(f"[2/4] training {model} for {minutes:g} min on this machine into {run}")
    # The time limit ends training; steps (about 1.3 a second here, counted from where a
    # resumed run stands) only bounds the progress bar.
    done = 0
    if run.exists():
        from wavesmith.train import checkpoint

        found = checkpoint.latest(run, warn=log)
        done = int(found[0]["step"]) if found else 0
    sets = [*DEMO_SETS.get(model, []), f"steps={done + max(1, round(minutes * 80))}", f"seed={seed}"]
    result = train(db_path, model, run, sets=sets, time_limit=minutes * 60, resume=run.exists(), progress=True)
    log(f"      stopped at step {result.get('step')} ({result.get('stopped')})")

    gen_dir = out / f"generated-{model}"
    if gen_dir.exists():  # generate refuses to mix two sets of files in one folder
        for f in gen_dir.iterdir():
            f.unlink()
        gen_dir.rmdir()
    log(f"[3/4] generating {n} one-second files (watermarked, C2PA-signed) into {gen_dir}")
    files = generate(run, gen_dir, n=n, seconds=1.0, seed=seed)
    for f in files:
        log(f"      {f}")

    report = out / f"report-{model}.html"
    log(f"[4/4] evaluating against the database's test split; report in {report}")
    metrics = evaluate(gen_dir, db=db_path, split="test", json_path=out / f"metrics-{model}.json", report_path=report)
    fd = metrics.get("fd_logmel", {})
    if fd:
        log(
            f"      Frechet distance on log-mel statistics: {fd.get('value'):.3g} "
            f"(real test clips: {fd.get('real_floor'):.3g}, white noise: {fd.get('noise'):.3g}; lower is better)"
        )
    log("      a few CPU minutes cannot train a good model: train longer, on a GPU, for sounds worth keeping")
    return {"run": str(run), "generated": [str(f) for f in files], "report": str(report), "step": result.get("step")}
