"""The pure logic of the voice-cloning benchmark (benchmarks/judges.py, voice_clone.py).

The judges themselves (Resemblyzer, Whisper, DNSMOS) are the ``bench`` extra: their tests skip
when it is not installed.
"""

from __future__ import annotations

import csv
import json

import judges as J
import numpy as np
import pytest
import soundfile as sf
import voice_clone as V

from wavesmith import audio as A

SR = 16000


def test_number_words_reads_integers_as_said():
    assert J.number_words(0) == "zero"
    assert J.number_words(15) == "fifteen"
    assert J.number_words(40) == "forty"
    assert J.number_words(2024) == "two thousand twenty four"
    assert J.number_words(1_000_305) == "one million three hundred five"


def test_normalize_folds_case_punctuation_and_numbers():
    assert J.normalize("Hello, World!") == ["hello", "world"]
    assert J.normalize("It's 40 years - isn't it?") == ["it's", "forty", "years", "isn't", "it"]
    assert J.normalize("10,000 at 3.5%") == ["ten", "thousand", "at", "three", "point", "five", "percent"]
    assert J.normalize("Press *  \u2019pound\u2019") == ["press", "pound"]
    assert J.normalize("the 12th at 5 P.M. [beep] (2 seconds of silence)") == ["the", "twelfth", "at", "five", "pm"]
    assert J.normalize("X-ray") == J.normalize("xray") == ["xray"]
    assert J.ordinal_words(21) == "twenty first" and J.ordinal_words(50) == "fiftieth"


def test_wer_counts_substitutions_insertions_and_deletions():
    assert J.wer("the cat sat", "The cat sat.") == 0.0
    assert J.wer("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert J.wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert J.wer("the cat sat", "the cat sat down here") == pytest.approx(2 / 3)
    assert J.wer("seven boats", "7 boats") == 0.0


def test_wer_of_a_corpus_weights_sentences_by_their_length():
    # one error in a 1-word sentence and none in a 9-word one: 1/10, not the mean of 1.0 and 0.0
    refs = ["yes", "one two three four five six seven eight nine"]
    hyps = ["no", "one two three four five six seven eight nine"]
    assert J.wer(refs, hyps) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        J.wer(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        J.wer("...", "anything")


def voice(f0: float, formant: float, seconds: float, seed: int) -> np.ndarray:
    """A crude voiced sound: a pulse train at f0 (with jitter) through a resonance at ``formant``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    f = f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * np.arange(n) / SR + rng.uniform(0, 6)))
    phase = np.cumsum(f / SR)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64) + 0.01 * rng.standard_normal(n)
    t = np.arange(256) / SR
    ir = np.exp(-t * 600) * np.sin(2 * np.pi * formant * t)
    y = np.convolve(pulses, ir)[:n]
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_speaker_classifier_tells_apart_two_voices_it_was_trained_on():
    train = [(voice(110, 700, 3, s), SR, "low") for s in range(3)] + [(voice(220, 1500, 3, s), SR, "high")
                                                                      for s in range(3)]
    clf = J.SpeakerClassifier().fit(train)
    assert clf.speakers == ["high", "low"]
    assert clf.predict(voice(112, 700, 2, 10), SR) == "low"
    assert clf.predict(voice(215, 1500, 2, 11), SR) == "high"
    # an 8 kHz copy of the same voice is the same speaker: the features stop at 4 kHz
    x = voice(110, 700, 2, 12)
    assert clf.predict(A.resample(x[None], SR, SR // 2)[0], SR // 2) == "low"


def test_mel_stats_gives_one_row_per_window_and_one_for_a_short_clip():
    assert J.mel_stats(voice(150, 900, 4.6, 0), SR).shape == (3, 160)
    assert J.mel_stats(voice(150, 900, 0.3, 0), SR).shape == (1, 160)


def write_voices(root, speakers=("anna", "bert"), clips=12, seconds=2.0):
    rows = [["path", "speaker", "text", "language", "seconds"]]
    for k, spk in enumerate(speakers):
        (root / spk).mkdir(parents=True)
        for i in range(clips):
            path = root / spk / f"{i:02d}.wav"
            sf.write(path, voice(110 * (k + 1), 700 + 600 * k, seconds, i), SR)
            rows.append([f"{spk}/{i:02d}.wav", spk, f"clip {i}", "en-us", seconds])
    with open(root / "metadata.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_split_gives_references_of_the_asked_length_and_disjoint_enrolment_and_test(tmp_path):
    write_voices(tmp_path)
    speakers = V.read_voices(tmp_path, ref_seconds=5.0, test_seconds=6.0, seed=0)
    assert sorted(speakers) == ["anna", "bert"]
    for s in speakers.values():
        refs, enrol, test = ({c.path for c in part} for part in (s.refs, s.enrol, s.test))
        assert sum(c.seconds for c in s.refs) >= 5.0 and len(refs) == 3
        assert not (refs & enrol or refs & test or enrol & test)
        assert sum(c.seconds for c in s.test) <= 6.0 and len(test) == 3
    again = V.read_voices(tmp_path, ref_seconds=5.0, test_seconds=6.0, seed=0)
    assert [c.path for c in again["anna"].refs] == [c.path for c in speakers["anna"].refs]


def test_segments_join_short_clips_to_at_least_three_seconds(tmp_path):
    write_voices(tmp_path, speakers=("anna",), clips=7, seconds=1.0)
    s = V.read_voices(tmp_path, ref_seconds=0.5, test_seconds=100, seed=0)["anna"]
    segs = V.segments(s.enrol + s.test)
    assert len(segs) == 2 and all(len(x) >= 3 * SR for x in segs)


def test_said_reads_files_and_texts_from_generated_jsonl(tmp_path):
    for i in (1, 2):
        sf.write(tmp_path / f"{i:03d}.wav", np.zeros(SR, np.float32), SR)
    lines = [{"file": "002.wav", "text": "second"}, {"file": "001.wav", "text": "first"}]
    (tmp_path / "generated.jsonl").write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    got = V.said(tmp_path, ["first", "second"])
    assert [(p.name, t) for p, t in got] == [("002.wav", "second"), ("001.wav", "first")]
    (tmp_path / "generated.jsonl").unlink()  # no log: numbered files in order, one per sentence
    assert [(p.name, t) for p, t in V.said(tmp_path, ["a", "b"])] == [("001.wav", "a"), ("002.wav", "b")]
    with pytest.raises(SystemExit, match="2 WAV files for 3 sentences"):
        V.said(tmp_path, ["a", "b", "c"])


def test_resemblyzer_d_vectors_are_unit_length_and_separate_two_voices():
    pytest.importorskip("resemblyzer")
    a1, a2 = (J.dvector(voice(110, 700, 3, s), SR) for s in (0, 1))
    b = J.dvector(voice(230, 1700, 3, 2), SR)
    assert np.linalg.norm(a1) == pytest.approx(1.0, abs=1e-4)
    assert J.similarity(a1, a2) > J.similarity(a1, b)
    assert J.similarity([a1, a2], [a1, a2]) == pytest.approx(1.0, abs=1e-6)
