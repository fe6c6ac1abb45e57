"""A distilled vocoder against the HiFi-GAN V1 it was distilled from, on audio neither trained on.

    taskset -c 1 python benchmarks/fast_vocoder.py --json --fast RUN [--teacher universal] [--judges]

``--fast`` is a ``distilled-vocoder`` run or checkpoint. Both vocoders resynthesize the
same clips (log-mel frames of the recording, vocoded back), scored against the recording
as ``benchmarks/vocoder_quality.py`` scores (``mel_l1``, ``mr_stft``, and their in-band
forms), plus ``mel_l1_fast_to_teacher``: how far the fast vocoder's output is from the
teacher's. Sets:

- ``speech_heldout``: $WAVESMITH_HELDOUT_SPEECH (default /work/heldout-speech), voices kept out
  of every training set (the speech model's, the distilled vocoders');
- ``drums_heldout``: the Hydrogen kits in $WAVESMITH_REAL_AUDIO/drums except Audiophob (the one
  kit the vocoder heard);
- ``notes``: the soundfont notes of the vocoder database's test split (``--db``, when given).

``--judges`` (the bench extra) adds, for held-out speech, Resemblyzer's similarity of each
resynthesis to its recording (median over clips) and DNSMOS OVRL of the recordings and of
each vocoder's output joined into one stretch.

Speed: a batch of 16 one-second clips on one thread, each vocoder timed ``--repeats`` times,
alternating, medians; multiples of real time and the ratio of the two in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wavesmith import melspec as M
from wavesmith import vocoder as V

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_quality import HOP, SR, clips_from_db, clips_from_dir, score  # noqa: E402


def heldout_kits(root: Path, n: int, seconds: float, seed: int, skip: str = "Audiophob") -> list:
    clips = []
    for kit in sorted(p for p in root.iterdir() if p.is_dir() and p.name != skip and p.name != "copyright"):
        clips += clips_from_dir(kit, max(1, n // 13), seconds, seed)
    return clips[:n]


def to_teacher(fast: list[torch.Tensor], teacher: list[torch.Tensor]) -> float:
    """Mean log-mel L1 between the two vocoders' outputs of the same clips."""
    errs = [float((M.log_mel(f.reshape(-1)) - M.log_mel(t.reshape(-1))).abs().mean()) for f, t in zip(fast, teacher,
                                                                                                     strict=True)]
    return round(float(np.mean(errs)), 4)


def keeping(voc, outputs: list):
    """``voc`` as score()'s decoder, keeping each output so the two vocoders can be compared without
    vocoding the clips again."""
    def decode(mel):
        outputs.append(voc(mel[None]))
        return outputs[-1]
    return decode


def judged(clips, vocoders: dict) -> dict:
    import judges as J

    out: dict = {}
    joined_real = np.concatenate([x.numpy() for _, x, _ in clips])
    out["dnsmos_real"] = round(J.dnsmos(joined_real, SR)["ovrl"], 3)
    for name, voc in vocoders.items():
        sims, outs = [], []
        with torch.inference_mode():
            for _, x, _ in clips:
                y = voc.resynthesize(x[None, None], SR)[0, 0].numpy()
                outs.append(y)
                sims.append(float(np.dot(J.dvector(x.numpy(), SR), J.dvector(y, SR))))
        out[name] = {"similarity_median": round(float(np.median(sims)), 3),
                     "similarity_min": round(float(np.min(sims)), 3),
                     "dnsmos": round(J.dnsmos(np.concatenate(outs), SR)["ovrl"], 3)}
    return out


def speed(vocoders: dict, repeats: int) -> dict:
    frames = M.HIFIGAN.frames(1.0)
    g = torch.Generator().manual_seed(0)
    mel = M.log_mel(torch.randn(16, frames * HOP, generator=g) * 0.1)
    audio = 16 * frames * HOP / SR
    times: dict[str, list[float]] = {k: [] for k in vocoders}
    for voc in vocoders.values():
        voc(mel[:1, :, :8])  # warm-up
    for _ in range(repeats):
        for name, voc in vocoders.items():
            t0 = time.perf_counter()
            voc(mel)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    names = list(vocoders)
    return {"batch": 16, "clip_seconds": 1.0, "threads": torch.get_num_threads(),
            **{f"{k}_x_realtime": round(audio / v, 2) for k, v in med.items()},
            f"{names[0]}_vs_{names[1]}": round(med[names[1]] / med[names[0]], 2),
            "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", required=True, help="the fast vocoder: a distilled-vocoder run or checkpoint")
    ap.add_argument("--teacher", default="universal", help="the vocoder it is compared with")
    real = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio"))
    ap.add_argument("--speech", default=os.environ.get("WAVESMITH_HELDOUT_SPEECH", "/work/heldout-speech"))
    ap.add_argument("--drums", default=str(real / "drums"))
    ap.add_argument("--db", help="also score the notes of this database's split (the vocoder's own database)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clips", type=int, default=24, help="clips per set")
    ap.add_argument("--seconds", type=float, default=3.0, help="longest clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--judges", action="store_true", help="Resemblyzer similarity and DNSMOS (bench extra)")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    vocoders = {"fast": V.load(a.fast), "teacher": V.load(a.teacher)}
    result: dict = {"fast": a.fast, "teacher": a.teacher, "load_average": [round(x, 2) for x in os.getloadavg()]}
    if not a.skip_quality:
        sets = {"speech_heldout": clips_from_dir(Path(a.speech), a.clips, a.seconds, a.seed),
                "drums_heldout": heldout_kits(Path(a.drums), a.clips, min(a.seconds, 1.5), a.seed)}
        if a.db:
            notes = [c for c in clips_from_db(a.db, a.split, 10 * a.clips, a.seconds, a.seed)
                     if c[0].startswith("notes/")]
            sets["notes"] = notes[: a.clips]
        result["quality"] = {}
        for name, clips in sets.items():
            outputs: dict[str, list] = {key: [] for key in vocoders}
            with torch.inference_mode():
                row = {"clips": len(clips)}
                for key, voc in vocoders.items():
                    row[key] = {k: v for k, v in score(clips, keeping(voc, outputs[key])).items() if k != "x_realtime"}
                row["mel_l1_fast_to_teacher"] = to_teacher(outputs["fast"], outputs["teacher"])
            result["quality"][name] = row
        if a.judges:
            result["judges_speech_heldout"] = judged(sets["speech_heldout"], vocoders)
    result["speed"] = speed(vocoders, a.repeats)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
