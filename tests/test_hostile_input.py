"""Every command against bad values, from one table: one line on stderr, status 2, nothing left behind.

Each row is a command line with placeholders for the things a careless or hostile user
passes: ``{db}`` a good database, ``{run}`` and ``{ckpt}`` a good run and its checkpoint,
``{wav}`` an audio file, ``{dir}`` a folder of audio, ``{file}`` a text file where a folder
or an audio file belongs, ``{ro}`` a place nothing can be written (under ``/proc``), the
``bad_*`` databases and checkpoints (truncated, foreign, forged), ``{missing}`` a path that
does not exist and ``{out}`` a fresh path the command would write to. After each command,
``{out}`` must not exist and the shared files must be as they were. New commands join the
table as they land (``vocode``, ``train --init``, ``models``, ``pitch`` and ``transfer`` have;
``clone``, ``say`` and ``serve`` do not exist yet).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import soundfile as sf

from toy_model import make_db, tone
from wavesmith import checkpoint as ckpt
from wavesmith.cli import main
from wavesmith.train import train

NUMBERS = ("0", "-1", "nan", "inf", "1e9")  # the values every numeric flag is tried with
BAD_DBS = ("{file}", "{missing}", "{bad_truncated_db}", "{bad_foreign_db}", "{bad_empty_catalog_db}")
BAD_CKPTS = ("{file}", "{missing}", "{bad_truncated_ckpt}", "{bad_foreign_ckpt}", "{bad_huge_ckpt}",
             "{bad_evil_ckpt}", "{bad_random_ckpt}")
TRAIN = ("train", "{db}", "--model", "wavenet", "--run", "{out}")
GENERATE = ("generate", "{run}", "--out", "{out}", "-n", "1", "--seconds", "0.2", "--no-watermark")


def _numeric(prefix: tuple, flag: str, values=NUMBERS, keep: tuple = ()) -> list[tuple]:
    return [(*prefix, flag, v) for v in values if v not in keep]


CASES: list[tuple] = [
    # db create
    *_numeric(("db", "create", "{out}"), "--sample-rate"),
    *_numeric(("db", "create", "{out}"), "--channels"),
    *[("db", "create", "{out}", "--split-ratios", r)
      for r in ("nan,1,1", "inf,1,1", "1,-1,1", "0,0,0", "1,1", "a,b,c", "1e308,1e308,1")],
    ("db", "create", "{file}/db"), ("db", "create", "{ro}/db"), ("db", "create", "{file}"),
    # db add
    *_numeric(("db", "add", "{db}", "{dir}"), "--split-long", keep=("1e9",)),
    *_numeric(("db", "add", "{db}", "{dir}"), "--min-duration", ("-1", "nan", "inf")),
    *_numeric(("db", "add", "{db}", "{dir}"), "--max-duration", ("0", "-1", "nan", "inf")),
    *_numeric(("db", "add", "{db}", "{dir}"), "--workers", ("-1", "nan", "1e9", "1000000")),
    *_numeric(("db", "add", "{db}", "{dir}"), "--wait", ("-1", "nan", "inf")),
    *[("db", "add", bad, "{dir}") for bad in BAD_DBS],
    ("db", "add", "{db}", "{missing}"), ("db", "add", "{db}", "--manifest", "{missing}"),
    ("db", "add", "{db}", "--manifest", "{wav}"),
    # db readers
    *[("db", action, bad) for action in ("info", "errors", "verify", "prune") for bad in BAD_DBS],
    *[("db", "export", bad, "{out}") for bad in BAD_DBS],
    ("db", "export", "{db}", "{file}"), ("db", "export", "{db}", "{out}", "--format", "xyz"),
    # train
    *_numeric(TRAIN, "--steps", keep=("1e9",)), *_numeric(TRAIN, "--batch-size", keep=()),
    *_numeric(TRAIN, "--workers", ("-1", "nan", "1e9", "100000")), *_numeric(TRAIN, "--seed", ("-1", "nan")),
    *_numeric(TRAIN, "--time", ("0", "-1", "nan", "inf", "1e9", "soon")),
    *[(*TRAIN, "--set", s) for s in (
        "model.layers=0", "model.layers=-1", "model.layers=nan", "model.layers=100000", "residual_channels=0",
        "residual_channels=1e9", "stacks=0", "stacks=-1", "model.lr=-1", "model.lr=nan", "model.lr=inf",
        "model.lr=0", "crop=0", "crop=-5", "crop=1e12", "quantization_channels=0", "quantization_channels=1",
        "kernel_size=0", "gate_channels=3", "hop_length=0", "n_fft=0", "mixtures=0", "cond_channels=0",
        "preview_seconds=1e9", "preview_seconds=0", "preview_seconds=nan", "preview_count=1e9", "grad_clip=-1",
        "grad_clip=nan", "ema_decay=1", "ema_decay=nan", "min_lr_ratio=2", "steps=inf", "batch_size=1e9",
        "warmup_steps=-1", "valid_batches=0", "keep_checkpoints=0", "seed=-1", "seed=1e30", "nonsense=1",
        "model.nonsense=1", "layers", "=3")],
    *[("train", bad, "--model", "wavenet", "--run", "{out}") for bad in BAD_DBS],
    ("train", "{db}", "--model", "wavenet", "--run", "{file}"), ("train", "{db}", "--model", "nope", "--run", "{out}"),
    ("train", "{db}", "--model", "no_such_module:X", "--run", "{out}"),
    ("train", "{db}", "--model", "wavenet", "--run", "{out}", "--config", "{file}"),
    ("train", "{db}", "--model", "wavenet", "--run", "{out}", "--config", "{missing}"),
    ("train", "{db}", "--model", "wavenet", "--run", "{ro}/run"),
    # generate
    *_numeric(GENERATE, "-n", ("0", "-1", "nan")), *_numeric(GENERATE, "--seconds"),
    *_numeric(GENERATE, "--temperature", ("0", "-1", "nan", "inf")),
    *_numeric(GENERATE, "--batch-size", ("-1", "nan")),
    (*GENERATE, "--format", "xyz"), (*GENERATE, "--label", "nope"), (*GENERATE, "--speaker", "nobody"),
    (*GENERATE, "--prompt", "{missing}"), (*GENERATE, "--plugin", "notaplugin"),
    ("generate", "{run}", "--out", "{file}", "-n", "1"), ("generate", "{run}", "--out", "{file}/g", "-n", "1"),
    ("generate", "{run}", "--out", "{ro}/g", "-n", "1", "--seconds", "0.2"),
    *[("generate", bad, "--out", "{out}", "-n", "1") for bad in BAD_CKPTS],
    *_numeric(GENERATE, "--steps", ("0", "-1", "nan", "1e9")), *_numeric(GENERATE, "--guidance"),
    ("generate", "nosuchmodel", "--out", "{out}", "-n", "1"),
    # train --init, vocode
    *[(*TRAIN, "--init", bad) for bad in BAD_CKPTS],
    ("vocode", "{file}", "--out", "{out}"), ("vocode", "{missing}", "--out", "{out}"),
    ("vocode", "{wav}", "--out", "{file}"), ("vocode", "{wav}", "--out", "{out}", "--vocoder", "nope"),
    ("vocode", "{wav}", "--out", "{ro}/v"),
    # evaluate
    ("evaluate", "{dir}", "--reference", "{dir}", "--seed", "-1"), ("evaluate", "{dir}"),
    ("evaluate", "{dir}", "--db", "{db}", "--reference", "{dir}"), ("evaluate", "{file}", "--db", "{db}"),
    ("evaluate", "{missing}", "--db", "{db}"), ("evaluate", "{dir}", "--reference", "{file}"),
    *[("evaluate", "{dir}", "--db", bad) for bad in BAD_DBS],
    ("evaluate", "{dir}", "--reference", "{dir}", "--json", "{file}/r.json"),
    # mark and detect
    *_numeric(("mark", "{wav}", "{out}.wav"), "--payload", ("-1", "65536", "nan", "1e9")),
    ("mark", "{wav}", "{ro}/m.wav"), ("mark", "{missing}", "{out}.wav"), ("mark", "{file}", "{out}.wav"),
    ("mark", "{wav}", "{out}.xyz"), ("mark", "{wav}"), ("mark", "{wav}", "{file}/m.wav"),
    ("detect", "{file}"), ("detect", "{dir}"), ("detect", "{missing}"),
    # interpolate
    *_numeric(("interpolate", "{run}", "--from", "1", "--to", "2", "--out", "{out}"), "--steps",
              ("0", "-1", "nan")),
    *[("interpolate", bad, "--from", "1", "--to", "2", "--out", "{out}") for bad in BAD_CKPTS],
    # pitch and transfer (a toy run is no DDSP run)
    *_numeric(("pitch", "{wav}", "--out", "{out}"), "--semitones", ("nan", "inf", "25", "-25", "1e9")),
    *_numeric(("pitch", "{wav}", "--out", "{out}"), "--formants", ("nan", "inf", "13", "-13")),
    ("pitch", "{missing}", "--out", "{out}"), ("pitch", "{file}", "--out", "{out}"),
    ("pitch", "{wav}", "--out", "{file}"), ("pitch", "{wav}", "--out", "{ro}/p"),
    ("transfer", "{run}", "{wav}", "--out", "{out}"), ("transfer", "{missing}", "{wav}", "--out", "{out}"),
    *[("transfer", bad, "{wav}", "--out", "{out}") for bad in BAD_CKPTS],
    # generate from a shipped name that is not there
    ("generate", "no-such-model", "--out", "{out}", "-n", "1"),
    # demo
    *_numeric(("demo", "--out", "{out}"), "--minutes", ("-1", "nan", "inf")),
    *_numeric(("demo", "--out", "{out}"), "-n", ("0", "-1", "nan")),
    ("demo", "--out", "{out}", "--seed", "-1"), ("demo", "--out", "{file}"),
]


@pytest.fixture(scope="module")
def things(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hostile")
    db = make_db(root, n=8)
    train(db, "toy_model:ToyModel", root / "run",
          sets=["steps=2", "workers=0", "batch_size=4", "preview_every=0", "valid_every=0", "warmup_steps=1"],
          progress=False)
    good = ckpt.resolve_path(root / "run")
    bad = root / "bad"
    bad.mkdir()
    data = good.read_bytes()
    (bad / "truncated_ckpt.pt").write_bytes(data[: len(data) // 2])
    (bad / "random_ckpt.pt").write_bytes(os.urandom(4096))
    ckpt.save({"format": ckpt.FORMAT, "weights": [1, 2, 3]}, bad / "foreign_ckpt.pt")
    state, _ = ckpt.load(good)
    ckpt.save({**state, "model_name": "wavenet",
               "config": {**state["config"], "model": {"residual_channels": 4096, "gate_channels": 8192,
                                                       "layers": 512, "stacks": 32}}}, bad / "huge_ckpt.pt")
    ckpt.save({**state, "model_name": "os:system"}, bad / "evil_ckpt.pt")
    for name in ("truncated_db", "foreign_db", "empty_catalog_db"):
        (bad / name).mkdir()
    (bad / "truncated_db" / "catalog.sqlite").write_bytes((db / "catalog.sqlite").read_bytes()[:100])
    con = sqlite3.connect(bad / "foreign_db" / "catalog.sqlite")
    con.execute("CREATE TABLE t (x)")
    con.close()
    (bad / "empty_catalog_db" / "catalog.sqlite").write_bytes(b"")
    (root / "dir").mkdir()
    for i in range(4):
        sf.write(str(root / "dir" / f"{i}.wav"), tone(300 + 50 * i, 8000, 0.5), 8000)
    (root / "notes.txt").write_text("not audio\n")
    return {"db": str(db), "run": str(root / "run"), "ckpt": str(good), "wav": str(root / "dir" / "0.wav"),
            "dir": str(root / "dir"), "file": str(root / "notes.txt"), "missing": str(root / "missing"),
            "ro": "/proc/wavesmith-hostile", "root": str(root),
            **{f"bad_{p.stem}": str(p) for p in bad.iterdir()}}


def _snapshot(root: str) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a).replace("{", "").replace("}", ""))
def test_bad_input_is_one_line_status_2_and_leaves_nothing(things, args, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [a.format(**things, out=out) for a in args]
    before = _snapshot(things["root"])
    rejected = _argparse_rejects(argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) if rejected else _no_exit() as caught:
        code = main(argv)
    if caught is not None:
        code = caught.value.code
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith("wavesmith: error")]
    assert code == 2, err
    assert len(lines) == 1 and len(err) == 1, err
    assert not any(p.exists() for p in (out, Path(f"{out}.wav"), Path(f"{out}.xyz"))), sorted(tmp_path.iterdir())
    after = _snapshot(things["root"])
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}


def _argparse_rejects(argv: list[str]) -> bool:
    """argparse exits (SystemExit 2) on values its types or choices refuse; the rest return 2."""
    from wavesmith.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return True
    return False


class _no_exit:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
