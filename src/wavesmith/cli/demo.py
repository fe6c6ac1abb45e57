"""``wavesmith demo``: the main job on the bundled clips (see :mod:`wavesmith.demo`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="generate from the shipped drums model, fine-tune it on the bundled hits, compare both",
        description="The main job end to end: drum hits from the shipped 'drums' model, a database of the "
        "bundled hits, a short CPU fine-tuning of the shipped model on them, generated (marked) files from it, "
        "and both sets evaluated side by side (OUT/report.html). Reuses OUT when run again.",
    )
    p.add_argument("--out", default="demo", help="folder for the database, run and files (default: ./demo)")
    p.add_argument("--model", default="mel-diffusion",
                   help="mel-diffusion (default: fine-tune the shipped drums model), or wavegan / wavenet to train "
                   "from scratch")
    p.add_argument("--minutes", type=float, default=2.0,
                   help="training time on this machine (default: 2; 0 skips)")
    p.add_argument("-n", type=int, default=32, help="files to generate per model (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for training and generation")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.demo import run_demo

    run_demo(args.out, model=args.model, minutes=args.minutes, n=args.n, seed=args.seed)
    return 0
