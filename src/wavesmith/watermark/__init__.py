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

import numpy as np

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.files import atomic_path
from wavesmith.watermark import spread_detect
from wavesmith.watermark.credentials import read_manifest, sign_file
from wavesmith.watermark.spread import BAND_HZ, DEFAULT_KEY, MIN_SECONDS
from wavesmith.watermark.spread_detect import Detection
from wavesmith.watermark.spread_embed import embed

# detect_file reads this much of a file: a mark (periodic, repeated through the file) is found
# in any few seconds of it, and memory and time stay bounded on an hours-long recording.
DETECT_SECONDS = 600.0

__all__ = [
    "MIN_SECONDS",
    "Detection",
    "check_file",
    "check_problem",
    "describe",
    "detect",
    "detect_file",
    "embed",
    "mark_file",
    "payload_for",
    "read_manifest",
    "sign_file",
    "write_signed",
]


def clean(audio: np.ndarray) -> np.ndarray:
    """Samples a detector can trust: NaN and inf set to 0, outliers clipped.

    One NaN, inf or 1e4 sample (a float file edited by hand or by a broken tool) would
    otherwise dominate every statistic and hide the mark. Samples beyond full scale and
    four times the file's 99.9th percentile level are clipped there, so a file that is
    loud throughout (a float file at +6 dB) is left as it is.
    """
    x = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if x.size == 0:
        return x
    mag = np.abs(x)
    limit = max(1.0, 4.0 * float(np.quantile(mag, 0.999)))
    return np.clip(x, -limit, limit) if float(mag.max()) > limit else x


def detect(audio: np.ndarray, sample_rate: int, key: str = DEFAULT_KEY) -> Detection:
    """Look for the watermark in ``audio`` (C, T) after :func:`clean`; never raises for short audio."""
    return spread_detect.detect(clean(audio), sample_rate, key)


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
    force: bool = False,
) -> dict:
    """Watermark ``src`` into ``dst`` (may be the same path) and sign it with C2PA.

    Audio that already carries a wavesmith mark is refused unless ``force``: a second mark
    over the first would blur both payloads, and the file already says what it is.

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
    if not force:
        found = detect(x, rate)
        if found.present:
            raise WavesmithError(f"{src} already carries a wavesmith watermark (payload {found.payload}); "
                                 "pass --force to mark it again")
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
    assertions: dict[str, dict] | None = None,
) -> dict:
    """Write ``audio`` to ``dst`` under a temporary name, read its watermark back
    (:func:`check_file`, when ``payload`` is given) and sign it, then rename: a file at
    ``dst`` is always complete. ``assertions`` go into the C2PA manifest (:func:`sign_file`).
    Returns :func:`sign_file`'s result plus ``check`` (or None).
    """
    with atomic_path(dst) as tmp:
        A.write(tmp, audio, rate, format=fmt)
        check = check_file(tmp, payload) if payload is not None else None
        signed = sign_file(tmp, model=model, checkpoint_hash=checkpoint_hash, title=dst.name, assertions=assertions)
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
    x, rate = A.read(path, max_seconds=DETECT_SECONDS)
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
        "duration": round(x.shape[-1] / rate, 3),  # of the audio checked: at most DETECT_SECONDS
        "truncated": x.shape[-1] >= DETECT_SECONDS * rate,  # the file is longer; only its start was checked
        "windows": d.windows,
        "c2pa": read_manifest(path),
    }


def describe(r: dict) -> tuple[str, str]:
    """:func:`detect_file`'s findings as ``detect`` prints them: ``(the watermark's, the C2PA manifest's)``."""
    c2 = r["c2pa"]
    c2s = f"C2PA {c2['validation_state']}" if c2 else "no C2PA manifest"
    failures = (c2.get("validation_failures") or []) if c2 else []
    # The real reason first (a data-hash mismatch means the audio was changed after signing).
    reasons = [f for f in failures if f != "signingCredential.untrusted"]
    if reasons:
        c2s += f" ({', '.join(reasons)})"
    if "signingCredential.untrusted" in failures:
        c2s += " (signer not in a trust list)"
    if r.get("truncated"):
        c2s += f"; only the first {r['duration']:g} s were checked for the watermark"
    if r["watermark"]:
        spans = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in r["segments"])
        mark = (f"watermark, payload {r['payload']}, confidence {r['confidence']:.4f} "
                f"(z {r['z']:.1f} >= {r['threshold']:.1f}) in {spans or 'the whole file'}")
    else:
        mark = f"no watermark (z {r['z']:.1f} < {r['threshold']:.1f})"
    return mark, c2s
