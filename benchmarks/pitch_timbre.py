"""How accurate are the f0 trackers, and how well does ``wavesmith pitch`` move pitch and keep timbre?

    python benchmarks/pitch_timbre.py --json [--speech 20] [--step 3] [--trackers harvest,dio,yin] \
        [--pitch-trackers harvest,dio] [--profile] [--speaker 8]

``trackers``: each f0 tracker of :mod:`wavesmith.analysis` against clips of known pitch:
a harmonic glide 100 -> 800 Hz with vibrato framed by silence and white noise (clean, and
under white noise at 0 dB SNR), and 30 soundfont notes of six instruments at known MIDI
pitches (benchmarks/pitch_sources.py). Errors in cents on frames both truly and
detectably voiced; ``voicing_recall`` is the share of truly voiced frames found voiced,
``voicing_false_alarm`` the share of silent or noise frames called voiced.

``transfer`` (with ``--transfer-run RUN``, a ddsp run or shipped name): random melodies of
clarinet, violin and flute (soundfont) and the speech clips, played by the run: the median
|f0 error| in cents between the output's f0 and the (transposed) input's on frames voiced in
both, the mean |loudness difference| in dB on the input's sounding frames, and speed against
WORLD resynthesis of the same clips. With ``--transfer-target TIMBRE`` a timbre judge (a
log-mel CNN trained on soundfont melodies of eight instruments, its held-out accuracy
reported) names each second of output: the share named TIMBRE, and the Frechet distance of
its features to real TIMBRE melodies beside the distances between real timbres.

``pitch``: :func:`wavesmith.pitch.shift` over -12..+12 semitones on the first N clips of
/work/real-audio/speech-en (8 kHz) and on the soundfont notes (16 kHz), for each tracker:

- ``median_abs_error_cents``: |1200 log2(f0_out / f0_in) - 100 s| on frames voiced in both
  (f0 of both measured with harvest), pooled over clips and shifts;
- ``envelope_change_db``: mean |difference| of the long-term average log spectral envelope
  (CheapTrick on each clip with its own f0, 24 mel bands) between input and output; the
  same for a naive resampling shift (formants move with the pitch) shows what losing the
  timbre reads as;
- ``duration_change``: output samples / input samples - 1;
- ``median_error_cents_by_shift``: the signed median of the same, per shift (a bias: the
  f0 ratio measured against the one asked);
- speed in multiples of real time, with WORLD analysis + synthesis at 0 semitones and the
  naive soxr resampling shift timed in the same run as references. Times are the process's
  CPU time (one thread), so other work sharing the core does not inflate them.

``profile`` (with ``--profile``): where a shift's time goes. Each WORLD stage of
:func:`wavesmith.pitch.shift` (the trackers, StoneMask, CheapTrick, D4C, synthesis, and the
polyphony check) timed alone on the speech and note clips, in multiples of real time; the
shift's speed is about one over the sum of the inverses of its stages.

``speaker`` (with ``--speaker N``; needs the ``bench`` extra): does a shifted voice stay the
same speaker? Up to two clips each of N speakers drawn from /work/speech (clips of 2-8 s;
a speaker with none adds nothing, so ``speakers`` may be under N), shifted by
each tracker over the same shifts; the Resemblyzer similarity (benchmarks/judges.py) of each
output to its input, median and minimum per shift (0 semitones is WORLD's round trip), with
the naive resampling shift beside it, and as yardsticks the similarity of two clips of one
speaker and of two speakers (medians over pairs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pitch_sources import INSTRUMENTS, REAL, SPEECH, render_melodies, soundfont_notes, sweep  # noqa: E402

from wavesmith import analysis as AN  # noqa: E402
from wavesmith import audio as A  # noqa: E402
from wavesmith.pitch import PitchSettings, shift  # noqa: E402


def tracker_scores(cents: np.ndarray, recall: float, false_alarm: float | None, seconds: float,
                   elapsed: float) -> dict:
    c = np.abs(cents[np.isfinite(cents)])
    return {"rmse_cents": round(float(np.sqrt(np.mean(c**2))), 2) if len(c) else None,
            "median_abs_cents": round(float(np.median(c)), 2) if len(c) else None,
            "gross_error_rate": round(float(np.mean(c > 50)), 4) if len(c) else None,
            "voicing_recall": round(recall, 4),
            "voicing_false_alarm": None if false_alarm is None else round(false_alarm, 4),
            "x_real_time": round(seconds / elapsed, 1)}


def bench_trackers(trackers: list[str], notes) -> dict:
    out: dict = {}
    for name, snr in (("sweep_clean", None), ("sweep_0db_snr", 0.0)):
        sw = sweep(snr_db=snr)
        out[name] = {}
        for m in trackers:
            t = time.process_time()
            est = AN.track_f0(sw.audio, sw.sample_rate, m)
            elapsed = time.process_time() - t
            f0, voiced = sw.truth(est.times)
            scored = np.isfinite(f0)
            cents = est.cents(np.where(scored, f0, 1.0))[scored & voiced]
            out[name][m] = tracker_scores(cents, float(est.voiced[scored & voiced].mean()),
                                          float(est.voiced[scored & ~voiced].mean()), len(sw.audio) / sw.sample_rate,
                                          elapsed)
    out["soundfont_notes"] = {"notes": len(notes)}
    for m in trackers:
        cents, recall, seconds, elapsed = [], [], 0.0, 0.0
        for n in notes:
            t = time.process_time()
            est = AN.track_f0(n.audio, n.sample_rate, m)
            elapsed += time.process_time() - t
            seconds += len(n.audio) / n.sample_rate
            held = (est.times > n.held[0] + 0.1) & (est.times < n.held[1])  # past the attack
            cents.append(est.cents(n.hz)[held])
            recall.append(est.voiced[held].mean())
        out["soundfont_notes"][m] = tracker_scores(np.concatenate(cents), float(np.mean(recall)), None,
                                                   seconds, elapsed)
    return out


def mel_envelope(x: np.ndarray, sr: int, track: AN.F0Track | None = None) -> np.ndarray | None:
    """Long-term average log envelope (dB) of the voiced frames in 24 mel bands, 100 Hz .. 0.45 sr."""
    feats = AN.decompose(x, sr, track)
    voiced = feats.f0 > 0
    if not voiced.any():
        return None
    n_fft = 2 * (feats.envelope.shape[1] - 1)
    fb = A.mel_filterbank(sr, n_fft, 24, fmin=100.0, fmax=0.45 * sr).numpy()
    fb = fb / fb.sum(1, keepdims=True)
    return 10 * np.log10(fb @ feats.envelope[voiced].mean(0) + 1e-12)


def naive_shift(x: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Read the samples faster: pitch and formants both move, and the duration shrinks."""
    return A.resample(x[None], int(round(sr * 2 ** (semitones / 12))), sr)[0]


