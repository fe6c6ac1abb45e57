"""The ``wavesmith`` command line: thin parsers that call one API function each.

Each area registers its own sub-commands from its own module (``cli/db.py``,
``cli/train.py``, ...). A :class:`WavesmithError` is printed as one line and exits with
status 2; Ctrl+C exits with 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from wavesmith import __version__
from wavesmith.errors import WavesmithError

# Modules that add sub-commands, in the order --help lists them.
_COMMAND_MODULES = ("demo", "db", "train", "models", "evaluate", "watermark", "interpolate", "pitch", "transfer",
                    "voice", "studio")


class _Parser(argparse.ArgumentParser):
    """argparse with wavesmith's error form: one line on stderr and status 2, no usage block."""

    def error(self, message: str):
        self.exit(2, f"wavesmith: error: {self.prog.removeprefix('wavesmith').strip() or 'wavesmith'}: "
                     f"{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wavesmith",
        description="Learn a database of audio clips with neural networks and generate new, marked audio files.",
    )
    parser.add_argument("--version", action="version", version=f"wavesmith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"wavesmith.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WavesmithError as e:
        print(f"wavesmith: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wavesmith: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
