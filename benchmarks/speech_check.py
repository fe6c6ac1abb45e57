"""How often :func:`wavesmith.vad.check_speech` accepts speech, music, noise and tones.

    python benchmarks/speech_check.py --json [--speech DIR] [--music DIR] [--excerpts 3]

``--speech``: a folder made by ``shared/tools/get-speech`` (``metadata.csv`` with
``path`` and ``speaker``); each speaker gives ``--excerpts`` excerpts of up to 15 s (8 random
clips with 0.25 s pauses, what a clone's references look like) and its clips one by one.
``--music``: a folder of music and sound samples (every file with at least 2 s of sound).
espeak-ng's speech (when installed) and synthetic noise, tones, chords and notes are
always measured. Prints the share accepted per set and the names of misjudged files.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RATE = 16000
SENTENCE = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
            "Nothing is so painful to the human mind as a great and sudden change.")


def synthetic() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 6) / RATE
    notes = [220, 247, 262, 294, 330, 349, 392, 440, 494, 523, 587, 659]
    return {
        "white noise": 0.3 * rng.standard_normal(len(t)),
        "brown noise": np.cumsum(rng.standard_normal(len(t))) * 0.003,
        "noise bursts at 4 Hz": 0.3 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 4 * t) > 0),
        "tone 220 Hz": 0.5 * np.sin(2 * np.pi * 220 * t),
        "tone at 4 Hz tremolo": 0.4 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)),
        "C major chord": sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
        "sweep": 0.4 * np.sin(2 * np.pi * (100 * t + 20 * t**2)),
        "scale of notes": np.concatenate([0.4 * np.sin(2 * np.pi * f * t[: RATE // 2]) for f in notes]),
        "silence": np.zeros(len(t)),
        "hum -70 dBFS": 3e-4 * np.sin(2 * np.pi * 50 * t),
    }


def espeak(tmp: Path) -> dict[str, np.ndarray]:
    from wavesmith import audio as A

    if not shutil.which("espeak-ng"):
        return {}
    out = {}
    for voice in ("en-us", "en-us+f3", "en-gb+m3", "fr-fr", "de", "es"):
        path = tmp / f"{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), SENTENCE], check=True, capture_output=True)
        out[f"espeak-ng {voice}"] = A.load(path, RATE, 1)[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speech", type=Path, help="folder of get-speech (metadata.csv)")
    ap.add_argument("--music", type=Path, help="folder of music and sound samples")
    ap.add_argument("--excerpts", type=int, default=3, help="excerpts per speaker (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    from wavesmith import audio as A
    from wavesmith import vad

    random.seed(0)
    sets: dict[str, dict[str, np.ndarray]] = {"synthetic": synthetic()}
    with tempfile.TemporaryDirectory() as tmp:
        sets["espeak-ng"] = espeak(Path(tmp))
    if args.speech:
        rows = list(csv.DictReader(open(args.speech / "metadata.csv", encoding="utf-8")))
        by: dict[str, list[str]] = {}
        for r in rows:
            by.setdefault(r["speaker"], []).append(r["path"])
        excerpts, clips = {}, {}
        for speaker, paths in sorted(by.items()):
            for k in range(args.excerpts):
                pieces = []
                for p in random.sample(paths, min(8, len(paths))):
                    pieces += [A.load(args.speech / p, RATE, 1)[0], np.zeros(RATE // 4, np.float32)]
                excerpts[f"{speaker} #{k}"] = np.concatenate(pieces)[: 15 * RATE]
            for p in random.sample(paths, min(5, len(paths))):
                clips[p] = A.load(args.speech / p, RATE, 1)[0]
        sets["speech excerpts"], sets["speech clips"] = excerpts, clips
    if args.music:
        music = {}
        for p in sorted(args.music.iterdir()):
            if p.suffix.lower() in A.AUDIO_EXTENSIONS:
                x = A.load(p, RATE, 1)[0]
                if vad.analyse(x, RATE).seconds >= 2.0:
                    music[p.name] = x
        sets["music"] = music
    result = {}
    for name, items in sets.items():
        verdicts = {k: vad.analyse(x, RATE).problem() for k, x in items.items()}
        accepted = [k for k, v in verdicts.items() if v is None]
        speechy = name.startswith(("speech", "espeak"))
        result[name] = {"files": len(items), "accepted": len(accepted),
                        "accepted_share": round(len(accepted) / max(1, len(items)), 3),
                        "misjudged": sorted(set(items) - set(accepted)) if speechy else accepted}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, r in result.items():
            print(f"{name:16s} {r['accepted']:4d}/{r['files']:<4d} accepted; misjudged: {', '.join(r['misjudged'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