def bench_pitch(clips: dict[str, list[tuple[np.ndarray, int]]], shifts: list[float], trackers: list[str]) -> dict:
    out: dict = {"shifts": shifts}
    for group, items in clips.items():
        seconds = sum(len(x) / sr for x, sr in items)
        g: dict = {"clips": len(items), "seconds": round(seconds, 1)}
        ref_f0 = [AN.track_f0(x, sr) for x, sr in items]
        ref_env = [mel_envelope(x, sr, f) for (x, sr), f in zip(items, ref_f0, strict=True)]
        t = time.process_time()
        for x, sr in items:
            AN.synthesize(AN.decompose(x, sr))
        world_0 = time.process_time() - t
        t = time.process_time()
        for x, sr in items:
            naive_shift(x, sr, 4.0)
        naive = time.process_time() - t
        g["reference_x_real_time"] = {"world_analysis_synthesis_0_semitones": round(seconds / world_0, 1),
                                      "naive_resample_shift": round(seconds / naive, 1)}
        env_naive = []
        for s in shifts:
            for (x, sr), e_in in zip(items, ref_env, strict=True):
                e_out = mel_envelope(naive_shift(x, sr, s), sr) if s else None
                if e_in is not None and e_out is not None:
                    env_naive.append(float(np.abs(e_out - e_in).mean()))
        g["naive_resample_envelope_change_db"] = round(float(np.mean(env_naive)), 2)
        for m in trackers:
            errors, per_shift, bias, env, dur, elapsed = [], {}, {}, [], [], 0.0
            for s in shifts:
                shift_err = []
                for (x, sr), f_in, e_in in zip(items, ref_f0, ref_env, strict=True):
                    t = time.process_time()
                    y, _ = shift(x[None], sr, PitchSettings(semitones=s, tracker=m))
                    elapsed += time.process_time() - t
                    y = y[0]
                    dur.append(len(y) / len(x) - 1)
                    f_out = AN.track_f0(y, sr)
                    both = f_in.voiced & f_out.voiced
                    shift_err.append(1200 * np.log2(f_out.f0[both] / f_in.f0[both]) - 100 * s)
                    e_out = mel_envelope(y, sr, f_out)
                    if e_in is not None and e_out is not None:
                        env.append(float(np.abs(e_out - e_in).mean()))
                signed = np.concatenate(shift_err)
                shift_err = np.abs(signed)
                per_shift[f"{s:+g}"] = round(float(np.median(shift_err)), 2)
                bias[f"{s:+g}"] = round(float(np.median(signed)), 2)
                errors.append(shift_err)
            errors = np.concatenate(errors)
            g[m] = {"median_abs_error_cents": round(float(np.median(errors)), 2),
                    "p90_abs_error_cents": round(float(np.percentile(errors, 90)), 2),
                    "median_abs_error_cents_by_shift": per_shift,
                    "median_error_cents_by_shift": bias,
                    "envelope_change_db": round(float(np.mean(env)), 2),
                    "max_abs_duration_change": float(np.max(np.abs(dur))),
                    "x_real_time": round(seconds * len(shifts) / elapsed, 1),
                    "speed_ratio_to_world_0_semitones": round(world_0 * len(shifts) / elapsed, 3)}
        out[group] = g
    return out


