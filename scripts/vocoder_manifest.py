"""The fast vocoder's training manifest: drum hits, instrument notes and many voices, in balance.

    python scripts/ship/vocoder_manifest.py OUT.csv --sounds GM_DRUMS/metadata.csv GM_NOTES/metadata.csv KITS.csv
        --speech SPEECH/metadata.csv:70 GAMES/metadata.csv:40

Every row of each ``--sounds`` manifest is kept, labelled by its kind (``drums`` when the
manifest's folder or file name says drums or kits, else ``notes``). From each ``--speech``
manifest, at most N clips per speaker are drawn (seeded), so that no one voice dominates;
they are labelled ``speech``. Paths are written absolute.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from pathlib import Path


def rows_of(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        p = Path(r["path"])
        r["path"] = str(p if p.is_absolute() else (manifest.parent / p).resolve())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--sounds", nargs="+", type=Path, default=[], help="manifests kept whole")
    ap.add_argument("--speech", nargs="+", default=[], help="MANIFEST:N, at most N clips per speaker")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out: list[tuple[str, str]] = []
    for m in a.sounds:
        kind = "drums" if any(w in str(m).lower() for w in ("drum", "kit")) else "notes"
        out += [(r["path"], kind) for r in rows_of(m)]
    for spec in a.speech:
        manifest, _, cap = spec.rpartition(":")
        by_speaker: dict[str, list[str]] = {}
        for r in rows_of(Path(manifest)):
            by_speaker.setdefault(r.get("speaker") or "", []).append(r["path"])
        for paths in by_speaker.values():
            rng.shuffle(paths)
            out += [(p, "speech") for p in paths[: int(cap)]]
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(out)
    print(dict(Counter(kind for _, kind in out)))


if __name__ == "__main__":
    main()
