"""Training runs the studio starts, watches and stops.

A run is ``python -m wavesmith train ...`` in a child process, so it is the CLI's own
training, the page stays responsive, and a crash of one cannot take the server down.
Stopping sends SIGINT, which the engine treats exactly like Ctrl+C: it finishes the step,
saves a checkpoint and exits. Progress comes from what the run writes anyway
(``metrics.jsonl``, ``config.toml``, ``previews/``), so a run started from the CLI is
watched the same way. The engine locks the run folder for as long as it trains; a second
start on a busy run is refused here at once, and by the engine's lock in any case.
"""

from __future__ import annotations

import collections
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavesmith.errors import WavesmithError
from wavesmith.files import folder_busy
from wavesmith.studio.paths import inside, relative

LOG_LINES = 200  # lines of a child's output kept for the page
STOP_WAIT = 60.0  # seconds the server waits for its runs to save when it shuts down


@dataclass
class Job:
    """One child ``wavesmith train`` process and the tail of its output."""

    run: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)
    lines: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOG_LINES))
    stopping: bool = False

    def read(self) -> None:
        for line in self.proc.stdout:  # until the child exits
            self.lines.append(line.rstrip("\n"))


class Trainer:
    """The training runs of one studio (one server), keyed by run folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.jobs: dict[Path, Job] = {}
        self._lock = threading.Lock()

    def start(self, db: str, run: str, model: str | None = None, steps: int | None = None, resume: bool = False,
              init: str | None = None, sets: list[str] | None = None) -> str:
        """Start ``wavesmith train DB --run RUN ...`` in the background; a one-line answer for the page."""
        if not run:
            raise WavesmithError("name the run folder (a new one, or an existing run with resume)")
        run_path = inside(self.root, run)
        db_path = inside(self.root, db, exists=True) if db else None
        if db_path is None:
            raise WavesmithError("choose the database to train on")
        cmd = [sys.executable, "-m", "wavesmith", "train", str(db_path), "--run", str(run_path), "--no-progress"]
        if model:
            cmd += ["--model", model]
        if steps:
            if int(steps) < 1:
                raise WavesmithError(f"steps must be at least 1, not {steps}")
            cmd += ["--steps", str(int(steps))]
        if resume:
            cmd.append("--resume")
        if init:
            from wavesmith import shipped

            cmd += ["--init", init if init in shipped.names() else str(inside(self.root, init, exists=True))]
        for s in sets or []:
            cmd += ["--set", s]
        with self._lock:
            job = self.jobs.get(run_path)
            if job is not None and job.proc.poll() is None:
                raise WavesmithError(f"{run} is training already (started here); watch it or stop it first")
            if folder_busy(run_path):
                raise WavesmithError(f"{run} is being trained by another wavesmith process; wait for it or stop it")
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, env=env, cwd=self.root, start_new_session=True)
            job = Job(run_path, proc)
            threading.Thread(target=job.read, daemon=True, name=f"train-log-{run}").start()
            self.jobs[run_path] = job
        return f"training {run} in the background (process {proc.pid})"

    def stop(self, run: str) -> str:
        """Ask a run this studio started to stop as Ctrl+C does: finish the step, save a checkpoint, exit."""
        run_path = inside(self.root, run)
        job = self.jobs.get(run_path)
        if job is None or job.proc.poll() is not None:
            raise WavesmithError(f"{run} is not training from this studio")
        job.stopping = True
        job.proc.send_signal(signal.SIGINT)
        return f"stopping {run}: it finishes its step and saves a checkpoint"

    def status(self, run: str) -> dict[str, Any]:
        """Where a run stands: ``state``, ``step`` of ``steps``, the latest figures, metrics, previews, output tail."""
        from wavesmith.train.logs import read

        run_path = inside(self.root, run)
        job = self.jobs.get(run_path)
        if job is None and not run_path.is_dir():
            raise WavesmithError(f"{run}: no such run under the studio's root")
        code = job.proc.poll() if job else None
        if job is not None and code is None:
            state = "stopping" if job.stopping else "training"
        elif job is not None:
            state = "finished" if code == 0 else f"failed (exit status {code})"
        else:
            state = "training (another process)" if folder_busy(run_path) else "not training"
        try:
            metrics = read(run_path)
        except ValueError:  # a line being written as we read: the next poll gets it
            metrics = []
        train = [m for m in metrics if m.get("kind") == "train"]
        total = _total_steps(run_path)
        step = max((m.get("step", 0) for m in metrics), default=0)
        figures = {k: v for k, v in (train[-1] if train else {}).items() if k not in ("kind", "time")}
        previews = sorted((run_path / "previews").glob("step-*.wav")) if (run_path / "previews").is_dir() else []
        eta = None
        rate = figures.get("samples_per_s")
        if job is not None and code is None and len(train) >= 2 and total:
            (s0, t0), (s1, t1) = (train[0]["step"], train[0]["time"]), (train[-1]["step"], train[-1]["time"])
            if s1 > s0 and t1 > t0:
                eta = (total - s1) * (t1 - t0) / (s1 - s0)
        return {"run": relative(self.root, run_path), "state": state, "step": step, "steps": total,
                "figures": figures, "samples_per_s": rate, "eta_s": None if eta is None or not math.isfinite(eta)
                else round(eta), "metrics": metrics,
                "preview": str(previews[-1]) if previews else None,
                "preview_png": str(previews[-1].with_suffix(".png")) if previews else None,
                "log": list(job.lines) if job else []}

    def stop_all(self, wait: float = STOP_WAIT) -> None:
        """Stop every run still training (the server is shutting down), waiting for their checkpoints."""
        alive = [j for j in self.jobs.values() if j.proc.poll() is None]
        for j in alive:
            j.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + wait
        for j in alive:
            try:
                j.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                j.proc.kill()


def _total_steps(run: Path) -> int | None:
    """``train.steps`` from the run's ``config.toml`` (None before the run wrote it)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return int(tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))["train"]["steps"])
    except (OSError, KeyError, ValueError, TypeError, tomllib.TOMLDecodeError):
        return None
