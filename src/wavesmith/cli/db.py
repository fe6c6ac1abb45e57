"""``wavesmith db ...``: create, fill and inspect clip databases (see :mod:`wavesmith.db`)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    """Add ``wavesmith db`` and its sub-commands to the ``wavesmith`` parser."""
    p = sub.add_parser("db", help="create, fill and inspect clip databases", description="Clip databases.")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    c = dsub.add_parser("create", help="make an empty database", description="Make an empty clip database.")
    c.add_argument("db", metavar="DB", help="folder to create")
    c.add_argument("--sample-rate", type=int, default=16000, help="rate every clip is stored at (default 16000)")
    c.add_argument("--channels", type=int, default=1, help="channels every clip is stored with (default 1)")
    c.add_argument(
        "--split-ratios", default="0.8,0.1,0.1", help="train,valid,test shares (default 0.8,0.1,0.1)"
    )
    c.set_defaults(func=_create)

    a = dsub.add_parser(
        "add",
        help="decode folders/files/manifests into the database",
        description="Decode audio files into the database. Folders are walked recursively; files already "
        "stored (same path, size and mtime) are skipped; identical audio is stored once; bad inputs are "
        "recorded (see `db errors`) and never stop the run.",
    )
    a.add_argument("db", metavar="DB")
    a.add_argument("sources", metavar="SOURCE", nargs="*", help="audio files or folders")
    a.add_argument("--manifest", metavar="FILE", help=".csv or .jsonl with a path column and any of "
                   "label,speaker,text,language (an espeak-ng voice name such as en-us)")
    a.add_argument("--label-from", choices=("parent", "none"), default="none",
                   help="label clips with their folder's name (default: none)")
    a.add_argument("--trim-silence", action="store_true", help="cut leading/trailing audio 40 dB below the peak")
    a.add_argument("--split-long", type=float, metavar="SECONDS", help="cut longer files into pieces this long")
    a.add_argument("--min-duration", type=float, default=0.0, metavar="S", help="skip clips shorter than this")
    a.add_argument("--max-duration", type=float, metavar="S", help="skip clips longer than this")
    a.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: all cores)")
    a.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for another process writing DB (default 600)")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.add_argument("--json", action="store_true", help="print the summary as JSON")
    a.set_defaults(func=_add)

    i = dsub.add_parser("info", help="clips, hours, splits, labels, speakers, languages, histograms")
    i.add_argument("db", metavar="DB")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)

    e = dsub.add_parser("errors", help="every skipped input with its reason")
    e.add_argument("db", metavar="DB")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=_errors)

    x = dsub.add_parser("export", help="write the clips back out as audio files")
    x.add_argument("db", metavar="DB")
    x.add_argument("out", metavar="OUT", help="folder for OUT/<split>/<label>/<id>.<format>")
    x.add_argument("--format", default="wav", help="wav, flac, ogg, mp3 or aiff (default wav)")
    x.add_argument("--split", choices=("train", "valid", "test"), help="only this split")
    x.set_defaults(func=_export)

    v = dsub.add_parser("verify", help="check that the stored audio matches the catalog")
    v.add_argument("db", metavar="DB")
    v.set_defaults(func=_verify)

    r = dsub.add_parser("prune", help="drop clips whose source files are gone")
    r.add_argument("db", metavar="DB")
    r.add_argument("--wait", type=float, default=600.0, metavar="SECONDS")
    r.set_defaults(func=_prune)


def _create(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    db = Database.create(args.db, sample_rate=args.sample_rate, channels=args.channels, split_ratios=args.split_ratios)
    print(f"created {db.path} ({db.sample_rate} Hz, {db.channels} channel(s))")
    db.close()
    return 0


def _add(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    with Database.open(args.db) as db:
        s = db.add(
            args.sources, manifest=args.manifest, label_from=args.label_from, trim_silence=args.trim_silence,
            split_long=args.split_long, min_duration=args.min_duration, max_duration=args.max_duration,
            workers=args.workers, progress=False if args.no_progress else None, wait=args.wait,
        )
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(
        f"{s['files']} file(s): {s['added']} clip(s) added ({s['added_hours'] * 60:.2f} min), "
        f"{s['unchanged']} unchanged, {s['duplicates']} duplicate(s), {s['errors']} error(s); "
        f"{s['clips']} clips in {args.db} ({s['seconds']:.1f} s)"
    )
    for path, reason in s["error_list"][:10]:
        print(f"  skipped {_line(path)}: {_line(reason)}", file=sys.stderr)
    if len(s["error_list"]) > 10:
        print(f"  ... {len(s['error_list']) - 10} more: `wavesmith db errors {args.db}`", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    from wavesmith.db import Database
    from wavesmith.db.report import format_info

    with Database.open(args.db) as db:
        d = db.info()
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def _errors(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    with Database.open(args.db) as db:
        errors = db.errors()
    if args.json:
        print(json.dumps(errors, indent=2))
    else:
        for e in errors:
            print(f"{_line(e['path'])}\t{_line(e['reason'])}")
        print(f"{len(errors)} skipped input(s)", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    with Database.open(args.db) as db:
        files = db.export(args.out, format=args.format, split=args.split)
    print(f"wrote {len(files)} file(s) under {args.out}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    with Database.open(args.db) as db:
        s = db.prune(wait=args.wait)
    print(f"removed {s['sources_removed']} missing source(s) and {s['clips_removed']} clip(s); {s['clips']} left")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from wavesmith.db import Database

    with Database.open(args.db) as db:
        report = db.verify()
    for problem in report["problems"]:
        print(problem)
    print(f"{report['clips']} clip(s) checked, {len(report['problems'])} problem(s)")
    return 1 if report["problems"] else 0


def _line(text: str) -> str:
    """``text`` on one line: a file name holding a newline or a tab must not forge lines or columns."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
