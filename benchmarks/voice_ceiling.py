"""How like its own training speakers the base speech model sounds: the ceiling a clone starts under.

    pip install -e '.[bench]'
    python benchmarks/voice_ceiling.py --json --manifest GAMES/metadata.csv \\
        [--speakers fotaq-joe,fotaq-faye,fotaq-bob,fotaq-lola] [--base speech] [--clips 20]

``--manifest`` is a ``path,label,speaker,text,language`` CSV of the base model's own training
recordings (``scripts/speech/get_game_speech.py DEST`` writes ``DEST/metadata.csv`` for the
Flight of the Amazon Queen voices). For each speaker: ``wavesmith say --voice SPEAKER`` speaks
the English test sentences (benchmarks/data/sentences_en.txt), and Resemblyzer's similarity
(judges.py: cosine of mean d-vectors) is measured between that speech and ``--clips`` real
clips of the speaker, beside two baselines from the same recordings: another ``--clips`` of
the same speaker (real against real), and the nearest other speaker's real clips (to the
synthesis, and to the speaker's real clips). A clone can hardly sound more like its reference
than the base model sounds like the voices it was trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judges as J  # noqa: E402
from voice_clone import load, wavesmith  # noqa: E402  (its file reader and CLI runner)

HERE = Path(__file__).resolve().parent


def centroid(paths: list[Path]) -> np.ndarray:
    """The mean d-vector of the recordings ``paths``."""
    return J.mean_vector([J.dvector(load(p), J.JUDGE_RATE) for p in paths])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    p.add_argument("--manifest", type=Path, required=True, help="CSV of the base model's training recordings")
    p.add_argument("--speakers", default="fotaq-joe,fotaq-faye,fotaq-bob,fotaq-lola")
    p.add_argument("--base", help="base model, run or checkpoint (default: the shipped speech)")
    p.add_argument("--clips", type=int, default=20, help="real clips per set (two sets per speaker)")
    p.add_argument("--sentences", type=Path, default=HERE / "data" / "sentences_en.txt")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    speakers = [s for s in args.speakers.split(",") if s]
    by_speaker: dict[str, list[Path]] = {s: [] for s in speakers}
    with open(args.manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["speaker"] in by_speaker:
                path = Path(row["path"])
                by_speaker[row["speaker"]].append(path if path.is_absolute() else args.manifest.parent / path)
    rng = random.Random(args.seed)
    real = {}
    for s, paths in by_speaker.items():
        if len(paths) < 2 * args.clips:
            raise SystemExit(f"{s}: {len(paths)} clips in {args.manifest}, need {2 * args.clips}")
        paths = sorted(paths)
        rng.shuffle(paths)
        real[s] = (centroid(paths[: args.clips]), centroid(paths[args.clips: 2 * args.clips]))
    result: dict = {"base": args.base or "speech", "clips": args.clips, "speakers": {}}
    for s in speakers:
        with tempfile.TemporaryDirectory() as tmp:
            wavesmith("say", "--voice", s, "--out", tmp, "--seed", str(args.seed), "--text-file", str(args.sentences),
                      *(["--base", args.base] if args.base else []))
            spoken = centroid(sorted(Path(tmp).glob("*.wav")))
        others = [o for o in speakers if o != s]
        result["speakers"][s] = {
            "synthesis_vs_real": round(J.similarity(spoken, real[s][0]), 4),
            "real_vs_real": round(J.similarity(real[s][1], real[s][0]), 4),
            "synthesis_vs_nearest_other": round(max(J.similarity(spoken, real[o][0]) for o in others), 4),
            "real_vs_nearest_other": round(max(J.similarity(real[s][1], real[o][0]) for o in others), 4),
        }
    keys = next(iter(result["speakers"].values())).keys()
    result["median"] = {k: round(float(np.median([v[k] for v in result["speakers"].values()])), 4) for k in keys}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
