"""``wavesmith pitch``: pitch moves and timbre stays, formants move and pitch stays, bad input loses nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from wavesmith import analysis as AN
from wavesmith import audio as A
from wavesmith.cli import main
from wavesmith.errors import WavesmithError
from wavesmith.pitch import PitchSettings, shift

SR = 16000


def vowel(f0: float = 150.0, formant: float = 1000.0, seconds: float = 1.2) -> np.ndarray:
    """A glottal-like pulse train through one resonance at ``formant`` Hz: (1, T) float32."""
    t = np.arange(int(seconds * SR)) / SR
    src = sum(np.sin(2 * np.pi * k * f0 * t) for k in range(1, int(SR / 2 / f0)))
    # Two-pole resonator, bandwidth 120 Hz.
    r = np.exp(-np.pi * 120 / SR)
    a1, a2 = -2 * r * np.cos(2 * np.pi * formant / SR), r * r
    y = np.zeros_like(src)
    for n in range(len(src)):
        y[n] = src[n] - a1 * y[n - 1] - a2 * y[n - 2] if n >= 2 else src[n]
    return (0.4 * y / np.abs(y).max())[None].astype(np.float32)


def envelope_peak_hz(x: np.ndarray) -> float:
    """Where the formant sits: the power centroid of the envelope within 6 dB of its top (300-4000 Hz).

    A centroid, not the argmax: an envelope re-estimated from a high voice is sampled at its
    harmonics, and its argmax snaps to the nearest one.
    """
    feats = AN.decompose(x[0], SR)
    env = np.median(10 * np.log10(feats.envelope[feats.f0 > 0]), axis=0)
    bins = np.fft.rfftfreq(2 * (env.shape[-1] - 1), 1 / SR)
    band = (bins > 300) & (bins < 4000)
    e, b = env[band], bins[band]
    top = e >= e.max() - 6
    w = 10 ** (e[top] / 10)
    return float((b[top] * w).sum() / w.sum())


def median_f0(x: np.ndarray) -> float:
    track = AN.track_f0(x, SR)
    return float(np.median(track.f0[track.voiced][10:-10]))


@pytest.fixture(scope="module")
def voice():
    return vowel()


@pytest.mark.parametrize("semitones", [-7.0, 4.0, 12.0])
def test_semitones_move_the_pitch_and_keep_the_formant_and_the_length(voice, semitones):
    y, track = shift(voice, SR, PitchSettings(semitones=semitones))
    assert y.shape == voice.shape
    cents = 1200 * np.log2(median_f0(y) / median_f0(voice))
    assert abs(cents - 100 * semitones) < 10
    # At +12 (300 Hz) harmonics sample the envelope every 300 Hz, and its re-estimate blurs.
    assert abs(envelope_peak_hz(y) / envelope_peak_hz(voice) - 1) < (0.03 if abs(semitones) <= 7 else 0.1)


def test_a_naive_resample_shift_moves_the_formant_so_the_check_above_can_fail(voice):
    ratio = 2 ** (4 / 12)
    chipmunk = A.resample(voice, int(SR * ratio), SR)  # plays 4 semitones higher, formant too, and shorter
    assert envelope_peak_hz(chipmunk) / envelope_peak_hz(voice) > 1.15


def test_formants_move_the_envelope_and_keep_the_pitch(voice):
    y, _ = shift(voice, SR, PitchSettings(formants=5.0))
    assert abs(1200 * np.log2(median_f0(y) / median_f0(voice))) < 10
    assert abs(envelope_peak_hz(y) / envelope_peak_hz(voice) - 2 ** (5 / 12)) < 0.03


def test_stereo_keeps_its_channels(voice):
    stereo = np.concatenate([voice, 0.5 * voice])
    y, _ = shift(stereo, SR, PitchSettings(semitones=3.0))
    assert y.shape == stereo.shape
    ratio = np.sqrt(np.mean(y[1] ** 2) / np.mean(y[0] ** 2))
    assert abs(ratio - 0.5) < 0.05


@pytest.mark.parametrize("bad", [PitchSettings(semitones=24.5), PitchSettings(semitones=float("nan")),
                                 PitchSettings(formants=-13), PitchSettings(tracker="crepe")])
def test_settings_out_of_range_are_refused(voice, bad):
    with pytest.raises(WavesmithError):
        shift(voice, SR, bad)


def test_cli_writes_marked_files_with_their_source_and_settings(voice, tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, voice[0], SR)
    out = tmp_path / "out"
    assert main(["pitch", str(src), "--out", str(out), "--semitones", "-3", "--formants", "1"]) == 0
    rec = [json.loads(s) for s in (out / "generated.jsonl").read_text().splitlines()]
    assert len(rec) == 1 and rec[0]["source"] == str(src) and rec[0]["file"] == "000.wav"
    assert rec[0]["settings"]["semitones"] == -3 and rec[0]["settings"]["formants"] == 1
    assert rec[0]["watermark"]["verified"] is True and rec[0]["c2pa"]["signed"] is True
    y, rate = A.read(out / "000.wav")
    assert rate == SR and y.shape == voice.shape


@pytest.mark.parametrize("case", ["semitones", "missing", "corrupt", "out_is_file", "second_corrupt"])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(voice, tmp_path, capsys, case):
    good = tmp_path / "good.wav"
    sf.write(good, voice[0], SR)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "out"
    args = {"semitones": [str(good), "--semitones", "25"], "missing": [str(tmp_path / "nope.wav")],
            "corrupt": [str(corrupt)], "out_is_file": [str(good)], "second_corrupt": [str(good), str(corrupt)]}[case]
    if case == "out_is_file":
        out.write_text("keep me")
    assert main(["pitch", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wavesmith: error:")
    if case == "out_is_file":
        assert out.read_text() == "keep me"
    else:
        assert not out.exists()


def test_8khz_audio_keeps_its_voice(voice):
    # WORLD's aperiodicity analysis turns 8 kHz audio into noise unless it runs at 16 kHz.
    x8 = A.resample(voice, SR, 8000)
    y, _ = shift(x8, 8000, PitchSettings(semitones=3.0))
    assert y.shape == x8.shape
    a, b = AN.track_f0(x8, 8000), AN.track_f0(y, 8000)
    assert b.voiced.mean() > 0.9
    both = a.voiced & b.voiced
    assert abs(np.median(1200 * np.log2(b.f0[both] / a.f0[both])) - 300) < 10


def test_polyphony_reads_one_voice_low_and_a_chord_high(voice):
    def score(x):
        return AN.polyphony(x, SR, AN.track_f0(x, SR))

    n = voice.shape[-1]
    noise = 0.1 * np.random.default_rng(0).standard_normal(n)
    third = voice[0] + vowel(f0=150.0 * 2 ** (4 / 12), formant=1400.0)[0, :n]  # a major third
    octave = voice[0] + vowel(f0=300.0, formant=1400.0)[0, :n]  # every partial a harmonic of 150 Hz
    assert score(voice) < AN.POLYPHONY_WARN / 4
    sine = 0.5 * np.sin(2 * np.pi * 300.0 * np.arange(n) / SR)  # harvest voices no bare sine: still one voice
    assert score(sine) < AN.POLYPHONY_WARN / 4
    assert score(noise) < AN.POLYPHONY_WARN / 2
    assert score(third) > 2 * AN.POLYPHONY_WARN
    assert score(octave) < AN.POLYPHONY_WARN  # an octave is one voice to any f0: said in the docstring


def test_cli_warns_in_one_line_on_a_chord_and_still_writes_it(voice, tmp_path, capsys):
    chord = tmp_path / "chord.wav"
    third = vowel(f0=150.0 * 2 ** (4 / 12), formant=1400.0)[0, : voice.shape[-1]]
    sf.write(chord, voice[0] + 0.6 * third, SR)  # the lower note louder, so it is the one followed
    one = tmp_path / "one.wav"
    sf.write(one, voice[0], SR)
    out = tmp_path / "out"
    assert main(["pitch", str(one), str(chord), "--out", str(out), "--semitones", "2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wavesmith: warning:") and "chord.wav" in err[0], err
    assert "not sound like one pitched voice" in err[0]
    rec = [json.loads(s) for s in (out / "generated.jsonl").read_text().splitlines()]
    assert [r["source"] for r in rec] == [str(one), str(chord)]
    assert rec[0]["polyphony"] < AN.POLYPHONY_WARN < rec[1]["polyphony"]
    assert (out / "001.wav").exists()