def profile(clips: dict[str, list[tuple[np.ndarray, int]]]) -> dict:
    """x real time of each stage of a WORLD pitch shift, per group of clips (CPU time, one thread).

    ``d4c`` is the aperiodicity as the shift computes it (on every second frame); ``d4c on every
    frame`` is timed beside it for reference and left out of the sums.
    """
    import pyworld

    out: dict = {}
    for group, items in clips.items():
        seconds = sum(len(x) / sr for x, sr in items)
        spent: dict[str, float] = {}

        def timed(stage, fn, *a, spent=spent, **k):
            t = time.process_time()
            r = fn(*a, **k)
            spent[stage] = spent.get(stage, 0.0) + time.process_time() - t
            return r

        for x, sr in items:
            if sr < 16000:  # as pitch.shift does
                x, sr = A.resample(x[None], sr, 16000)[0].astype(np.float64), 16000
            kw = {"f0_floor": AN.F0_FLOOR, "f0_ceil": AN.F0_CEIL, "frame_period": AN.FRAME_PERIOD_MS}
            f0, t = timed("harvest", pyworld.harvest, x, sr, **kw)
            f0d, td = timed("dio", pyworld.dio, x, sr, **kw)
            timed("stonemask (after dio)", pyworld.stonemask, x, f0d, td, sr)
            timed("yin (ours)", AN.track_f0, x, sr, "yin")
            timed("dio-yin (all of it)", AN.track_f0, x, sr, "dio-yin")
            fft = pyworld.get_cheaptrick_fft_size(sr, AN.F0_FLOOR)
            sp = timed("cheaptrick", pyworld.cheaptrick, x, f0, t, sr, fft_size=fft)
            timed("d4c on every frame", pyworld.d4c, x, f0, t, sr, fft_size=fft)
            ap = timed("d4c", AN._aperiodicity, x, f0, t, sr, fft)
            timed("synthesize", pyworld.synthesize, f0 * 1.26, sp, ap, sr, AN.FRAME_PERIOD_MS)
            timed("polyphony check", AN.polyphony, x, sr, AN.F0Track(f0, f0 > 0, t, AN.FRAME_PERIOD_MS / 1000))
        stages = {k: round(seconds / v, 1) for k, v in spent.items()}
        rest = sum(spent[k] for k in ("cheaptrick", "d4c", "synthesize", "polyphony check"))
        stages["all but the tracker"] = round(seconds / rest, 1)
        stages["harvest share of a harvest shift"] = round(spent["harvest"] / (spent["harvest"] + rest), 3)
        out[group] = {"seconds": round(seconds, 1), "x_real_time": stages}
    return out


