"""What the studio's tabs do, as plain functions that return data: the page is only a face over these.

Each function takes the studio's root folder and paths relative to it (resolved by
:func:`wavesmith.studio.paths.inside`), calls the same wavesmith API as the CLI does
(``Database``, ``generate``, ``evaluate``, ``pitch_files``, ``transfer``, ``detect_file``)
and returns dicts, lists and arrays; nothing here imports Gradio, so it is tested without
a browser. A user's mistake raises :class:`WavesmithError`, which the page shows as a message.

What the page makes goes under ``ROOT/studio/``: one new folder per job (``generate-...``,
``pitch-...``, ``evaluate-...``) and ``uploads/`` for the inputs of transforms, so every
output keeps its record of where it came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from wavesmith.errors import WavesmithError
from wavesmith.studio.paths import inside, relative

OUTPUT = "studio"  # ROOT/studio: what the page makes
MAX_UPLOAD_BYTES = 200 * 2**20  # an upload larger than this is refused before it is decoded
MAX_LISTEN_SECONDS = 10.0  # clips played in the Database tab are cut to this
SEARCH_DEPTH = 4  # how deep under the root databases, runs and generated folders are looked for


# --- finding things under the root ------------------------------------------------------------


def _walk(root: Path, depth: int = SEARCH_DEPTH):
    """Folders under ``root`` (itself included), breadth first, never through a link."""
    level = [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in level:
            yield folder
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            nxt += [p for p in children if not p.name.startswith(".")]
        level = nxt


def find(root: str | os.PathLike, what: str) -> list[str]:
    """Folders under ``root`` holding a database (``what="db"``), a run (``"run"``) or generated files
    (``"generated"``), as paths relative to the root."""
    marker = {"db": "catalog.sqlite", "run": "config.toml", "generated": "generated.jsonl"}[what]
    base = Path(root).resolve()
    return [relative(base, p) for p in _walk(base) if (p / marker).is_file()]


def models(root: str | os.PathLike) -> list[str]:
    """What Generate can sample: the shipped models' names (but timbres, which play a melody), then the runs."""
    return _shipped_then_runs(root, timbre=False)


def timbres(root: str | os.PathLike) -> list[str]:
    """What Transform can play a melody with: the shipped DDSP timbres, then the runs under the root."""
    return _shipped_then_runs(root, timbre=True)


def _shipped_then_runs(root: str | os.PathLike, timbre: bool) -> list[str]:
    """Shipped models that are (or are not) DDSP timbres, then the runs under the root no shipped name shadows."""
    from wavesmith import shipped

    names = shipped.names()
    return [n for n in names if (shipped.card(n)["model"] == "ddsp") == timbre] + \
        [r for r in find(root, "run") if r not in names]


def vocoders() -> list[str]:
    """The shipped vocoders a mel-domain model may decode with (besides its own, the empty choice)."""
    from wavesmith import vocoder as V

    return list(V.SHIPPED)


def _shipped_or_under_root(root: str | os.PathLike, name: str | None, shipped: set[str]) -> str | None:
    """A choice that names a shipped thing or a file under the root: empty stays None, a name in
    ``shipped`` stays as it is unless a folder or file of that name under the root shadows it,
    anything else must be a path inside the root."""
    if not name or (name in shipped and not (Path(root) / name).exists()):
        return name or None
    return str(inside(root, name, exists=True))


def _vocoder(root: str | os.PathLike, name: str | None) -> str | None:
    """A vocoder choice: empty (the model's own), a shipped name, or a vocoder run under the root."""
    from wavesmith import vocoder as V

    return _shipped_or_under_root(root, name, set(V.SHIPPED))


def _checkpoint(root: str | os.PathLike, name: str) -> Path:
    """The checkpoint file a model choice names: a shipped model, or a run folder / checkpoint under the root."""
    from wavesmith import checkpoint as ckpt
    from wavesmith import shipped

    if not name:
        raise WavesmithError("choose a model: a shipped one or a run under the root")
    if name in shipped.names() and not (Path(root) / name).exists():
        return shipped.path(name)  # the package's own file: no folder of the server's cwd can shadow it
    return ckpt.resolve_path(inside(root, name, exists=True))


def model_conditions(root: str | os.PathLike, name: str) -> dict[str, Any]:
    """What a model can be asked for: its ``model`` name, ``labels``, ``speakers`` and sampler ``options``."""
    from wavesmith import checkpoint as ckpt
    from wavesmith import models as M

    state, _ = ckpt.load(_checkpoint(root, name))
    info = state["data_info"]
    cls = M.get(state["model_name"])
    return {"model": state["model_name"], "labels": list(info.get("labels", [])),
            "speakers": list(info.get("speakers", [])), "options": sorted(cls.sample_options),
            "sample_rate": info["sample_rate"]}


