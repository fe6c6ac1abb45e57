"""The one training loop of wavesmith: it owns time, the model owns its maths.

:func:`train` opens the database, builds (or resumes) the model named on the command
line, and runs ``model.train_step(next_batch, update, step)`` until the run's total step
count, a time limit, Ctrl+C or SIGTERM. It never names a model. Around each step it
provides: the device and bf16 autocast, ``update(name, loss)`` (backward, gradient
averaging across processes, clipping, the learning-rate schedule, ``zero_grad``), the EMA
of the weights, validation on the valid split, preview clips, ``metrics.jsonl`` and
checkpoints from which a resumed run continues exactly as if it had never stopped.
"""

from __future__ import annotations

import errno
import math
import os
import random
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from wavesmith import checkpoint as ckpt
from wavesmith import config as C
from wavesmith import models
from wavesmith.device import pick_device
from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import hold_folder, write_text
from wavesmith.models.base import DataInfo, GenerativeModel
from wavesmith.train import distributed as D
from wavesmith.train.config import TrainConfig
from wavesmith.train.data import Batches, valid_batches
from wavesmith.train.ema import EMA
from wavesmith.train.logs import MetricsLog
from wavesmith.train.preview import preview
from wavesmith.train.resolve import check_data, check_resume, resolve_configs, start_state
from wavesmith.train.runtime import StopSignal, eval_mode, isolated_rng

if TYPE_CHECKING:
    from wavesmith.db import Database

CONFIG_FILE = "config.toml"