def speaker_clips(speakers: int, per_speaker: int = 2, seed: int = 0) -> list[tuple[np.ndarray, int, str]]:
    """``per_speaker`` clips of 2-8 s from each of ``speakers`` speakers of /work/speech (random, seeded)."""
    import csv
    import random

    rng = random.Random(seed)
    by: dict[str, list[str]] = {}
    for r in csv.DictReader(open(SPEECH / "metadata.csv")):
        by.setdefault(r["speaker"], []).append(r["path"])
    out = []
    for who in rng.sample(sorted(by), min(speakers, len(by))):
        found = 0
        for path in rng.sample(by[who], len(by[who])):
            if found == per_speaker:
                break
            x, sr = A.read(SPEECH / path)
            if 2.0 <= x.shape[-1] / sr <= 8.0:
                out.append((x.mean(0).astype(np.float64), sr, who))
                found += 1
    return out


def bench_speaker(items: list[tuple[np.ndarray, int, str]], shifts: list[float], trackers: list[str]) -> dict:
    """Resemblyzer similarity of each shifted clip to its input, per shift and method."""
    import judges

    d_in = [judges.dvector(x, sr) for x, sr, _ in items]
    same, other = [], []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (same if items[i][2] == items[j][2] else other).append(judges.similarity(d_in[i], d_in[j]))
    out: dict = {"clips": len(items), "speakers": len({w for _, _, w in items}),
                 "same_speaker_other_clip_median": round(float(np.median(same)), 3) if same else None,
                 "other_speaker_median": round(float(np.median(other)), 3) if other else None}
    methods = {f"world_{m}": (lambda x, sr, s, m=m: shift(x[None], sr, PitchSettings(semitones=s, tracker=m))[0][0])
               for m in trackers}
    methods["naive_resample"] = naive_shift
    for name, fn in methods.items():
        per: dict = {}
        for s in shifts:
            sims = [judges.similarity(judges.dvector(fn(x, sr, s), sr), d) for (x, sr, _), d in zip(items, d_in,
                                                                                                   strict=True)]
            per[f"{s:+g}"] = {"median": round(float(np.median(sims)), 3), "min": round(float(np.min(sims)), 3)}
        out[name] = per
    return out


# Timbres the judge tells apart: General MIDI program and melody range (MIDI notes).
JUDGED = {"violin": (40, 55, 88), "cello": (42, 36, 67), "flute": (73, 60, 93), "clarinet": (71, 50, 86),
          "trumpet": (56, 55, 82), "oboe": (68, 58, 89), "alto_sax": (65, 49, 80), "organ": (19, 48, 84)}


def seconds_chunks(x: np.ndarray, sr: int, quiet_db: float = -45.0) -> list[np.ndarray]:
    """Whole one-second pieces of ``x`` that sound (RMS within ``quiet_db`` of the clip's loudest piece)."""
    pieces = [x[i: i + sr] for i in range(0, len(x) - sr + 1, sr)]
    if not pieces:
        return []
    rms = np.array([np.sqrt(np.mean(np.square(p)) + 1e-12) for p in pieces])
    return [p for p, r in zip(pieces, rms, strict=True) if 20 * np.log10(r / rms.max()) > quiet_db]


