"""One PNG of log-mel spectrograms: a row per folder, the folders' files side by side.

    python scripts/spectrogram_rows.py OUT.png FOLDER [FOLDER ...] [--names a,b,c]

Each row holds the named files (default: the first folder's *.wav, sorted) of one folder,
in the same order, with a thin gap between files and between rows, so that the sounds of
two models (or two settings) can be compared by eye. Used for docs/examples/*/spectrograms.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from wavesmith import plot

GAP = 4  # pixels between files and between rows


def row(folder: Path, names: list[str], height: int) -> np.ndarray:
    parts = []
    for name in names:
        audio, rate = sf.read(str(folder / name), dtype="float32", always_2d=True)
        parts.append(plot.spectrogram_rgb(audio.T, rate, height=height))
        parts.append(np.full((height, GAP, 3), 255, np.uint8))
    return np.concatenate(parts[:-1], axis=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("folders", type=Path, nargs="+")
    p.add_argument("--names", help="comma-separated file names (default: the first folder's *.wav)")
    p.add_argument("--height", type=int, default=96, help="mel bands, one pixel each (default 96)")
    a = p.parse_args(argv)
    names = a.names.split(",") if a.names else sorted(f.name for f in a.folders[0].glob("*.wav"))
    missing = [str(f / n) for f in a.folders for n in names if not (f / n).is_file()]
    if not names or missing:
        print(f"spectrogram_rows: missing {', '.join(missing) or 'files in ' + str(a.folders[0])}", file=sys.stderr)
        return 2
    rows = [row(f, names, a.height) for f in a.folders]
    width = max(r.shape[1] for r in rows)
    gap = np.full((GAP, width, 3), 255, np.uint8)
    stacked = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    image = np.concatenate([x for r in stacked for x in (r, gap)][:-1], axis=0)
    a.out.write_bytes(plot.png_bytes(image))
    print(f"wrote {a.out} ({len(rows)} rows of {len(names)} files, {image.shape[1]}x{image.shape[0]} pixels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
