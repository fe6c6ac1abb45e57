"""What a run reports: ``metrics.jsonl`` (one JSON object a line), TensorBoard when installed.

Each line has ``kind`` (``train``, ``valid``, ``preview``, ``sync``, ``event``), ``step``
and figures. A resumed run first drops the lines past its checkpoint's step, which the
interrupted run wrote but the resumed run will write again, so the file always tells one
consistent story.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from wavesmith.files import write_text

METRICS = "metrics.jsonl"


class MetricsLog:
    """Appends lines to ``RUN/metrics.jsonl`` and mirrors numbers to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int | None = None):
        self.path = Path(run_dir) / METRICS
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            _truncate_after(self.path, resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)
        except ImportError:
            self.tb = None

    def write(self, kind: str, step: int, **figures: Any) -> None:
        if not self.enabled:
            return
        line = {"kind": kind, "step": step, "time": round(time.time(), 3), **figures}
        self._file.write(json.dumps(line, default=_jsonable) + "\n")
        self._file.flush()
        if self.tb is not None:
            for key, value in figures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self.tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self.tb is not None:
                self.tb.close()


def read(run_dir: str | os.PathLike, kind: str | None = None) -> list[dict]:
    """The lines of a run's ``metrics.jsonl`` (of one ``kind`` when given)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = [json.loads(s) for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    return [x for x in lines if kind is None or x.get("kind") == kind]


def _truncate_after(path: Path, step: int) -> None:
    kept = []
    for s in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(s).get("step", 0) > step:
                continue
        except (json.JSONDecodeError, AttributeError):
            continue  # a line cut short by the kill
        kept.append(s + "\n")
    write_text(path, "".join(kept))


def _jsonable(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else str(x)
