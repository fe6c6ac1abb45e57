"""Render random legato melodies on one General MIDI instrument, for training a DDSP timbre.

    python scripts/ship/render_melodies.py OUT [--program 40] [--low 55] [--high 88] [--minutes 10] [--seed 1000]

Files of 6 s, each played at its own velocity (45-120) and scaled to its own peak (-24 to -3
dBFS), so the model hears the instrument soft and loud. The soundfont is
``$WAVESMITH_REAL_AUDIO/soundfont/FluidR3_GM.sf2`` (default /work/real-audio; MIT licence).
The melodies come from :func:`benchmarks.pitch_sources.render_melodies`, the same renderer the
transfer benchmark uses for its test melodies (other seeds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from pitch_sources import SOUNDFONT, render_melodies  # noqa: E402

FILE_SECONDS = 6.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--program", type=int, default=40, help="General MIDI program (default 40, violin)")
    ap.add_argument("--low", type=int, default=55, help="lowest MIDI note (default 55, G3)")
    ap.add_argument("--high", type=int, default=88, help="highest MIDI note (default 88, E6)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    if not SOUNDFONT.exists():
        print(f"render_melodies: no soundfont at {SOUNDFONT}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    files = int(np.ceil(args.minutes * 60 / FILE_SECONDS))
    for i in range(files):
        velocity = int(rng.integers(45, 121))
        peak = float(10 ** (rng.uniform(-24, -3) / 20))
        render_melodies(args.out, args.program, args.low, args.high, 1, FILE_SECONDS, sample_rate=args.rate,
                        seed=args.seed + i, velocity=velocity, peak=peak, prefix=f"take{i:04d}")
    print(f"{files} files of {FILE_SECONDS:g} s in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
