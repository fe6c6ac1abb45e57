"""Marking everything wavesmith makes, and finding the mark again.

Two independent marks (EU AI Act Article 50 asks for machine-readable marking of
synthetic audio):

- a watermark inside the waveform (:mod:`wavesmith.watermark.spread`) carrying a 16-bit
  payload, which survives codecs, resampling, noise, gain, crops and shifts;
- signed C2PA Content Credentials in the file (:mod:`wavesmith.watermark.credentials`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.files import atomic_path
from wavesmith.watermark.credentials import read_manifest, sign_file
from wavesmith.watermark.spread import BAND_HZ, MIN_SECONDS
from wavesmith.watermark.spread_detect import Detection, detect
from wavesmith.watermark.spread_embed import embed

__all__ = [
    "MIN_SECONDS",
    "Detection",
    "check_file",
    "check_problem",
    "detect",
    "detect_file",
    "embed",
    "mark_file",
    "payload_for",
    "read_manifest",
    "sign_file",
    "write_signed",
]


def payload_for(text: str) -> int:
    """A stable 16-bit payload for a model or run id (first two bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:2], "big")


def mark_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    payload: int = 0,
    *,
    model: str | None = None,
    checkpoint_hash: str | None = None,
) -> dict:
    """Watermark ``src`` into ``dst`` (may be the same path) and sign it with C2PA.

    ``dst`` is written through a temporary file and a rename, so ``src`` is untouched
    unless it is ``dst``, and then only replaced once the marked file is complete.
    The output format follows ``dst``'s extension when wavesmith can write it, else
    WAV. The written file is read back and checked (:func:`check_file`). Returns
    ``{"file", "payload", "signed", "reason", "verified", "check"}``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise WavesmithError(f"{src}: no such file")
    x, rate = A.read(src)
    if x.size == 0:
        raise WavesmithError(f"{src} holds no audio")
    y = embed(x, rate, payload)
    fmt = A.check_format(dst.suffix, f"cannot write {dst}: ")
    result = write_signed(dst, y, rate, fmt, payload, model=model, checkpoint_hash=checkpoint_hash)
    return {"file": str(dst), "payload": int(payload), **result, "verified": result["check"]["verified"]}


def write_signed(
    dst: Path,
    audio,
    rate: int,
    fmt: str,
    payload: int | None,
    *,
    model: str | None = None,
    checkpoint_hash: str | None = None,
) -> dict:
    """Write ``audio`` to ``dst`` under a temporary name, read its watermark back
    (:func:`check_file`, when ``payload`` is given) and sign it, then rename: a file at
    ``dst`` is always complete. Returns :func:`sign_file`'s result plus ``check`` (or None).
    """
    with atomic_path(dst) as tmp:
        A.write(tmp, audio, rate, format=fmt)
        check = check_file(tmp, payload) if payload is not None else None
        signed = sign_file(tmp, model=model, checkpoint_hash=checkpoint_hash, title=dst.name)
    return {**signed, "check": check}


def check_file(path: str | os.PathLike, payload: int) -> dict:
    """Read back a file just marked with ``payload`` and say whether its watermark is found.

    Audio with little in the mark's band (a pure high tone, a sub-bass boom) or a clip
    just long enough can hold a mark too weak to find or with payload bits wrong; the
    writer should say so rather than let the user assume the file is marked. Returns
    ``{"verified", "present", "payload", "z", "threshold"}``.
    """
    x, rate = A.read(path)
    d = detect(x, rate)
    return {
        "verified": bool(d.present and d.payload == int(payload)),
        "present": d.present,
        "payload": d.payload,
        "z": d.z,
        "threshold": d.threshold,
    }


def check_problem(check: dict, payload: int) -> str | None:
    """One line on what :func:`check_file` found wrong, or None when the mark is verified."""
    if check["verified"]:
        return None
    if not check["present"]:
        return (
            f"its watermark cannot be found in the written file (z {check['z']:.1f} < {check['threshold']:.1f}); "
            f"most often too little of the audio lies in {BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz, where the mark lives"
        )
    return (
        f"its watermark is found but its payload reads {check['payload']}, not {int(payload)}: "
        "too little of the audio carries the mark for all 16 bits (a short clip, or one mostly outside "
        f"{BAND_HZ[0]:.0f}-{BAND_HZ[1]:.0f} Hz)"
    )


def detect_file(path: str | os.PathLike) -> dict:
    """Watermark and C2PA findings for one file, as ``wavesmith detect --json`` prints them."""
    path = Path(path)
    if not path.is_file():
        raise WavesmithError(f"{path}: no such file")
    x, rate = A.read(path)
    if x.size == 0:
        raise WavesmithError(f"{path} holds no audio")
    d = detect(x, rate)
    return {
        "file": str(path),
        "watermark": d.present,
        "confidence": d.confidence,
        "payload": d.payload,
        "segments": [list(s) for s in d.segments],
        "z": d.z,
        "threshold": d.threshold,
        "duration": round(x.shape[-1] / rate, 3),
        "windows": d.windows,
        "c2pa": read_manifest(path),
    }
