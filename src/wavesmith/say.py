"""Text to speech into marked files: ``wavesmith say --voice VOICE --out DIR TEXT...``.

The voice is a voice file made by ``wavesmith clone`` (:mod:`wavesmith.voice`) or the name
of a speaker the base model learned. The text is cut into sentences
(:func:`wavesmith.text.sentences`), one file each, and every file goes through
:func:`wavesmith.generate.save_clips` like all wavesmith output: a watermark in the
waveform, signed C2PA Content Credentials, a line in ``DIR/generated.jsonl`` (text, voice,
seed, language, speed, pitch). For a cloned voice the manifest also carries an
``org.wavesmith.voice`` assertion saying it is a clone, with the consent statement and the
reference recordings' hashes. Every sentence is spoken before the first file is written,
so a failure leaves ``DIR`` as it was.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import torch

from wavesmith import audio as A
from wavesmith import shipped, vocoder
from wavesmith import text as TX
from wavesmith import voice as V
from wavesmith import watermark as W
from wavesmith.errors import WavesmithError
from wavesmith.generate import check_output_folder, save_clips

ASSERTION = "org.wavesmith.voice"


def sentences_of(texts: list[str] | None = None, text_file: str | os.PathLike | None = None) -> list[str]:
    """The sentences to say: each of ``texts`` ends a sentence; ``text_file`` is read as UTF-8."""
    if text_file is not None:
        try:
            body = Path(text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise WavesmithError(f"cannot read --text-file {text_file}: {getattr(e, 'strerror', None) or e}") from None
    else:
        body = "\n\n".join(texts or [])
    found = TX.sentences(body)
    if not found:
        raise WavesmithError("nothing to say: the text is empty")
    return found


def resolve_voice(voice: str, base: str | None, device: str | None):
    """The base model with ``voice`` applied: ``(model, meta, speaker vector, facts for records and C2PA)``."""
    path = Path(voice)
    if path.is_file():
        state, digest = V.load_voice(path)
        model, meta = V.load_base(base or state["base"]["name"], device)
        s = V.apply_voice(model, meta, state, path.name)
        refs = [{"file": r["file"], "sha256": r["sha256"]} for r in state["references"]]
        facts = {"voice": path.name, "clone": True, "voice_sha256": digest, "consent": state["consent"],
                 "references": refs, "synthetic_references": state["synthetic_references"],
                 "created": state["created"], "base_sha256": state["base"]["sha256"]}
        return model, meta, s, facts, state.get("language")
    if path.suffix == V.SUFFIX or os.sep in voice:
        raise WavesmithError(f"no voice file {voice}")
    model, meta = V.load_base(base or V.DEFAULT_BASE, device)
    speakers = model.info.speakers
    if voice not in speakers:
        raise WavesmithError(f"{voice!r} is neither a voice file nor a speaker of {meta['base']}; known speakers: "
                             f"{', '.join(speakers) or 'none'}")
    name = base or V.DEFAULT_BASE
    if not Path(name).exists() and voice in shipped.card(name).get("untrained_speakers", []):
        raise WavesmithError(f"the {name} model never learned the voice of {voice} (its recordings have no "
                             "transcripts); choose another speaker")
    return model, meta, model.table_vector(speakers.index(voice)), {"voice": voice, "clone": False}, None


def say(
    voice: str,
    out_dir: str | os.PathLike,
    texts: list[str] | None = None,
    text_file: str | os.PathLike | None = None,
    language: str | None = None,
    speed: float = 1.0,
    pitch: float = 0.0,
    seed: int | None = None,
    base: str | None = None,
    format: str = "wav",
    device: str | None = None,
    vocoder_name: str | None = None,
) -> dict[str, Any]:
    """Say ``texts`` (or the text of ``text_file``) with ``voice`` into numbered files in ``out_dir``.

    ``voice``: a voice file, or a speaker of the base model. ``base`` defaults to the one the
    voice was cloned from (or the shipped ``speech`` model). ``language`` defaults to the
    voice's, then the base model's first. ``vocoder_name`` decodes with another vocoder than
    the base model's (a shipped name such as ``lj``, or a vocoder run).
    Returns ``{"files", "seconds", "realtime", ...}``.
    """
    fmt = A.check_format(format)
    found = sentences_of(texts, text_file)
    out = check_output_folder(out_dir)
    model, meta, s, facts, voice_language = resolve_voice(voice, base, device)
    language = language or voice_language or model.default_language
    model.language_id(language)  # an unknown language: one line listing the supported ones
    spoken = [t for t in found if model.phoneme_ids([t], [language])[0]]
    if not spoken:
        raise WavesmithError("nothing speakable in the text (no words espeak-ng can pronounce in "
                             f"{language})")
    skipped = len(found) - len(spoken)
    if skipped:
        print(f"wavesmith: warning: {skipped} sentence(s) with nothing speakable left out", file=sys.stderr)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    torch.manual_seed(seed)
    vocoder_name = vocoder_name or model.config.vocoder
    vocoder.load(vocoder_name, model.device)  # loaded before the clock starts (and refused before any work)
    started = time.monotonic()
    waves = [model.to_wave(model.synthesize([t], language, s, speed, pitch), vocoder_name)[0] for t in spoken]
    spent = time.monotonic() - started
    rate = model.info.sample_rate
    seconds = sum(w.shape[-1] for w in waves) / rate
    # A short sentence ("Yes.") is padded with silence to the watermark's shortest clip: every file is marked.
    shortest = round(W.MIN_SECONDS * rate * 1.2)
    waves = [torch.nn.functional.pad(w, (0, max(0, shortest - w.shape[-1]))) for w in waves]
    settings = {"language": language, "speed": speed, "pitch": pitch, "format": fmt, "vocoder": vocoder_name}
    paths = []
    for i, (sentence, wave) in enumerate(zip(spoken, waves, strict=True)):
        record = {"index": i, "text": sentence, "voice": facts["voice"], "clone": facts["clone"],
                  "voice_sha256": facts.get("voice_sha256"), "seed": seed, **settings, "model": meta["model_name"],
                  "checkpoint": meta["path"], "checkpoint_sha256": meta["sha256"], "step": meta["step"]}
        paths += save_clips(wave.reshape(1, 1, -1), rate, out, [record], format=fmt, model=meta["model_name"],
                            checkpoint_hash=meta["sha256"], assertions={ASSERTION: facts})
    return {"files": [str(p) for p in paths], "seconds": round(seconds, 2), "synthesis_seconds": round(spent, 2),
            "realtime": round(seconds / max(spent, 1e-6), 2), "language": language, "voice": facts["voice"]}
