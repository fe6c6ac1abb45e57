"""``wavesmith mark`` and ``wavesmith detect``: the watermark and Content Credentials."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from wavesmith.errors import WavesmithError


def register(sub) -> None:
    """Add ``mark`` and ``detect`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "mark", help="watermark an audio file, check the mark is found again, sign it with C2PA Content Credentials",
        description="Mark a file as machine-made: the watermark, and a C2PA manifest whose digital source type "
        "is trainedAlgorithmicMedia. Use it for audio a model made (outside wavesmith too), not for recordings.",
    )
    p.add_argument("input", metavar="IN", help="audio file to mark (never modified unless --in-place)")
    p.add_argument("output", metavar="OUT", nargs="?", help="marked file to write (wav, flac, mp3, ogg, aiff)")
    p.add_argument("--payload", type=int, default=0, help="16-bit payload to carry, 0..65535 (default 0)")
    p.add_argument("--in-place", action="store_true", help="replace IN (through a temporary file and a rename)")
    p.add_argument("--force", action="store_true", help="mark IN even if it already carries a wavesmith watermark")
    p.set_defaults(func=_mark)

    p = sub.add_parser("detect", help="look for the watermark and C2PA Content Credentials in audio files")
    p.add_argument("files", metavar="FILE", nargs="+", help="audio files to check")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p.set_defaults(func=_detect)


def _mark(args) -> int:
    from wavesmith.watermark import check_problem, mark_file

    src = Path(args.input)
    if args.in_place:
        if args.output and Path(args.output).resolve() != src.resolve():
            raise WavesmithError("give either OUT or --in-place, not both")
        # A rename would replace a read-only file all the same (and root may write anything):
        # its mode says the user meant it to stay as it is.
        if src.is_file() and not (os.access(src, os.W_OK) and src.stat().st_mode & 0o200):
            raise WavesmithError(f"{src} is read-only: --in-place will not replace it (write to OUT instead)")
        dst = src
    else:
        if not args.output:
            raise WavesmithError("give OUT, or --in-place to replace IN")
        dst = Path(args.output)
        if dst.exists() and dst.resolve() == src.resolve():
            raise WavesmithError("OUT is IN: use --in-place to replace the input")
    result = mark_file(src, dst, args.payload, force=args.force)
    print(f"marked {dst} (payload {result['payload']})")
    problem = check_problem(result["check"], args.payload)
    if problem:
        print(f"wavesmith: warning: {dst}: {problem}", file=sys.stderr)
    if not result["signed"]:
        print(f"wavesmith: warning: {result['reason']}", file=sys.stderr)
    return 0


def _detect(args) -> int:
    from wavesmith.watermark import describe, detect_file

    results, failed = [], 0
    for f in args.files:
        try:
            r = detect_file(f)
        except WavesmithError as e:
            failed += 1
            print(f"wavesmith: error: {e}", file=sys.stderr)
            r = {"file": f, "error": str(e), "watermark": False, "confidence": 0.0, "payload": None,
                 "segments": [], "c2pa": None}
        results.append(r)
        if not args.json and "error" not in r:
            mark, c2s = describe(r)
            print(f"{f}: {mark}; {c2s}")
    if args.json:
        print(json.dumps(results, indent=1))
    return 2 if failed else 0  # as every command: a file the user gave that cannot be read
