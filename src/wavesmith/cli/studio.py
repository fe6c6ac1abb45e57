"""``wavesmith serve``: the studio, a local browser page over the same API (see :mod:`wavesmith.studio`)."""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
from pathlib import Path

from wavesmith.errors import WavesmithError

INSTALL = "pip install 'wavesmith[studio]'"


def register(sub) -> None:
    """Add ``serve`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "serve", help="open the studio: a local browser page for databases, generation, training and more",
        description="Serve a local web page (Gradio) with one tab per job: Database, Generate, Voice, Transform, "
        "Train, Evaluate, Detect. Each calls the same Python API as the CLI. Files are read and written only "
        "under --root; nothing is fetched from the internet. Stop with Ctrl+C (training runs it started are "
        "stopped with a checkpoint).",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; another address warns)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--root", default=".", help="the only folder the page may read and write (default: here)")
    p.set_defaults(func=_serve)


def is_local(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a loopback address or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise WavesmithError(f"the studio needs Gradio, which is not installed: {INSTALL}")
    if not 0 < args.port < 65536:
        raise WavesmithError(f"--port must be between 1 and 65535, not {args.port}")
    root = Path(args.root).expanduser()
    if not root.is_dir():
        raise WavesmithError(f"--root {root} is not a folder")
    if not is_local(args.host):
        print(f"wavesmith: warning: --host {args.host} lets other machines reach the studio, which has no login: "
              f"anyone who can reach port {args.port} can read, write and train under {root.resolve()}",
              file=sys.stderr)
    from wavesmith.studio.server import serve

    print(f"wavesmith studio: http://{'localhost' if is_local(args.host) else args.host}:{args.port} "
          f"(root {root.resolve()}; Ctrl+C stops it)", file=sys.stderr, flush=True)
    serve(root, host=args.host, port=args.port)
    return 0
