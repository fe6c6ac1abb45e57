"""``wavesmith evaluate``: score a folder of generated clips against a database or a reference folder."""

from __future__ import annotations

import sys


def register(sub) -> None:
    """Add ``evaluate`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "evaluate",
        help="score generated audio against a database's held-out split (or a reference folder)",
        description="Compute metrics of GENERATED_DIR against the database's held-out split, each printed "
        "beside its calibration: the same metric for real held-out clips (the floor), white noise and silence.",
    )
    p.add_argument("generated_dir", metavar="GENERATED_DIR", help="folder of audio files (and generated.jsonl)")
    p.add_argument("--db", metavar="DB", help="clip database to compare with")
    p.add_argument("--reference", metavar="DIR", help="compare with a folder of real clips instead (no database)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"),
                   help="database split to compare with (default: test)")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument("--reference-seconds", type=float, metavar="S",
                   help="compare with each real clip's first S seconds only (reference, floor and training clips): "
                   "like with like for models that make the first S seconds of sounds, such as mel-diffusion's "
                   "one-shots (default: up to 30 s of each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration noise and subsets")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.evaluate import evaluate, format_table

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    result = evaluate(args.generated_dir, db=args.db, reference=args.reference, split=args.split,
                      json_path=args.json, report_path=args.report, log=log, seed=args.seed,
                      reference_seconds=args.reference_seconds)
    clf = result["classifier"]
    if clf.get("available"):
        acc = clf["test_accuracy"]
        print(f"classifier: {len(clf['labels'])} labels, test accuracy "
              f"{'-' if acc is None else f'{acc:.3f}'}{' (cached)' if clf['cached'] else ''}")
    first = f", their first {result['reference_seconds']:g} s" if result.get("reference_seconds") else ""
    print(f"{result['n_generated']} generated clips; reference: {result['n_reference']} clips{first}; "
          f"real floor: {result['floor_source']} ({result['n_floor']} clips)")
    print(format_table(result))
    per_label = (result.get("classifier_accuracy") or {}).get("per_label")
    if per_label:
        print("accuracy per requested label: " + ", ".join(
            f"{k} {r['value']:.2f}" + (f" (taken for {r['taken_for']} {r['taken_for_share']:.0%})"
                                       if r["taken_for"] else "") for k, r in per_label.items()))
    mem = result["memorization"]
    if mem.get("note"):
        print(f"memorization not checked: {mem['note']}")
    elif mem["flagged"]:
        shown = ", ".join(mem["flagged"][:10]) + (" ..." if len(mem["flagged"]) > 10 else "")
        print(f"likely copies of training clips ({len(mem['flagged'])}): {shown}")
    else:
        print("no likely copies of training clips")
    for what, path in (("JSON", args.json), ("report", args.report)):
        if path:
            print(f"{what}: {path}")
    return 0