def timbre_judge(tmp: Path, sr: int, per_instrument: int = 24) -> tuple:
    """A log-mel CNN (evaluate.classifier) trained to name :data:`JUDGED` timbres from one second of a melody.

    Trained on ``per_instrument`` soundfont melodies of 4 s each (seeds 500+), tested on 6 more
    (seeds 900+). Returns (classifier, held-out accuracy, {timbre: held-out features}) for the FDs.
    """
    from wavesmith.evaluate import classifier

    names = list(JUDGED)
    train_x, train_y, test_x, test_y = [], [], [], []
    for k, (name, (program, low, high)) in enumerate(JUDGED.items()):
        for seed, count, xs, ys in ((500 + k, per_instrument, train_x, train_y), (900 + k, 6, test_x, test_y)):
            for p in render_melodies(tmp / f"judge-{name}-{seed}", program, low, high, count, 4.0, sample_rate=sr,
                                     seed=seed):
                chunks = seconds_chunks(A.load(p, sr, 1)[0], sr)
                xs += chunks
                ys += [k] * len(chunks)
    judge = classifier.train(train_x, np.array(train_y), names, sr, max_steps=800, max_seconds=240)
    probs, feats = judge.predict(test_x)
    accuracy = float(np.mean(probs.argmax(1) == np.array(test_y)))
    return judge, accuracy, {name: feats[np.array(test_y) == k] for k, name in enumerate(names)}


