"""What a run starts from: its resolved configs, the checks before resuming, and the checkpoint a
fine-tuning run (``--init``) starts from. The engine calls these before it builds anything."""

from __future__ import annotations

from typing import Any

from wavesmith import checkpoint as ckpt
from wavesmith import config as C
from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.train.config import TrainConfig


def start_state(source) -> dict[str, Any]:
    """The checkpoint a fine-tuning run starts from: a run, a checkpoint file or a shipped model."""
    from wavesmith import shipped

    path = shipped.checkpoint_path(source)
    state, digest = ckpt.load(path)
    return {**state, "init_path": str(path), "init_sha256": digest}


def resolve_configs(cls, state, config_file, sets, start=None) -> tuple[Any, TrainConfig]:
    # The model's own needs for the engine (e.g. WGAN-GP: no clipping) come before the user's.
    defaults = C.override(TrainConfig(), dict(getattr(cls, "train_defaults", {}) or {}), "train")
    base = C.from_dict(cls.Config, start["config"]["model"]) if start is not None else cls.Config()
    sections: dict[str, Any] = {"model": base, "train": defaults}
    if state is not None:
        saved = state["config"]
        sections = {"model": C.from_dict(cls.Config, saved["model"]), "train": C.from_dict(TrainConfig, saved["train"])}
    toml = C.load_toml(config_file) if config_file else None
    resolved = C.resolve(sections, toml, list(sets))
    if state is not None and C.to_dict(resolved["model"]) != C.to_dict(sections["model"]):
        raise WavesmithError("the model config cannot change when resuming; start a new run to change it")
    return resolved["model"], resolved["train"]


def check_data(info: DataInfo, saved: DataInfo, db_path) -> None:
    for what in ("sample_rate", "channels", "labels", "speakers", "languages"):
        a, b = getattr(info, what), getattr(saved, what)
        if a != b:
            shown = (lambda v: ", ".join(v) or "none") if what in ("labels", "speakers", "languages") else str
            raise WavesmithError(f"database {db_path} has {what.replace('_', ' ')} {shown(a)}, "
                                 f"but the checkpoint was trained with {shown(b)}")


def check_resume(state: dict, database, tc: TrainConfig) -> None:
    """An exact resume needs the clips and batch size the run had: refuse a silent change of either."""
    saved = (state.get("database") or {}).get("fingerprint")
    if saved and saved != database.fingerprint():
        raise WavesmithError(f"database {database.path} is not the one this run was trained on (its clips differ: "
                             f"fingerprint {database.fingerprint()}, the run's {saved}); resume against that "
                             "database, or start a new run on this one from this run's weights with --init")
    before = state["config"]["train"].get("batch_size")
    if before is not None and before != tc.batch_size:
        raise WavesmithError(f"the run was trained with batch_size {before}, not {tc.batch_size}; a resume keeps "
                             "the batch size (start a new run to change it)")
