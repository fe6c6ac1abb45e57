"""``wavesmith.analysis``: f0 trackers, voicing, loudness and the WORLD round trip, on tones of known pitch."""

from __future__ import annotations

import numpy as np
import pytest

from wavesmith import analysis as AN
from wavesmith.errors import WavesmithError

SR = 16000


def harmonic(f0: float, seconds: float, sr: int = SR, harmonics: int = 12) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, harmonics + 1) if k * f0 < sr / 2)
    return 0.3 * x / np.abs(x).max()


def tone_then_silence(f0: float) -> np.ndarray:
    return np.concatenate([harmonic(f0, 1.0), np.zeros(SR // 2)])


@pytest.mark.parametrize("method", AN.TRACKERS)
@pytest.mark.parametrize("f0", [110.0, 261.6, 441.0])
def test_each_tracker_finds_a_tones_pitch_and_leaves_silence_unvoiced(method, f0):
    track = AN.track_f0(tone_then_silence(f0), SR, method)
    tone = (track.times > 0.05) & (track.times < 0.95)
    silence = track.times > 1.05
    assert track.voiced[tone].mean() > 0.95
    assert not track.voiced[silence].any()
    assert np.nanmedian(np.abs(track.cents(f0)[tone])) < 5.0


def test_yin_resolves_fractions_of_a_sample():
    # 441 Hz at 16 kHz is a period of 36.28 samples: whole-sample lags read 36 (+13 cents) or 37 (-34 cents).
    track = AN.track_f0(harmonic(441.0, 0.5), SR, "yin")
    assert np.nanmedian(np.abs(track.cents(441.0)[20:-20])) < 2.0


def test_frames_are_centred_on_multiples_of_the_frame_period():
    track = AN.track_f0(harmonic(200.0, 1.0), SR, "harvest", frame_period_ms=10.0)
    assert track.frame_period == 0.01 and np.allclose(np.diff(track.times), 0.01)
    assert len(AN.loudness(harmonic(200.0, 1.0), SR, frame_period_ms=10.0)) == len(track.times)


def test_loudness_reads_a_sine_in_db_and_follows_its_level():
    t = np.arange(SR) / SR
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    level = AN.loudness(sine, SR)
    assert abs(np.median(level) - 20 * np.log10(0.5 / np.sqrt(2))) < 0.3  # A(1 kHz) = 0 dB
    assert abs(np.median(AN.loudness(0.05 * sine / 0.5, SR)) - np.median(level) + 20) < 0.1
    low = AN.loudness(0.5 * np.sin(2 * np.pi * 100 * t), SR)
    assert np.median(level) - np.median(low) > 15  # A-weighting: 100 Hz is about 19 dB down
    assert AN.loudness(np.zeros(SR), SR).max() == -120.0


def test_world_round_trip_keeps_length_and_pitch():
    x = harmonic(180.0, 1.0)
    y = AN.synthesize(AN.decompose(x, SR))
    assert y.shape == x.shape and y.dtype == np.float32
    track = AN.track_f0(y, SR)
    assert np.nanmedian(np.abs(track.cents(180.0)[20:-20])) < 5.0


def test_warp_frequency_moves_a_peak_by_the_ratio():
    bins = np.arange(513)
    spectra = np.exp(-0.5 * ((bins - 100) / 5.0) ** 2)[None]
    assert np.argmax(AN.warp_frequency(spectra, 1.5)) == 150
    assert np.argmax(AN.warp_frequency(spectra, 0.5)) == 50


def test_bad_tracker_settings_are_user_errors():
    with pytest.raises(WavesmithError, match="unknown f0 tracker"):
        AN.track_f0(harmonic(200.0, 0.2), SR, "crepe")
    with pytest.raises(WavesmithError, match="fmin < fmax"):
        AN.track_f0(harmonic(200.0, 0.2), SR, fmin=500, fmax=100)


def test_dio_yin_undoes_dios_octave_slips(monkeypatch):
    # dio reads the middle of a 220 Hz tone an octave up, and one stretch as a stray subharmonic:
    # yin's octave settles the first, yin's value replaces the second.
    x = harmonic(220.0, 1.0)
    real_dio = AN.pyworld.dio

    def slipping_dio(*args, **kwargs):
        f0, times = real_dio(*args, **kwargs)
        f0 = f0.copy()
        f0[(times > 0.3) & (times < 0.5)] *= 2.0
        f0[(times > 0.6) & (times < 0.7)] /= 3.0
        return f0, times

    monkeypatch.setattr(AN.pyworld, "dio", slipping_dio)
    tone = (np.arange(201) * 0.005 > 0.05) & (np.arange(201) * 0.005 < 0.95)
    slipped = AN.track_f0(x, SR, "dio")
    assert np.nanmax(np.abs(slipped.cents(220.0)[tone[: len(slipped.f0)]])) > 1000
    fixed = AN.track_f0(x, SR, "dio-yin")
    assert np.nanmax(np.abs(fixed.cents(220.0)[tone[: len(fixed.f0)]])) < 10.0


def test_aperiodicity_is_d4c_on_every_second_frame_and_linear_between():
    x = harmonic(150.0, 0.5) + 0.01 * np.random.default_rng(0).standard_normal(SR // 2)
    track = AN.track_f0(x, SR, "harvest")
    fft = AN.pyworld.get_cheaptrick_fft_size(SR, AN.F0_FLOOR)
    full = AN.pyworld.d4c(x, track.f0, track.times, SR, fft_size=fft)
    fast = AN._aperiodicity(x, track.f0, track.times, SR, fft)
    assert fast.shape == full.shape
    assert np.abs(fast[:: AN.APERIODICITY_STRIDE] - full[:: AN.APERIODICITY_STRIDE]).max() < 1e-3
    assert np.allclose(fast[1:-1:2], 0.5 * (fast[:-2:2] + fast[2::2]))
    assert np.abs(fast - full).mean() < 0.05