def bench_transfer(run: str, inputs: dict[str, list[Path]], semitones: float, target: str | None = None,
                   tmp: Path | None = None) -> dict:
    """f0 error and loudness L1 of a DDSP run's renderings against their inputs, and its speed.

    With ``target`` (a key of :data:`JUDGED`, the run's timbre) each output's one-second
    pieces are also named by :func:`timbre_judge`: the share named ``target`` is the
    recognition rate, and the Frechet distance of the judge's features to held-out real
    ``target`` melodies is given beside the distance between real melodies of two timbres.
    """
    import torch

    from wavesmith.generate import load_model
    from wavesmith.transfer import TransferSettings, melody

    torch.set_num_threads(1)
    model, meta = load_model(run, "cpu")
    sr, spec = model.info.sample_rate, model.features
    out: dict = {"run": meta["path"], "step": meta["step"], "semitones": semitones}
    judge = None
    if target:
        from wavesmith.evaluate.metrics import frechet_of

        judge, accuracy, real = timbre_judge(tmp, sr)
        others = {n: round(frechet_of(real[target], f), 1) for n, f in real.items() if n != target}
        out["judge"] = {"timbres": list(JUDGED), "held_out_accuracy": round(accuracy, 3),
                        f"fd_real_{target}_to_real_other_timbres": others}
    for group, paths in inputs.items():
        errors, l1, seconds, elapsed, world, pieces = [], [], 0.0, 0.0, 0.0, []
        for p in paths:
            x = A.load(p, sr, 1)
            seconds += x.shape[-1] / sr
            t = time.process_time()
            f0, ld = melody(p, x, sr, spec, TransferSettings(semitones=semitones))
            y = model.sample(1, x.shape[-1] / sr, {"f0": torch.from_numpy(f0)[None],
                                                  "loudness": torch.from_numpy(ld)[None]}, seed=0)[0].numpy()
            elapsed += time.process_time() - t
            t = time.process_time()
            AN.synthesize(AN.decompose(x[0], sr))
            world += time.process_time() - t
            if judge is not None:
                pieces += seconds_chunks(np.asarray(y).reshape(-1, y.shape[-1]).mean(0), sr)
            f_out, ld_out = AN.contours(y, sr, spec)
            both = (f0 > 0) & (f_out > 0)
            errors.append(np.abs(1200 * np.log2(f_out[both] / f0[both])))
            sounding = ld > -60
            l1.append(np.abs(ld_out[sounding] - ld[sounding]))
        e = np.concatenate(errors)
        out[group] = {"clips": len(paths), "seconds": round(seconds, 1),
                      "median_abs_f0_error_cents": round(float(np.median(e)), 2),
                      "p90_abs_f0_error_cents": round(float(np.percentile(e, 90)), 2),
                      "loudness_l1_db": round(float(np.concatenate(l1).mean()), 2),
                      "x_real_time": round(seconds / elapsed, 1),
                      "reference_world_resynthesis_x_real_time": round(seconds / world, 1)}
        if judge is not None and pieces:
            probs, feats = judge.predict(pieces)
            named = [judge.labels[i] for i in probs.argmax(1)]
            out[group].update({"pieces_judged": len(pieces),
                               f"recognised_as_{target}": round(named.count(target) / len(named), 3),
                               "named_most_often": max(set(named), key=named.count),
                               f"fd_to_real_{target}": round(frechet_of(feats, real[target]), 1)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speech", type=int, default=20, help="speech clips (the first N of speech-en, by name)")
    ap.add_argument("--notes-per-instrument", type=int, default=5, help="soundfont notes per instrument (max 5)")
    ap.add_argument("--step", type=float, default=3.0, help="semitones between tested shifts in -12..12")
    ap.add_argument("--trackers", default=",".join(AN.TRACKERS), help="trackers measured against known pitch")
    ap.add_argument("--pitch-trackers", default="harvest,dio", help="trackers tried inside the pitch shift")
    ap.add_argument("--skip-trackers", action="store_true", help="only the pitch part")
    ap.add_argument("--transfer-run", help="a ddsp run: also measure transfer onto its timbre")
    ap.add_argument("--transfer-semitones", type=float, default=0.0)
    ap.add_argument("--transfer-target", choices=list(JUDGED),
                    help="the run's timbre: also judge how often its output is named so, and its FD to real ones")
    ap.add_argument("--skip-pitch", action="store_true", help="leave out the pitch part")
    ap.add_argument("--profile", action="store_true", help="also time each WORLD stage of a shift")
    ap.add_argument("--speaker", type=int, default=0, metavar="N",
                    help="also judge speaker similarity on 2 clips each of N speakers (needs Resemblyzer)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trackers = args.trackers.split(",")
    notes = [n for n in soundfont_notes() if INSTRUMENTS[n.instrument][1].index(n.midi) % 5 < args.notes_per_instrument]
    result: dict = {}
    if not args.skip_trackers:
        result["trackers"] = bench_trackers(trackers, notes)
    speech = sorted((REAL / "speech-en").glob("*.wav"))[: args.speech]
    clips = {"speech": [(A.read(p)[0].mean(0).astype(np.float64), A.read(p)[1]) for p in speech],
             "soundfont_notes": [(n.audio, n.sample_rate) for n in notes]}
    shifts = [float(s) for s in np.arange(-12, 12 + 1e-9, args.step)]
    if not args.skip_pitch:
        result["pitch"] = bench_pitch(clips, shifts, args.pitch_trackers.split(","))
    if args.profile:
        result["profile"] = profile(clips)
    if args.speaker:
        result["speaker"] = bench_speaker(speaker_clips(args.speaker), shifts, args.pitch_trackers.split(","))
    if args.transfer_run:
        with tempfile.TemporaryDirectory() as tmp:
            inputs = {"clarinet_melodies": render_melodies(Path(tmp) / "clarinet", 71, 62, 84, 6, 4.0, seed=7),
                      "violin_melodies": render_melodies(Path(tmp) / "violin", 40, 62, 84, 6, 4.0, seed=8),
                      "flute_melodies": render_melodies(Path(tmp) / "flute", 73, 62, 84, 6, 4.0, seed=9),
                      "speech": speech}
            result["transfer"] = bench_transfer(args.transfer_run, inputs, args.transfer_semitones,
                                                args.transfer_target, Path(tmp))
    print(json.dumps(result, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