def lr_factor(tc: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine to ``min_lr_ratio`` or constant."""
    if step < tc.warmup_steps:
        return (step + 1) / tc.warmup_steps
    if tc.lr_schedule == "constant":
        return 1.0
    horizon = tc.decay_steps or tc.steps
    progress = min(1.0, max(0.0, (step - tc.warmup_steps) / max(1, horizon - tc.warmup_steps)))
    return tc.min_lr_ratio + (1.0 - tc.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    db: str | os.PathLike,
    model: str | None,
    run: str | os.PathLike,
    *,
    config_file: str | os.PathLike | None = None,
    sets: list[str] | tuple[str, ...] = (),
    time_limit: float | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    init: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train ``model`` (a registered name or ``"package.module:Class"``) on database ``db`` into ``run``.

    ``init`` starts a new run from the (EMA) weights and model config of a run, checkpoint or
    shipped model (fine-tuning); class tables are matched by label and speaker name. A
    resumed run ignores it: its own checkpoint holds the weights.

    ``sets`` are ``key=value`` overrides (``model.KEY`` / ``train.KEY`` or a bare key), applied
    after ``config_file``. ``train.steps`` counts the run's total steps, so a resumed run
    continues up to it. ``time_limit`` (seconds) stops this invocation early, with a
    checkpoint. Returns a summary (steps done, why it stopped, last checkpoint, ...).
    """
    try:
        with session(db, model, run, config_file=config_file, sets=sets, time_limit=time_limit, resume=resume,
                     device=device, progress=progress, init=init) as loop:
            return loop.run()
    except OSError as e:  # metrics, previews or config on a full disk (checkpoints say so themselves)
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise WavesmithError(f"the disk is full ({e.filename or run}); the checkpoints already in "
                             f"{Path(run) / ckpt.CHECKPOINTS} are intact") from None


@contextmanager
def session(db, model, run, **options):
    """Everything :func:`train` sets up, as a ``_Loop`` to drive (benchmarks step it by hand).

    The run folder is locked for the whole session (by the process that writes it, rank 0):
    a second ``train`` on a run being trained, from the CLI or the studio, is refused at
    once instead of interleaving two runs' checkpoints and metrics.
    """
    run_dir = Path(run)
    if run_dir.exists() and not run_dir.is_dir():
        raise WavesmithError(f"--run {run_dir} is a file; give a folder for the run")
    busy = f"{run_dir} is being trained by another wavesmith process; wait for it to finish or stop it"
    held = hold_folder(run_dir, busy) if D.from_env().main else nullcontext()
    with held, _session(db, model, run_dir, **options) as loop:
        yield loop


@contextmanager
def _session(db, model, run, *, config_file=None, sets=(), time_limit=None, resume=False, device=None,
             progress=True, init=None):
    from wavesmith.db import Database

    d = D.from_env()
    dev = pick_device(device, d.local_rank)
    run_dir = Path(run)
    state = None
    if resume:
        found = ckpt.latest(run_dir, warn=lambda m: print(m, file=sys.stderr) if d.main else None)
        if found is None and d.main:
            print(f"wavesmith: no checkpoint in {run_dir} yet; starting a new run", file=sys.stderr)
        state = found[0] if found else None
    elif run_dir.exists() and any((run_dir / n).exists() for n in (CONFIG_FILE, ckpt.CHECKPOINTS, "metrics.jsonl")):
        raise WavesmithError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --run")
    named_by_user = model is not None  # a plug-in's code runs only when the user names it, never a file
    start = None
    if state is None and init is not None:
        start = start_state(init)
        if model is not None and model != start["model_name"]:
            raise WavesmithError(f"--init {init} holds a {start['model_name']!r} model, not {model!r}")
        model = start["model_name"]
    if state is not None:
        if model is not None and model != state["model_name"]:
            raise WavesmithError(f"{run_dir} holds a run of model {state['model_name']!r}, not {model!r}")
        model = state["model_name"]
    if model is None:
        raise WavesmithError("--model is required for a new run; available: " + ", ".join(models.names()))
    cls = models.get(model, allow_import=named_by_user)
    mc, tc = resolve_configs(cls, state, config_file, sets, start)
    database = Database.open(db)
    try:  # a refused database is closed again (its connection would keep -wal and -shm files)
        if not database.clips():
            raise WavesmithError(f"database {database.path} holds no clips; add some with `wavesmith db add`")
        database.check_store()  # a missing shard stops here, not mid-run with a run folder made
        info = DataInfo(database.sample_rate, database.channels, tuple(database.labels), tuple(database.speakers),
                        tuple(database.languages))
        if state is not None:
            check_data(info, DataInfo.from_dict(state["data_info"]), database.path)
            check_resume(state, database, tc)
    except BaseException:
        database.close()
        raise

    D.init(d, dev)
    clean = False
    try:
        yield _Loop(_Setup(d, dev, database, run_dir, model, cls, mc, tc, info, state, time_limit, progress, start))
        clean = True
    finally:
        D.shutdown(d, wait_for_all=clean)
        database.close()


@dataclass
class _Setup:
    """What :func:`session` resolved for one training invocation."""

    d: D.Dist  # this process's place among the torchrun processes
    dev: torch.device
    database: Database
    run_dir: Path
    name: str  # the model's registered name (or package.module:Class)
    cls: type[GenerativeModel]
    mc: Any  # the model's resolved Config
    tc: TrainConfig
    info: DataInfo
    state: dict | None  # the checkpoint resumed from
    time_limit: float | None  # seconds for this invocation
    progress: bool  # show a progress bar
    start: dict | None = None  # the checkpoint a fine-tuning run starts from (--init)


class _Loop:
    """The state of one training invocation (kept in one object so the step loop reads plainly)."""

    def __init__(self, setup: _Setup):
        from wavesmith.db import ClipDataset

        s = setup
        self.d, self.dev, self.db, self.run_dir, self.name = s.d, s.dev, s.database, s.run_dir, s.name
        self.mc, self.tc, self.info, self.time_limit, self.progress = s.mc, s.tc, s.info, s.time_limit, s.progress
        d, dev, database, tc, state, name = s.d, s.dev, s.database, s.tc, s.state, s.name
        _seed_all(tc.seed)  # the same initial weights on every process (rank 0's are broadcast anyway)
        self.model: GenerativeModel = s.cls(s.mc, s.info).to(dev)
        self.start = None  # what a fine-tuning run started from, for its metrics line
        if s.start is not None:
            self._start_from(s.start)
            self.start = {k: s.start[k] for k in ("init_path", "init_sha256", "step")}
        self.opts = self.model.configure_optimizers()
        if not self.opts:
            raise WavesmithError(f"model {name!r} returned no optimizers from configure_optimizers()")
        self.params = {n: [p for g in o.param_groups for p in g["params"]] for n, o in self.opts.items()}
        self.base_lrs = {n: [g["lr"] for g in o.param_groups] for n, o in self.opts.items()}
        self.step, self.best, epoch, offset = 0, math.inf, 0, 0
        if state is not None:
            self._load(state)
            epoch, offset = state["data"]["epoch"], state["data"]["offset"]
        D.broadcast_module(self.model, d)
        self.ema = EMA(self.model, tc.ema_decay)
        if state is not None:
            self.ema.load_state_dict(state["ema"])
        self.resumed_from = state["step"] if state is not None else 0  # metrics.jsonl keeps lines up to here

        crop, feats = self.model.crop_samples, self.model.features
        train_ds = ClipDataset(database, "train", crop_samples=crop, train=self.model.random_crops, seed=tc.seed,
                               features=feats)
        self.batches = Batches(train_ds, d, tc.batch_size, tc.workers, tc.seed, dev, epoch, offset)
        self.valid_ds = ClipDataset(database, "valid", crop_samples=crop, train=False, seed=tc.seed, features=feats)
        if tc.compile:
            for m in (self.model, *self.model.children()):
                m.compile()
        bf16 = tc.precision == "bf16" or (tc.precision == "auto" and dev.type == "cuda")
        self.autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 else nullcontext
        self.grad_norms: dict[str, torch.Tensor] = {}
        # Each process's own training random stream, restored exactly on resume.
        rngs = state.get("rng") if state is not None else None
        if rngs is not None and len(rngs) == d.world:
            ckpt.set_rng_state(rngs[d.rank])
        else:
            _seed_all(tc.seed * 1_000_003 + 7919 * (d.rank + 1) + (state["step"] if state else 0))

    # --- the step ---------------------------------------------------------------------------

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` and step optimizer ``name`` (what ``train_step`` calls)."""
        opt = self.opts.get(name)
        if opt is None:
            raise KeyError(f"update({name!r}): the model's optimizers are {', '.join(self.opts)}")
        params = self.params[name]
        opt.zero_grad(set_to_none=True)  # drop gradients other losses left on these weights
        with torch.autocast(self.dev.type, enabled=False):
            loss.backward()
        D.average_gradients(params, self.d)
        if self.tc.grad_clip > 0:
            grads = [p for p in params if p.grad is not None]
            self.grad_norms[name] = torch.nn.utils.clip_grad_norm_(grads, self.tc.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def _set_lr(self) -> float:
        f = lr_factor(self.tc, self.step)
        for n, o in self.opts.items():
            for g, base in zip(o.param_groups, self.base_lrs[n], strict=True):
                g["lr"] = base * f
        return f

    def begin(self) -> None:
        """Write the resolved config and open the logs (rank 0)."""
        if self.d.main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise WavesmithError(f"cannot make the run folder {self.run_dir}: {e.strerror or e}") from None
            header = f"# wavesmith train --model {self.name}\n"
            body = C.dumps_toml({"model": C.to_dict(self.mc), "train": C.to_dict(self.tc)})
            write_text(self.run_dir / CONFIG_FILE, header + body)
        self.log = MetricsLog(self.run_dir, self.d.main, self.resumed_from)
        if self.start is not None:
            self.log.write("init", self.step, source=self.start["init_path"], sha256=self.start["init_sha256"],
                           source_step=int(self.start["step"]))
        if self.d.main and len(self.valid_ds) == 0:
            print("wavesmith: note: the valid split is empty, so no validation loss and no best.pt",
                  file=sys.stderr)
        self.model.train()
        self._sums: dict[str, float] = {}
        self._count, self._window_t, self._window_drawn = 0, time.monotonic(), 0

    def step_once(self) -> None:
        """One training step with everything the engine wraps around it, and its metrics line."""
        lr = self._set_lr()
        with self.autocast():
            logs = self.model.train_step(self.batches, self.update, self.step)
        self.ema.update(self.model)
        self.step += 1
        for k, v in (logs or {}).items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1
        if self.step % self.tc.log_every == 0 or self.step == self.tc.steps:
            now = time.monotonic()
            rate = (self.batches.drawn - self._window_drawn) * self.d.world / max(now - self._window_t, 1e-9)
            figures = {k: v / self._count for k, v in self._sums.items()}
            norms = {f"grad_norm_{n}": float(t) for n, t in self.grad_norms.items()}
            self.log.write("train", self.step, **figures, **norms, lr_factor=lr, samples_per_s=rate)
            self.postfix = {**{k: f"{v:.4g}" for k, v in list(figures.items())[:4]}, "clips/s": f"{rate:.0f}"}
            self._sums, self._count, self._window_t, self._window_drawn = {}, 0, now, self.batches.drawn

    def run(self) -> dict[str, Any]:
        """Steps until ``train.steps``, the time limit or a stop signal; then a checkpoint."""
        tc, d = self.tc, self.d
        self.begin()
        stop = StopSignal()
        stop.install()
        start_step, t0 = self.step, time.monotonic()
        bar = _bar(tc.steps, self.step, d.main and self.progress)
        last_path: Path | None = None
        reason = "done"
        self.postfix = {}
        try:
            while self.step < tc.steps:
                self.step_once()
                bar.set_postfix(self.postfix, refresh=False)
                bar.update(1)
                late = self.time_limit is not None and time.monotonic() - t0 >= self.time_limit
                halt = D.any_flag(stop.reason is not None or late, d, self.dev)
                if halt:
                    reason = stop.reason or "time limit"
                new_best = False
                if (tc.valid_every and self.step % tc.valid_every == 0) or self.step == tc.steps:
                    # Rank 0 validates; all must agree whether to save (saving is collective).
                    new_best = D.any_flag(self._validate(), d, self.dev)
                if tc.preview_every and self.step % tc.preview_every == 0 and d.main:
                    self._preview()
                if halt or new_best or self.step == tc.steps or self.step % tc.checkpoint_every == 0:
                    last_path = self._save(new_best) or last_path
                if halt:
                    break
        finally:
            stop.restore()
            bar.close()
            self.log.close()
        elapsed = time.monotonic() - t0
        return {
            "run": str(self.run_dir), "model": self.name, "step": self.step, "steps_total": tc.steps,
            "stopped": reason, "checkpoint": str(last_path) if last_path else None,
            "best_valid_loss": None if math.isinf(self.best) else self.best, "seconds": round(elapsed, 2),
            "steps_per_s": round((self.step - start_step) / max(elapsed, 1e-9), 3), "processes": d.world,
            "device": str(self.dev),
        }

    # --- around the step ----------------------------------------------------------------------

    def _validate(self) -> bool:
        """Mean validation losses of the EMA weights (rank 0 alone); True when ``loss`` beats the best so far.

        The EMA weights are the ones ``generate`` and previews use, so ``best.pt`` is ranked on them.
        """
        if not self.d.main or len(self.valid_ds) == 0:
            return False
        sums: dict[str, float] = {}
        n = 0
        with isolated_rng(), eval_mode(self.model), self.ema.applied(self.model), torch.no_grad(), self.autocast():
            for batch in valid_batches(self.valid_ds, self.tc.batch_size, self.tc.valid_batches, self.dev):
                for k, v in self.model.validation_loss(batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n += 1
        figures = {k: v / n for k, v in sums.items()}
        self.log.write("valid", self.step, **figures)
        loss = figures.get("loss", math.inf)
        if loss < self.best:
            self.best = loss
            return True
        return False

    def _preview(self) -> None:
        with isolated_rng(), eval_mode(self.model), self.ema.applied(self.model):
            figures = preview(self.model, self.info, self.tc, self.run_dir, self.step, self.db)
        self.log.write("preview", self.step, **figures)

    def _save(self, best: bool) -> Path | None:
        rngs = D.gather_objects(ckpt.rng_state(), self.d)  # every process takes part
        if self.d.world > 1:
            sums = D.parameter_checksums(self.model, self.d)
            self.log.write("sync", self.step, checksums=sums, in_sync=len(set(sums)) == 1)
            if len(set(sums)) > 1 and self.d.main:  # a model that breaks the contract (e.g. steps outside update)
                print(f"wavesmith: warning: the processes' weights differ at step {self.step}", file=sys.stderr)
        if not self.d.main:
            return None
        state = {
            "format": ckpt.FORMAT,
            "model_name": self.name,
            "model_class": f"{type(self.model).__module__}:{type(self.model).__qualname__}",
            "config": {"model": C.to_dict(self.mc), "train": C.to_dict(self.tc)},
            "data_info": self.info.to_dict(),
            "database": {"path": str(self.db.path), "fingerprint": self.db.fingerprint()},
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in self.opts.items()},
            "schedule": {"base_lrs": self.base_lrs, "lr_factor": lr_factor(self.tc, self.step)},
            "data": {"epoch": self.batches.position[0], "offset": self.batches.position[1]},
            "rng": rngs,
            "best_valid_loss": self.best,
            "world_size": self.d.world,
        }
        path = ckpt.save(state, ckpt.step_path(self.run_dir, self.step))
        if best:
            ckpt.mark_best(path)
        ckpt.prune(self.run_dir, self.tc.keep_checkpoints)
        return path

    def _start_from(self, start: dict) -> None:
        """Fine-tuning: the weights of ``start`` (EMA where it has them), class tables matched by name."""
        weights = start["ema"]["shadow"] if start.get("ema") else start["model"]
        weights = self.model.adapt_weights(dict(weights), DataInfo.from_dict(start["data_info"]))
        try:
            self.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0][:200]
            raise WavesmithError(f"--init {start['init_path']} does not fit this model: {first}") from None

    def _load(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            for n, o in self.opts.items():
                o.load_state_dict(state["optimizers"][n])
        except (RuntimeError, KeyError, ValueError) as e:
            raise WavesmithError(f"the checkpoint does not fit model {self.name!r}: {one_line(e, 0)}") from None
        self.base_lrs = {n: list(v) for n, v in state["schedule"]["base_lrs"].items()}
        self.step, self.best = int(state["step"]), float(state["best_valid_loss"])


def _bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                desc="train", file=sys.stderr)
