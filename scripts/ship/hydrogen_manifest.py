"""A manifest of Hydrogen drum kits' one-shots labelled by kit piece, for ``wavesmith db add``.

    python scripts/ship/hydrogen_manifest.py DRUMS_DIR OUT.csv [--kits NAME ...]

Reads each kit's ``drumkit.xml`` and maps its instrument names to the pieces the shipped
drums model knows (kick, snare, clap, hihat, tom, cymbal, perc); instruments whose names
say none of them (effects, loops, unnamed slots) are left out. Writes ``path,label,speaker``
with the kit's name as ``speaker`` (so kits can be told apart) and absolute paths.
"""

from __future__ import annotations

import argparse
import csv
import xml.etree.ElementTree as ET
from pathlib import Path

# Checked in order: "hat" before "tom" ("hi-hat" must not fall to a later rule), "clap" early.
RULES = [
    ("hihat", ("hh", "hat")),
    ("clap", ("clap", "snap")),
    ("cymbal", ("crash", "ride", "cymbal", "splash", "china")),
    ("kick", ("kick", "bass drum", "bassdrum")),
    ("snare", ("snare", "rimshot")),
    ("tom", ("tom",)),
    ("perc", ("stick", "cowbell", "clave", "tambourine", "conga", "bongo", "cajon", "woodblock", "agogo", "click",
              "djembe", "sangban", "dununba", "kenkeni", "maraca")),
]


def piece(name: str) -> str | None:
    name = name.lower()
    for label, words in RULES:
        if any(w in name for w in words):
            return label
    return None


def rows(kit: Path):
    root = ET.parse(kit / "drumkit.xml").getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    for inst in root.iter(ns + "instrument"):
        label = piece(inst.findtext(ns + "name") or "")
        files = {layer.findtext(ns + "filename") for layer in inst.iter(ns + "layer")}
        files.add(inst.findtext(ns + "filename"))
        for name in sorted(f for f in files if f):
            path = kit / name
            if label and path.is_file():
                yield str(path.absolute()), label, kit.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("drums", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--kits", nargs="*", help="kit folder names (default: all)")
    args = ap.parse_args()
    every = sorted(p.parent for p in args.drums.glob("*/drumkit.xml"))
    kits = [args.drums / k for k in args.kits] if args.kits else every
    found = [r for kit in kits for r in rows(kit)]
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker"])
        w.writerows(found)
    print(f"{len(found)} labelled one-shots from {len(kits)} kits in {args.out}")


if __name__ == "__main__":
    main()
