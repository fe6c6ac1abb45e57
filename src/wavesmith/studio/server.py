"""How the studio is served: on one address, inside its root, and with nothing fetched from the internet.

Offline by construction (:func:`configure_offline`, set before Gradio is imported): no
analytics or version check (``GRADIO_ANALYTICS_ENABLED=False``), no Hugging Face telemetry
or downloads (``HF_HUB_OFFLINE``, ``HF_HUB_DISABLE_TELEMETRY``), the system's fonts instead
of web fonts, no server-side rendering node process, no share link, no MCP server.
Gradio's own cache (uploads, copies of files it serves) lives in ``ROOT/studio/cache``, so
the server reads and writes nothing outside the root; ``allowed_paths`` lets it serve the
root's files (links out of the root are resolved and refused by Gradio as by us).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from wavesmith.errors import WavesmithError
from wavesmith.studio import api
from wavesmith.studio.training import Trainer

CACHE = "cache"  # ROOT/studio/cache: Gradio's uploads and served copies
MAX_FILE_SIZE = "200mb"  # Gradio refuses larger uploads before they are written; api.MAX_UPLOAD_BYTES checks again
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def configure_offline(root: Path) -> None:
    """Environment Gradio and huggingface_hub read at import: nothing may leave the machine."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check against api.gradio.app
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = str(root / api.OUTPUT / CACHE)


def serve(root: str | os.PathLike, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build the page for ``root`` and serve it until Ctrl+C; training runs it started are stopped (and saved)."""
    root = Path(root).resolve()
    configure_offline(root)
    from wavesmith.studio.app import build  # imports Gradio: after configure_offline

    trainer = Trainer(root)
    page = build(root, trainer)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server as Ctrl+C does: runs save first
    try:
        page.queue(default_concurrency_limit=1).launch(
            server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_FILE_SIZE,
            show_error=False, ssr_mode=False, pwa=False, mcp_server=False, footer_links=[], quiet=True,
            theme=_theme(), allowed_paths=[str(root)])
    except OSError as e:  # the port is taken, or the address is not this machine's
        raise WavesmithError(f"cannot listen on {host}:{port}: {str(e).split('. ')[0]}") from None
    finally:
        trainer.stop_all()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _theme():
    import gradio as gr

    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