def new_output(root: str | os.PathLike, kind: str) -> Path:
    """A new folder name ``ROOT/studio/<kind>-<date>-<time>-<random>`` (not made yet)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return inside(root, f"{OUTPUT}/{kind}-{stamp}-{secrets.token_hex(2)}")


def _records(folder: Path) -> list[dict]:
    from wavesmith.generate import RECORDS

    path = folder / RECORDS
    return [json.loads(s) for s in path.read_text(encoding="utf-8").splitlines() if s.strip()] if path.exists() else []


def _made(root, folder: Path, paths: list[Path]) -> dict[str, Any]:
    """What a job that wrote marked files returns: the folder, files, their records and spectrograms."""
    from wavesmith import audio as A
    from wavesmith.plot import spectrogram_png

    clips = []
    for p in paths:
        x, rate = A.read(p)
        clips.append({"file": str(p), "name": p.name, "sample_rate": rate, "seconds": round(x.shape[-1] / rate, 3),
                      "spectrogram_png": spectrogram_png(x, rate)})
    from wavesmith.generate import RECORDS

    return {"folder": relative(root, folder), "path": str(folder), "files": [str(p) for p in paths],
            "records_file": str(folder / RECORDS), "records": _records(folder), "clips": clips}


# --- Database ------------------------------------------------------------------------------------


def database_summary(root: str | os.PathLike, db: str) -> dict[str, Any]:
    """``db info`` and ``db errors`` of a database under the root."""
    from wavesmith.db import Database

    with Database.open(inside(root, db, exists=True)) as d:
        info, errors = d.info(), d.errors()
    info["path"] = db
    return {"info": info, "errors": errors}


def random_clips(root: str | os.PathLike, db: str, n: int = 3, split: str | None = None,
                 seed: int | None = None) -> list[dict[str, Any]]:
    """``n`` clips drawn at random: their catalog facts, audio (at most 10 s) and spectrogram PNG."""
    from wavesmith.db import SPLITS, Database
    from wavesmith.plot import spectrogram_png

    if split not in (None, "", *SPLITS):
        raise WavesmithError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    with Database.open(inside(root, db, exists=True)) as d:
        clips = d.clips(split or None)
        if not clips:
            where = f" in {split}" if split else ""
            raise WavesmithError(f"{db} holds no clips{where}; add some with `wavesmith db add`")
        chosen = random.Random(seed).sample(clips, min(max(1, int(n)), len(clips)))
        out = []
        for c in chosen:
            x = d.audio(c.id, max_seconds=MAX_LISTEN_SECONDS)
            out.append({"id": c.id, "label": c.label, "speaker": c.speaker, "split": c.split,
                        "duration": round(c.duration, 3), "source": os.path.basename(c.source),
                        "sample_rate": d.sample_rate, "audio": x, "spectrogram_png": spectrogram_png(x, d.sample_rate)})
    return out


# --- Generate ------------------------------------------------------------------------------------


def generate_clips(root: str | os.PathLike, model: str, n: int = 1, seconds: float | None = None,
                   label: str | None = None, speaker: str | None = None, seed: int | None = None,
                   temperature: float = 1.0, steps: int | None = None, guidance: float | None = None,
                   out: str | None = None, progress: bool = False, vocoder: str | None = None) -> dict[str, Any]:
    """:func:`wavesmith.generate.generate` into a new folder under ``ROOT/studio`` (or ``out``).

    ``vocoder``: for mel-domain models, a shipped vocoder or a vocoder run under the root
    (empty: the model's own)."""
    from wavesmith.generate import generate

    path = _checkpoint(root, model)
    folder = inside(root, out) if out else new_output(root, "generate")
    options = {"steps": int(steps) if steps else None, "guidance": guidance, "vocoder": _vocoder(root, vocoder)}
    paths = generate(path, folder, n=int(n), seconds=seconds or None, label=label or None, speaker=speaker or None,
                     seed=None if seed is None or seed == "" else int(seed), temperature=float(temperature),
                     options=options, progress=progress)
    return _made(root, folder, paths)


# --- uploads, Detect and Transform ------------------------------------------------------------------


def check_upload(path: str | os.PathLike, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[np.ndarray, int]:
    """An uploaded or recorded file, decoded through ``db add``'s checked path (:func:`decode_file`)."""
    from wavesmith.db.decode import decode_file

    if not path:
        raise WavesmithError("upload or record a file first")
    p = Path(path)
    if not p.is_file():
        raise WavesmithError(f"{p.name}: the upload is gone; upload it again")
    size = p.stat().st_size
    if size > max_bytes:
        raise WavesmithError(f"{p.name} is {size / 2**20:.0f} MiB; the studio takes files up to "
                             f"{max_bytes / 2**20:.0f} MiB")
    x, rate = decode_file(p)
    if not np.any(x):
        raise WavesmithError(f"{p.name} is silent (every sample is zero): nothing to work on")
    return x, rate


def store_upload(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Check an upload and keep a copy in ``ROOT/studio/uploads`` (named by its content), for records to cite."""
    check_upload(path)
    p = Path(path)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", p.name).lstrip(".") or "upload"
    target = inside(root, f"{OUTPUT}/uploads/{digest}-{name}")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(p, tmp)
        os.replace(tmp, target)
    return target


def detect_upload(path: str | os.PathLike) -> dict[str, Any]:
    """``wavesmith detect`` on an uploaded file, with its findings in plain words under ``words``."""
    from wavesmith.watermark import describe, detect_file

    check_upload(path)
    r = detect_file(path)
    r["file"] = Path(path).name
    mark, c2s = describe(r)
    words = []
    if r["watermark"]:
        spans = ", ".join(f"{a:.2f} to {b:.2f} s" for a, b in r["segments"]) or "the whole file"
        words.append(f"Marked: this file carries wavesmith's watermark, so a wavesmith model (or `wavesmith mark`) "
                     f"made it. Payload {r['payload']} (it names the model that made it), confidence "
                     f"{r['confidence']:.4f}; the mark lies in {spans}.")
    else:
        words.append("Not marked: no wavesmith watermark was found. (A file can still be machine-made by other "
                     "tools, or have lost the mark through heavy editing.)")
    c2 = r["c2pa"]
    if not c2:
        words.append("No Content Credentials (C2PA manifest) in the file.")
    else:
        state = c2.get("validation_state")
        who = c2.get("signer") or "an unknown signer"
        what = " (made by a trained model)" if str(c2.get("digital_source_type", "")).endswith(
            "trainedAlgorithmicMedia") else ""
        model = f", model {c2['model']}" if c2.get("model") else ""
        words.append(f"Content Credentials: signed by {who}{what}{model}; validation: {state}.")
        failures = [f for f in c2.get("validation_failures") or [] if f != "signingCredential.untrusted"]
        if failures:
            words.append(f"The credentials do not match the file ({', '.join(failures)}): it was changed after "
                         "signing.")
        elif "signingCredential.untrusted" in (c2.get("validation_failures") or []):
            words.append("The signature is intact; the signer is not in a public trust list (wavesmith signs with "
                         "a local key).")
    r["summary"] = f"{mark}; {c2s}"
    r["words"] = words
    return r


def pitch_upload(root: str | os.PathLike, path: str | os.PathLike, semitones: float = 0.0, formants: float = 0.0,
                 tracker: str = "dio-yin") -> dict[str, Any]:
    """``wavesmith pitch`` on an upload, into a new ``ROOT/studio/pitch-...`` folder."""
    from wavesmith.pitch import PitchSettings, pitch_files

    settings = PitchSettings(semitones=float(semitones), formants=float(formants), tracker=tracker)
    settings.check()  # before the upload is kept
    source = store_upload(root, path)
    folder = new_output(root, "pitch")
    return _made(root, folder, pitch_files([source], folder, settings))


def transfer_upload(root: str | os.PathLike, run: str, path: str | os.PathLike, semitones: float = 0.0,
                    loudness_db: float = 0.0, label: str | None = None) -> dict[str, Any]:
    """``wavesmith transfer`` (a shipped timbre or a DDSP run under the root) on an upload, into
    ``ROOT/studio/transfer-...``."""
    from wavesmith.transfer import TransferSettings, transfer

    if not run:
        raise WavesmithError("timbre transfer needs a timbre: a shipped one, or a DDSP run under the root "
                             "(train one in the Train tab with model ddsp)")
    settings = TransferSettings(semitones=float(semitones), loudness_db=float(loudness_db), label=label or None)
    settings.check()
    run_path = _checkpoint(root, run)
    source = store_upload(root, path)
    folder = new_output(root, "transfer")
    return _made(root, folder, transfer(run_path, [source], folder, settings))


# --- Evaluate ------------------------------------------------------------------------------------


def evaluate_folder(root: str | os.PathLike, folder: str, db: str, split: str = "test", log=None,
                    reference_seconds: float | None = None) -> dict[str, Any]:
    """``wavesmith evaluate FOLDER --db DB [--reference-seconds S]`` with its JSON and HTML report in a new
    ``ROOT/studio/evaluate-...`` (``reference_seconds`` 0 or None: whole clips)."""
    from wavesmith.evaluate import evaluate, format_table

    gen = inside(root, folder, exists=True)
    if not gen.is_dir():
        raise WavesmithError(f"{folder} is not a folder; choose a folder of generated files")
    out = new_output(root, "evaluate")
    out.mkdir(parents=True)
    result = evaluate(gen, db=inside(root, db, exists=True), split=split, json_path=out / "evaluate.json",
                      report_path=out / "report.html", log=log, reference_seconds=reference_seconds or None)
    return {"folder": relative(root, out), "report": str(out / "report.html"), "table": format_table(result),
            "html": (out / "report.html").read_text(encoding="utf-8"), "result": result}


# --- Voice ---------------------------------------------------------------------------------------

VOICE_NEEDS = ("Voice cloning and text to speech are not in this wavesmith (issue 14: a voice from 15 seconds). "
               "This tab lights up once `wavesmith.voice` (clone) and `wavesmith.say` (say) are installed.")


def voice_available() -> bool:
    """Whether this wavesmith has ``clone`` (:mod:`wavesmith.voice`) and ``say`` (:mod:`wavesmith.say`)."""
    return all(importlib.util.find_spec(f"wavesmith.{m}") is not None for m in ("voice", "say"))


def voice_bases(root: str | os.PathLike) -> list[str]:
    """Base speech models to clone from or speak with: the shipped default, then the runs under the root."""
    from wavesmith.voice import DEFAULT_BASE

    return [DEFAULT_BASE] + find(root, "run")


def voices(root: str | os.PathLike) -> list[str]:
    """Voice files under the root (``wavesmith clone`` output), as relative paths."""
    from wavesmith.voice import SUFFIX

    base = Path(root).resolve()
    return [relative(base, f) for d in _walk(base) for f in sorted(d.glob(f"*{SUFFIX}")) if f.is_file()]


def _base(root: str | os.PathLike, base: str | None) -> str | None:
    """A base model choice: the shipped name as it is, else a run or checkpoint under the root."""
    from wavesmith import shipped
    from wavesmith.voice import DEFAULT_BASE

    return _shipped_or_under_root(root, base, {DEFAULT_BASE, *shipped.names()})


def voice_clone(root: str | os.PathLike, path: str | os.PathLike, consent: str, name: str,
                base: str | None = None, transcript: str | None = None,
                language: str | None = None) -> dict[str, Any]:
    """``wavesmith clone AUDIO --out ROOT/studio/voices/NAME.voice --consent TEXT`` (:func:`wavesmith.voice.clone`)."""
    if not voice_available():
        raise WavesmithError(VOICE_NEEDS)
    from wavesmith.voice import DEFAULT_BASE, SUFFIX, clone

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name or ""):
        raise WavesmithError("name the voice with letters, digits, '.', '_' or '-' (at most 64)")
    check_upload(path)
    out = inside(root, f"{OUTPUT}/voices/{name}{SUFFIX}")
    # The recording is not kept (the voice file holds its hash): a person's voice stays only where they consented.
    r = clone([path], out, consent, texts=[transcript.strip()] if (transcript or "").strip() else None,
              language=language or None, base=_base(root, base) or DEFAULT_BASE)
    return {**r, "voice": relative(root, out)}


def voice_say(root: str | os.PathLike, text: str, voice: str, base: str | None = None, language: str | None = None,
              speed: float = 1.0, pitch: float = 0.0, seed: int | None = None,
              vocoder: str | None = None) -> dict[str, Any]:
    """``wavesmith say --voice VOICE --out ROOT/studio/say-... TEXT`` (:func:`wavesmith.say.say`)."""
    if not voice_available():
        raise WavesmithError(VOICE_NEEDS)
    from wavesmith.say import say
    from wavesmith.voice import SUFFIX

    if not (text or "").strip():
        raise WavesmithError("type some text to say")
    if not voice:
        raise WavesmithError("choose a voice: a cloned voice file or a speaker of the base model")
    # a voice file lives under the root; anything else names a speaker of the base model
    target = str(inside(root, voice, exists=True)) if voice.endswith(SUFFIX) or "/" in voice else voice
    folder = new_output(root, "say")
    r = say(target, folder, texts=[text.strip()], language=language or None, speed=float(speed),
            pitch=float(pitch), seed=seed, base=_base(root, base), vocoder_name=_vocoder(root, vocoder))
    return _made(root, folder, [Path(f) for f in r["files"]])
