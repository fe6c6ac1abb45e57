"""How well ``wavesmith clone`` + ``say`` imitate voices never heard in training (issue 14, item 7).

    pip install -e '.[bench]'
    python benchmarks/heldout_voices.py /work/heldout-speech          (once)
    taskset -c 1 python benchmarks/voice_clone.py --json [--voices DIR] [--minutes M] [--sentences FILE]
    taskset -c 1 python benchmarks/voice_clone.py --json --baselines-only  (real speech only)

Each held-out speaker's clips (``--voices``, laid out by heldout_voices.py) are shuffled with a
fixed seed and split three ways: the **references** (``--minutes``, default 0.25 = 15 s), which
``wavesmith clone`` gets; the **enrolment** set, which the judges learn speakers from (d-vector
centroids, our SpeakerClassifier); and the **test** set, against which everything is measured.
The last two alternate clip by clip, each capped at ``--test-seconds``. Clips are joined into
segments of at least 3 s (single words are too short for a d-vector). The CLI is the interface:
``clone REFS... --out V --consent ...`` then ``say --voice V --out D --text-file SENTENCES``,
run as ``sys.executable -m wavesmith`` subprocesses.

Figures (see judges.py for the judges), per speaker and as medians:

- similarity: cosine of mean Resemblyzer d-vectors, clone outputs vs test set; baselines in the
  same run: references vs test set (same speaker, real) and references vs the test set of the
  nearest other speaker (real);
- identification among all held-out voices, of each test segment and of each cloned sentence:
  nearest enrolment centroid of d-vectors, and our SpeakerClassifier (trained on enrolment);
- word error rate of Whisper tiny.en on the cloned sentences, next to the same recogniser on real
  English speech ($WAVESMITH_REAL_AUDIO/speech-en, 8 kHz, and held-out English with transcripts);
- DNSMOS OVRL (with SIG and BAK) of the cloned sentences joined, and of real test speech;
- the base model's own English speakers (``--base-speakers``, no cloning) saying the same
  sentences: WER and DNSMOS, what cloning starts from;
- speed: ``say`` in multiples of real time (audio seconds over wall seconds, and over wall seconds
  less a bare ``wavesmith --help`` start-up timed in the same run) and ``clone`` in minutes.

The real-speech baselines need no model: ``--baselines-only`` computes just those.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judges as J  # noqa: E402

from wavesmith import audio as A  # noqa: E402

HERE = Path(__file__).resolve().parent
REAL = Path(os.environ.get("WAVESMITH_REAL_AUDIO", "/work/real-audio"))
SEGMENT_SECONDS = 3.0
GAP_SECONDS = 0.15
DEFAULT_CLONES = ("asterisk-fr-june,fillets-cs-small-fish,fillets-cs-big-fish,hedgewars-british,"
                  "hedgewars-pirate,ktuberling-en")


@dataclass
class Clip:
    path: Path
    text: str
    seconds: float


@dataclass
class Speaker:
    name: str
    language: str
    refs: list[Clip] = field(default_factory=list)
    enrol: list[Clip] = field(default_factory=list)
    test: list[Clip] = field(default_factory=list)


def read_voices(voices: Path, ref_seconds: float, test_seconds: float, seed: int) -> dict[str, Speaker]:
    """Speakers of ``voices/metadata.csv``, each split into references, enrolment and test clips."""
    by: dict[str, list[Clip]] = {}
    langs: dict[str, str] = {}
    with open(voices / "metadata.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            by.setdefault(r["speaker"], []).append(Clip(voices / r["path"], r["text"], float(r["seconds"])))
            langs[r["speaker"]] = r["language"]
    out = {}
    for name in sorted(by):
        clips = sorted(by[name], key=lambda c: str(c.path))
        random.Random(f"{seed}:{name}").shuffle(clips)
        s = Speaker(name, langs[name])
        while clips and sum(c.seconds for c in s.refs) < ref_seconds:
            s.refs.append(clips.pop(0))
        for i, c in enumerate(clips):
            part = s.test if i % 2 else s.enrol
            if sum(x.seconds for x in part) < test_seconds:
                part.append(c)
        if s.enrol and s.test:
            out[name] = s
    return out


def load(path: Path) -> np.ndarray:
    return A.load(path, J.JUDGE_RATE)[0]


def segments(clips: list[Clip]) -> list[np.ndarray]:
    """Clips joined in order (short gaps between them) into pieces of at least SEGMENT_SECONDS."""
    gap = np.zeros(int(GAP_SECONDS * J.JUDGE_RATE), np.float32)
    out, cur = [], []
    for c in clips:
        cur += [load(c.path), gap]
        if sum(len(x) for x in cur) >= SEGMENT_SECONDS * J.JUDGE_RATE:
            out.append(np.concatenate(cur))
            cur = []
    if cur and out:  # a short remainder joins the last segment
        out[-1] = np.concatenate([out[-1], *cur])
    elif cur:
        out.append(np.concatenate(cur))
    return out


def joined(pieces: list[np.ndarray], max_seconds: float = 30.0) -> np.ndarray:
    x = np.concatenate(pieces)
    return x[: int(max_seconds * J.JUDGE_RATE)]


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def r4(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def real_english_wer(limit: int) -> dict:
    """Whisper tiny.en on Allison's 8 kHz prompts (not held out: her voice trains wavesmith, which
    does not matter for the recogniser): ``limit`` clips spread evenly over the sorted list, leaving
    out those whose transcript is only a stage direction ("[sound of monkeys screaming]")."""
    meta = REAL / "speech-en" / "metadata.csv"
    if not meta.exists():
        return {"error": f"{meta} not found (shared/tools/get-real-audio)"}
    with open(meta, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if J.normalize(r["text"]) and (REAL / "speech-en" / r["path"]).exists()]
    rows = sorted(rows, key=lambda r: r["path"])
    rows = rows[:: max(1, len(rows) // limit)][:limit]
    refs = [r["text"] for r in rows]
    hyps = [J.transcribe(load(REAL / "speech-en" / r["path"]), J.JUDGE_RATE) for r in rows]
    return {"set": "speech-en (asterisk Allison, 8 kHz)", "clips": len(rows), "wer": r4(J.wer(refs, hyps))}


def baselines(speakers: dict[str, Speaker], log) -> tuple[dict, dict, J.SpeakerClassifier]:
    """Everything measured on real speech: similarity, identification, DNSMOS, per speaker."""
    log(f"d-vectors of {len(speakers)} speakers")
    segs = {n: {part: segments(getattr(s, part)) for part in ("refs", "enrol", "test")} for n, s in speakers.items()}
    dv = {n: {part: [J.dvector(x, J.JUDGE_RATE) for x in xs] for part, xs in p.items()} for n, p in segs.items()}
    centroids = {n: J.mean_vector(d["enrol"]) for n, d in dv.items()}
    log("training the speaker classifier on the enrolment sets")
    clf = J.SpeakerClassifier().fit([(x, J.JUDGE_RATE, n) for n, p in segs.items() for x in p["enrol"]])
    per: dict[str, dict] = {}
    for n, s in speakers.items():
        ref, test = J.mean_vector(dv[n]["refs"]), {m: J.mean_vector(d["test"]) for m, d in dv.items()}
        others = {m: J.similarity(ref, v) for m, v in test.items() if m != n}
        nearest = max(others, key=others.get)
        by_centroid = [identify(v, centroids) == n for v in dv[n]["test"]]
        by_clf = [clf.predict(x, J.JUDGE_RATE) == n for x in segs[n]["test"]]
        log(f"  DNSMOS {n}")
        per[n] = {
            "language": s.language,
            "seconds": {part: round(sum(c.seconds for c in getattr(s, part)), 1) for part in ("refs", "enrol", "test")},
            "similarity_real_same": r4(J.similarity(ref, test[n])),
            "similarity_real_nearest_other": r4(others[nearest]),
            "nearest_other": nearest,
            "id_real_centroid": r4(np.mean(by_centroid)),
            "id_real_classifier": r4(np.mean(by_clf)),
            "test_segments": len(by_clf),
            "dnsmos_real": {k: r4(v) for k, v in J.dnsmos(joined(segs[n]["test"]), J.JUDGE_RATE).items()},
        }
        texted = [c for c in s.test if J.normalize(c.text)]
        if s.language.startswith("en") and texted:
            per[n]["wer_real"] = r4(J.wer([c.text for c in texted], [J.transcribe(load(c.path), J.JUDGE_RATE)
                                                                         for c in texted]))
    state = {"centroids": centroids, "test_dvectors": {n: J.mean_vector(d["test"]) for n, d in dv.items()}}
    return per, state, clf


def identify(v: np.ndarray, centroids: dict[str, np.ndarray]) -> str:
    return max(centroids, key=lambda m: J.similarity(v, centroids[m]))


def wavesmith(*args: str, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "wavesmith", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if check and p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or [""]
        raise SystemExit(f"wavesmith {args[0]} failed (exit {p.returncode}): {tail[0]}")
    return p, wall


def said(out: Path, sentences: list[str]) -> list[tuple[Path, str]]:
    """(file, text) of what ``say`` wrote: from generated.jsonl where its lines name their files,
    else the numbered WAV files in order, one per sentence."""
    wavs = sorted(out.glob("*.wav"))
    log = out / "generated.jsonl"
    if log.exists():
        lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
        pairs = []
        for d in lines:
            name = next((d[k] for k in ("file", "path", "output", "filename") if k in d), None)
            if name and "text" in d:
                pairs.append((out / Path(name).name, d["text"]))
        if len(pairs) == len(lines) and all(p.exists() for p, _ in pairs):
            return pairs
    if len(wavs) != len(sentences):
        raise SystemExit(f"say wrote {len(wavs)} WAV files for {len(sentences)} sentences in {out}")
    return list(zip(wavs, sentences, strict=True))


def clone_and_say(s: Speaker, sentences_file: Path, sentences: list[str], work: Path, args) -> dict:
    voice, out = work / f"{s.name}.voice", work / s.name
    cmd = ["clone", *[str(c.path) for c in s.refs], "--out", str(voice),
           "--consent", f"benchmark: held-out recordings of {s.name}, Debian package, for evaluation only",
           "--language", s.language, "--steps", str(args.clone_steps), "--force"]
    if args.base:
        cmd += ["--base", str(args.base)]
    if args.with_text and all(c.text for c in s.refs):
        for c in s.refs:
            cmd += ["--text", c.text]
    _, clone_wall = wavesmith(*cmd)
    base = ["--base", str(args.base)] if args.base else []
    shutil.rmtree(out, ignore_errors=True)  # a rerun with the same --work speaks afresh
    _, say_wall = wavesmith("say", "--voice", str(voice), "--out", str(out), "--text-file", str(sentences_file),
                            "--language", "en-us", "--seed", str(args.seed), *base)
    files = said(out, sentences)
    audio = [load(p) for p, _ in files]
    return {"clone_minutes": round(clone_wall / 60, 2), "say_wall_s": round(say_wall, 2),
            "say_audio_s": round(sum(len(x) for x in audio) / J.JUDGE_RATE, 2), "audio": audio,
            "texts": [t for _, t in files]}


def base_speakers_say(names: list[str], sentences_file: Path, sentences: list[str], work: Path, args) -> dict:
    """The base model's own speakers (no cloning) saying the sentences: WER and DNSMOS per speaker.

    This is what cloning starts from: how clearly the base model speaks English with voices it
    was trained on. Between it and the clones' figures lies what cloning costs.
    """
    base = ["--base", str(args.base)] if args.base else []
    out = {}
    for name in names:
        folder = work / f"base-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        wavesmith("say", "--voice", name, "--out", str(folder), "--text-file", str(sentences_file),
                  "--language", "en-us", "--seed", str(args.seed), *base)
        files = said(folder, sentences)
        audio = [load(p) for p, _ in files]
        out[name] = {"wer": r4(J.wer([t for _, t in files], [J.transcribe(x, J.JUDGE_RATE) for x in audio])),
                     "dnsmos_ovrl": r4(J.dnsmos(joined(audio), J.JUDGE_RATE)["ovrl"])}
    return out


def measure_clone(n: str, got: dict, state: dict, clf: J.SpeakerClassifier) -> dict:
    vecs = [J.dvector(x, J.JUDGE_RATE) for x in got["audio"]]
    centroids = state["centroids"]
    return {
        "similarity_clone": r4(J.similarity(J.mean_vector(vecs), state["test_dvectors"][n])),
        "id_clone_centroid": r4(np.mean([identify(v, centroids) == n for v in vecs])),
        "id_clone_classifier": r4(np.mean([clf.predict(x, J.JUDGE_RATE) == n for x in got["audio"]])),
        "wer_clone": r4(J.wer(got["texts"], [J.transcribe(x, J.JUDGE_RATE) for x in got["audio"]])),
        "dnsmos_clone": {k: r4(v) for k, v in J.dnsmos(joined(got["audio"]), J.JUDGE_RATE).items()},
        "clone_minutes": got["clone_minutes"],
        "say_x_realtime": r4(got["say_audio_s"] / got["say_wall_s"]),
        "say_audio_s": got["say_audio_s"],
        "say_wall_s": got["say_wall_s"],
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    p.add_argument("--voices", type=Path, default=Path(os.environ.get("WAVESMITH_HELDOUT", "/work/heldout-speech")),
                   help="held-out voices laid out by heldout_voices.py (default $WAVESMITH_HELDOUT or %(default)s)")
    p.add_argument("--minutes", type=float, default=0.25, help="reference audio per cloned voice (default 0.25 = 15 s)")
    p.add_argument("--test-seconds", type=float, default=60.0, help="cap on each speaker's enrolment and test sets")
    p.add_argument("--sentences", type=Path, default=HERE / "data" / "sentences_en.txt",
                   help="English sentences to say, one a line")
    p.add_argument("--clone", default=DEFAULT_CLONES, help="speakers to clone, comma-separated, or 'all'")
    p.add_argument("--with-text", action="store_true", help="give clone the references' transcripts (--text each)")
    p.add_argument("--real-en-clips", type=int, default=100, help="clips of real English for the recogniser's WER")
    p.add_argument("--baselines-only", action="store_true", help="measure real speech only; no clone, no say")
    p.add_argument("--work", type=Path, help="keep voices and outputs here (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", help="base model, run or checkpoint for clone and say (default: the shipped speech)")
    p.add_argument("--clone-steps", type=int, default=100, help="adaptation steps of each clone (clone's default)")
    p.add_argument("--base-speakers", default="asterisk-allison,fotaq-joe,fotaq-lola",
                   help="the base model's own English speakers to say the sentences too, comma-separated ('' for none)")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr, flush=True)

    if not (args.voices / "metadata.csv").exists():
        raise SystemExit(f"{args.voices}/metadata.csv not found: run benchmarks/heldout_voices.py {args.voices}")
    sentences = [s.strip() for s in args.sentences.read_text(encoding="utf-8").splitlines() if s.strip()]
    speakers = read_voices(args.voices, args.minutes * 60, args.test_seconds, args.seed)
    to_clone = sorted(speakers) if args.clone == "all" else [s for s in args.clone.split(",") if s]
    unknown = [s for s in to_clone if s not in speakers]
    if unknown:
        raise SystemExit(f"not among the held-out voices: {', '.join(unknown)} (have: {', '.join(speakers)})")

    t0 = time.perf_counter()
    per, state, clf = baselines(speakers, log)
    log("Whisper tiny.en on real English")
    result: dict = {"voices": str(args.voices), "reference_seconds": args.minutes * 60, "seed": args.seed,
                    "speakers": per, "wer_real_en": real_english_wer(args.real_en_clips)}
    if not args.baselines_only:
        _, startup = wavesmith("--help")
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            for n in to_clone:
                log(f"clone and say: {n}")
                try:
                    got = clone_and_say(speakers[n], args.sentences, sentences, work, args)
                except SystemExit as e:  # a refused reference (not speech, too short): on record, go on
                    per[n]["clone_error"] = str(e)
                    log(str(e))
                    continue
                per[n] |= measure_clone(n, got, state, clf)
                per[n]["say_x_realtime_less_startup"] = r4(got["say_audio_s"] / max(got["say_wall_s"] - startup, 1e-3))
            names = [x for x in args.base_speakers.split(",") if x]
            if names:
                log(f"the base model's own speakers: {', '.join(names)}")
                result["base_speakers"] = base_speakers_say(names, args.sentences, sentences, work, args)
                result["base_speakers_median_wer"] = median(v["wer"] for v in result["base_speakers"].values())
        result["startup_s"] = round(startup, 2)
    keys = ["similarity_real_same", "similarity_real_nearest_other", "id_real_centroid", "id_real_classifier",
            "similarity_clone", "id_clone_centroid", "id_clone_classifier", "wer_clone", "clone_minutes",
            "say_x_realtime", "say_x_realtime_less_startup"]
    result["median"] = {k: median(v.get(k) for v in per.values()) for k in keys if any(k in v for v in per.values())}
    for k in ("dnsmos_real", "dnsmos_clone"):
        if any(k in v for v in per.values()):
            result["median"][f"{k}_ovrl"] = median(v[k]["ovrl"] for v in per.values() if k in v)
    if not args.baselines_only:  # the same medians over the cloned speakers only, next to the clones' figures
        cloned = [n for n in to_clone if "clone_error" not in per[n]]
        result["median_cloned_speakers"] = {k: median(per[n].get(k) for n in cloned) for k in keys}
        result["clone_errors"] = {n: per[n]["clone_error"] for n in to_clone if "clone_error" in per[n]}
    result["identification_chance"] = r4(1 / len(speakers))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=None if args.json else 2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
