"""Render labelled one-shots from a General MIDI soundfont with fluidsynth, for training.

    python scripts/ship/render_soundfont.py drums SF2 OUT [--rate 22050]
    python scripts/ship/render_soundfont.py instruments SF2 OUT [--rate 22050]

``drums``: every General MIDI percussion key of the soundfont's eight drum kits (bank 128)
at four velocities, labelled by kit piece (kick, snare, clap, hihat, tom, cymbal, perc).
``instruments``: notes across each instrument's range at three velocities, labelled by
General MIDI family (piano, organ, guitar, bass, strings, brass, reed, pipe, ...).

Each note is normalised to a peak of -1 dBFS (velocity still changes its timbre). Writes
``OUT/<label>/<name>.wav`` and ``OUT/metadata.csv`` (``path,label``) for
``wavesmith db add --manifest``. Each note is rendered alone (one MIDI file per batch of
notes, spaced far enough apart that no tail reaches the next), dry: reverb and chorus off.
"""

from __future__ import annotations

import argparse
import csv
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

DRUM_KITS = {0: "standard", 8: "room", 16: "power", 24: "electronic", 25: "tr808", 32: "jazz", 40: "brush",
             48: "orchestra"}
# General MIDI percussion keys by kit piece (GM 1 sound set, keys 35-81).
PIECES = {
    "kick": (35, 36),
    "snare": (38, 40),
    "clap": (39,),
    "hihat": (42, 44, 46),
    "tom": (41, 43, 45, 47, 48, 50),
    "cymbal": (49, 51, 52, 55, 57, 59),
    "perc": (37, 54, 56, 60, 61, 62, 63, 64, 65, 66, 67, 68, 75, 76, 77),
}
# General MIDI program families (programs 8k..8k+7) that play sustained or plucked notes.
FAMILIES = {0: "piano", 1: "chromatic", 2: "organ", 3: "guitar", 4: "bass", 5: "strings", 7: "brass", 8: "reed",
            9: "pipe"}
SLOT_SECONDS = 4.0  # one note every 4 s: tails die away before the next note
NOTE_SECONDS = {"drums": 0.2, "instruments": 1.0}  # key held this long


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_file(notes: list[tuple[int, int, int, int]], hold: float) -> bytes:
    """A format-0 MIDI file playing ``(channel, program, key, velocity)`` one per slot (120 bpm)."""
    tpq = 480  # ticks per quarter note; at 120 bpm a second is 960 ticks
    per_second = 2 * tpq
    events = bytearray()
    last = 0
    for i, (channel, program, key, velocity) in enumerate(notes):
        start = round(i * SLOT_SECONDS * per_second)
        events += _vlq(start - last) + bytes([0xC0 | channel, program])
        events += _vlq(0) + bytes([0x90 | channel, key, velocity])
        events += _vlq(round(hold * per_second)) + bytes([0x80 | channel, key, 0])
        last = start + round(hold * per_second)
    events += _vlq(round(SLOT_SECONDS * per_second)) + b"\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(events)) + bytes(events))


def render(sf2: Path, notes, hold: float, rate: int) -> list[np.ndarray]:
    """Each note's slot as a mono float32 clip, trimmed of trailing silence."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        mid.write_bytes(midi_file(notes, hold))
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(rate), "-o", "synth.reverb.active=0",
                        "-o", "synth.chorus.active=0", "-F", str(wav), str(sf2), str(mid)],
                       check=True, capture_output=True)
        audio, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    slot = round(SLOT_SECONDS * rate)
    clips = []
    for i in range(len(notes)):
        x = mono[i * slot:(i + 1) * slot]
        loud = np.flatnonzero(np.abs(x) > 10 ** (-60 / 20) * max(1e-9, np.abs(x).max()))
        clips.append(x[: loud[-1] + 1] if len(loud) else x[:0])
    return clips


def drum_notes():
    for program, kit in DRUM_KITS.items():
        for piece, keys in PIECES.items():
            for key in keys:
                for velocity in (50, 80, 105, 127):
                    yield (9, program, key, velocity), piece, f"{kit}-{key}-v{velocity}"


def instrument_notes():
    for family, name in FAMILIES.items():
        for program in range(8 * family, 8 * family + 8, 2):  # every other program of the family
            low, high = (28, 60) if name == "bass" else (48, 84)
            for key in range(low, high + 1, 5):
                for velocity in (60, 90, 120):
                    yield (0, program, key, velocity), name, f"p{program:03d}-{key}-v{velocity}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["drums", "instruments"])
    ap.add_argument("sf2", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rate", type=int, default=22050)
    args = ap.parse_args()
    items = list(drum_notes() if args.kind == "drums" else instrument_notes())
    rows = []
    batch = 64
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        clips = render(args.sf2, [n for n, _, _ in chunk], NOTE_SECONDS[args.kind], args.rate)
        for (_, label, name), clip in zip(chunk, clips, strict=True):
            if len(clip) < args.rate // 50:  # the soundfont has no sample on this key
                continue
            clip = clip * (0.9 / max(1e-6, float(np.abs(clip).max())))  # every note at -1 dBFS peak
            path = args.out / label / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), clip, args.rate, subtype="PCM_16")
            rows.append((path.relative_to(args.out).as_posix(), label))
    with open(args.out / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    print(f"{len(rows)} clips in {args.out}")


if __name__ == "__main__":
    main()
