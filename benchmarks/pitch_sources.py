"""Clips whose pitch is known, for benchmarks/pitch_timbre.py.

- :func:`sweep`: a harmonic tone gliding 100 -> 800 Hz with vibrato, framed by silence and a
  stretch of white noise, with its true f0 and voicing on any frame grid;
- :func:`soundfont_notes`: single notes of several General MIDI instruments at known MIDI
  pitches, rendered from /work/real-audio/soundfont/FluidR3_GM.sf2 by fluidsynth (reverb and
  chorus off), each with the span in which the note is held;
- :func:`render_melodies`: random legato melodies on one instrument (training and test
  material for DDSP timbre transfer).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio"))
SOUNDFONT = REAL / "soundfont" / "FluidR3_GM.sf2"
SPEECH = Path(os.environ.get("WAVESMITH_SPEECH", "/work/speech"))  # many speakers, metadata.csv names them
# General MIDI program -> MIDI notes inside the instrument's usual range.
INSTRUMENTS = {
    "piano": (0, (36, 48, 60, 72, 84)),
    "violin": (40, (55, 62, 69, 76, 84)),
    "cello": (42, (38, 45, 52, 59, 66)),
    "trumpet": (56, (56, 62, 68, 74, 80)),
    "clarinet": (71, (52, 58, 65, 72, 79)),
    "flute": (73, (60, 66, 72, 78, 84)),
}
NOTE_SECONDS = 1.5


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


@dataclass
class Sweep:
    audio: np.ndarray  # (T,) float64
    sample_rate: int
    tone: tuple[float, float]  # seconds where the tone sounds
    noise: tuple[float, float]  # seconds of white noise (unvoiced)

    def truth(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True f0 (Hz) and voicing at ``times``; frames within 20 ms of an edge are left out (NaN f0)."""
        a, b = self.tone
        u = np.clip((times - a) / (b - a), 0, 1)
        f0 = 100.0 * 8.0**u * 2 ** (30.0 / 1200 * np.sin(2 * np.pi * 5.5 * (times - a)))
        voiced = (times > a) & (times < b)
        margin = 0.02
        edges = np.zeros_like(voiced)
        for e in (a, b, *self.noise):
            edges |= np.abs(times - e) < margin
        return np.where(edges, np.nan, f0), voiced


def sweep(sample_rate: int = 16000, snr_db: float | None = None, seed: int = 0) -> Sweep:
    """0.5 s silence, 4 s of the gliding tone, 0.5 s silence, 1 s white noise, 0.5 s silence."""
    rng = np.random.default_rng(seed)
    total = 6.5
    t = np.arange(int(total * sample_rate)) / sample_rate
    sw = Sweep(np.zeros_like(t), sample_rate, (0.5, 4.5), (5.0, 6.0))
    f0, voiced = sw.truth(t)
    f0 = np.nan_to_num(f0, nan=0.0)
    f0[~voiced] = 0.0
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tone = np.zeros_like(t)
    for k in range(1, 40):
        tone += np.where(k * f0 < sample_rate / 2 - 200, np.sin(k * phase) / k, 0.0)
    tone *= 0.3 / np.sqrt(np.mean(tone[voiced] ** 2))
    noise_span = (t >= sw.noise[0]) & (t < sw.noise[1])
    x = tone + np.where(noise_span, 0.1 * rng.standard_normal(len(t)), 0.0)
    if snr_db is not None:  # white noise over everything, snr_db under the tone's power
        x = x + rng.standard_normal(len(t)) * 0.3 * 10 ** (-snr_db / 20)
    sw.audio = x
    return sw


@dataclass
class Note:
    instrument: str
    midi: int
    audio: np.ndarray  # (T,) float64
    sample_rate: int
    held: tuple[float, float]  # seconds between note-on and note-off

    @property
    def hz(self) -> float:
        return midi_hz(self.midi)


def _var(n: int) -> bytes:
    """``n`` as a MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.insert(0, (n & 0x7F) | 0x80)
    return bytes(out)


def _midi_file(program: int, note: int, seconds: float) -> bytes:
    """A format-0 standard MIDI file: one program change and one note (120 bpm, 480 ticks/beat)."""
    return _melody_midi(program, [(note, seconds)], velocity=100)


def _melody_midi(program: int, notes: list[tuple[int, float]], velocity: int = 90) -> bytes:
    """A format-0 MIDI file playing ``(note, seconds)`` one after another, legato (960 ticks a second)."""
    track = b"\x00" + bytes([0xC0, program])
    for note, seconds in notes:
        track += b"\x00" + bytes([0x90, note, velocity]) + _var(int(seconds * 960)) + bytes([0x80, note, 0])
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def render_melodies(out_dir: Path, program: int, low: int, high: int, count: int, seconds: float,
                    sample_rate: int = 16000, seed: int = 0, velocity: int = 90, peak: float = 0.5,
                    prefix: str = "melody") -> list[Path]:
    """``count`` files of random legato melodies (MIDI notes low..high, 0.2-0.8 s each) on one instrument.

    Each file is scaled to the given ``peak``; ``velocity`` (1-127) sets how hard the notes are played.
    """
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            notes, total, note = [], 0.0, int(rng.integers(low, high + 1))
            while total < seconds - 0.8:
                d = float(rng.uniform(0.2, 0.8))
                notes.append((note, d))
                total += d
                note = int(np.clip(note + rng.integers(-4, 5), low, high))
            mid = Path(tmp) / "m.mid"
            mid.write_bytes(_melody_midi(program, notes, velocity))
            wav = out_dir / f"{prefix}-{program}-{i:03d}.wav"
            subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(sample_rate),
                            "-F", str(wav), str(SOUNDFONT), str(mid)], check=True, capture_output=True)
            x, rate = sf.read(str(wav), always_2d=True)
            x = x.mean(1)[: int(seconds * rate)]
            sf.write(str(wav), peak * x / max(np.abs(x).max(), 1e-9), rate)
            paths.append(wav)
    return paths


def soundfont_notes(sample_rate: int = 16000) -> list[Note]:
    """Every note of :data:`INSTRUMENTS`, rendered; [] when fluidsynth or the soundfont is missing."""
    if not shutil.which("fluidsynth") or not SOUNDFONT.exists():
        return []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (program, pitches) in INSTRUMENTS.items():
            for m in pitches:
                mid, wav = Path(tmp) / "n.mid", Path(tmp) / "n.wav"
                mid.write_bytes(_midi_file(program, m, NOTE_SECONDS))
                subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r",
                                str(sample_rate), "-F", str(wav), str(SOUNDFONT), str(mid)],
                               check=True, capture_output=True)
                x, rate = sf.read(str(wav), always_2d=True)
                x = x.mean(1)[: int((NOTE_SECONDS + 0.5) * rate)]  # the held note and 0.5 s of its release
                x = x / max(np.abs(x).max(), 1e-9) * 0.5
                notes.append(Note(name, m, x, rate, (0.0, NOTE_SECONDS)))
    return notes
