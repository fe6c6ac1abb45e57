"""``wavesmith demo``: the main job on the bundled clips (see :mod:`wavesmith.demo`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="build a database from the bundled drum hits, train briefly, generate files",
        description="The main job end to end on the bundled clips: database, a short CPU training, "
        "generated (marked) files and their evaluation. Reuses OUT when run again.",
    )
    p.add_argument("--out", default="demo", help="folder for the database, run and files (default: ./demo)")
    p.add_argument("--model", default="wavegan", help="model to train (default: wavegan)")
    p.add_argument("--minutes", type=float, default=2.5, help="training time on this machine (default: 2.5; 0 skips)")
    p.add_argument("-n", type=int, default=6, help="files to generate (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="seed for training and generation")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.demo import run_demo

    run_demo(args.out, model=args.model, minutes=args.minutes, n=args.n, seed=args.seed)
    return 0
