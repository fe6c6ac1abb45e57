"""The waveform watermark: payload round trip, no false alarms, robustness to cheap attacks."""

from __future__ import annotations

import numpy as np
import pytest

from wavesmith import audio as A
from wavesmith.errors import WavesmithError
from wavesmith.watermark import detect, embed, payload_for
from wavesmith.watermark import spread as S
from wavesmith.watermark import spread_detect as D
from wavesmith.watermark import spread_embed as E


def _speechlike(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Voiced syllables: a gliding harmonic source through moving formants, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formant = 700 + 300 * np.sin(t * 3)
    x = sum(np.sin(h * phase) / h * (1 + np.cos(2 * np.pi * h * f0 / formant)) for h in range(1, 30))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    x = x * envelope + 0.003 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)[None]


def _drums(seconds: float, rate: int = 44100, seed: int = 1) -> np.ndarray:
    """Decaying noise bursts and a pitched kick, stereo."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = np.zeros(n)
    for start in range(0, n, rate // 4):
        length = min(n - start, rate // 5)
        tt = np.arange(length) / rate
        burst = rng.standard_normal(length) * np.exp(-tt * 30) * rng.uniform(0.2, 1)
        kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-tt * 40)) * tt) * np.exp(-tt * 12)
        x[start : start + length] += burst + kick * (start // (rate // 4) % 2)
    x = 0.4 * x / np.abs(x).max()
    return np.stack([x, 0.8 * x]).astype(np.float32)


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))


@pytest.fixture(scope="module")
def marked_speech():
    x = _speechlike(4.0)
    return x, embed(x, 16000, 0xBEEF)


def test_payload_round_trips_and_shape_is_kept(marked_speech):
    x, y = marked_speech
    assert y.shape == x.shape and y.dtype == np.float32
    d = detect(y, 16000)
    assert d.present and d.payload == 0xBEEF
    assert d.z >= d.threshold and 0.99 < d.confidence <= 1.0
    assert d.segments and d.segments[0][0] < 0.6 and d.segments[-1][1] > 3.4
    assert all(w["marked"] for w in d.windows) and len(d.windows) >= 6


def test_one_dimensional_input_gives_one_dimensional_output():
    x = _speechlike(2.0)[0]
    y = embed(x, 16000, 3)
    assert y.shape == x.shape
    assert detect(y, 16000).payload == 3


def test_only_the_marked_part_of_a_spliced_file_is_reported():
    x = _speechlike(6.0, seed=3)
    y = x.copy()
    y[:, 32000:64000] = embed(x[:, 32000:64000], 16000, 11)  # seconds 2-4 marked
    d = detect(y, 16000)
    assert d.present and d.payload == 11
    assert len(d.segments) == 1 and 1.0 <= d.segments[0][0] <= 2.6 and 3.4 <= d.segments[0][1] <= 5.0


def test_mark_is_at_least_30_db_below_speech_and_drums(marked_speech):
    x, y = marked_speech
    assert _snr_db(x, y) >= 30.0
    drums = _drums(3.0)
    marked = embed(drums, 44100, 1234)
    assert _snr_db(drums, marked) >= 30.0
    d = detect(marked, 44100)
    assert d.present and d.payload == 1234


def test_quiet_frames_get_a_quiet_mark():
    # The clip-wide SNR says little about a decay tail 40 dB under the hit or a pause in
    # speech: the allocation alone puts the mark within 9 dB of the signal in half the frames
    # of a snare hit and above the signal in speech pauses (measured, FRAME_MASK = 0).
    for x, rate in ((_drums(3.0), 44100), (_hit(2.0, 44100, 0), 44100), (_speechlike(3.0), 16000)):
        seg = E.frame_snr_db(x, embed(x, rate, 7), rate)
        assert np.percentile(seg, 5) >= 7.0 and np.median(seg) >= 12.0, (np.percentile(seg, 5), np.median(seg))


@pytest.mark.parametrize("seed", range(3))
def test_unmarked_signals_are_not_detected(seed):
    rng = np.random.default_rng(seed)
    rate = 16000
    t = np.arange(3 * rate) / rate
    signals = [
        0.1 * rng.standard_normal((1, len(t))).astype(np.float32),
        (0.3 * np.sin(2 * np.pi * (440 + 100 * seed) * t)).astype(np.float32)[None],
        _speechlike(3.0, seed=seed + 10),
        A.resample(_drums(3.0, seed=seed + 20), 44100, rate),
    ]
    for x in signals:
        d = detect(x, rate)
        assert not d.present and d.payload is None, d.z


def test_other_key_does_not_detect(marked_speech):
    _, y = marked_speech
    assert not detect(y, 16000, key="someone-else").present


@pytest.mark.parametrize(
    "attack",
    ["gain_-10db", "gain_+10db", "noise_40db", "crop_1s", "shift_fraction", "resample_8k"],
)
def test_mark_survives_cheap_attacks(marked_speech, attack):
    _, y = marked_speech
    rate = 16000
    rng = np.random.default_rng(5)
    if attack == "gain_-10db":
        z = y * 10 ** (-10 / 20)
    elif attack == "gain_+10db":
        z = np.clip(y * 10 ** (10 / 20), -1, 1)
    elif attack == "noise_40db":
        z = y + rng.standard_normal(y.shape).astype(np.float32) * np.sqrt(np.mean(y**2)) * 10 ** (-40 / 20)
    elif attack == "crop_1s":
        z = y[:, int(1.37 * rate) : int(2.37 * rate)]
    elif attack == "shift_fraction":
        z = y[:, 101:]
    else:
        z = A.resample(A.resample(y, rate, 8000), 8000, rate)
    d = detect(z, rate)
    assert d.present, (attack, d.z)
    if attack != "crop_1s":  # a 1 s crop carries each bit on few cells
        assert d.payload == 0xBEEF


def _hit(seconds: float, rate: int, seed: int, room: float = 1e-3) -> np.ndarray:
    """One snare hit: a 185 Hz body and a noise burst decaying into room tone of level ``room``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    body = np.sin(2 * np.pi * 185 * t) * np.exp(-t * 15)
    burst = rng.standard_normal(len(t)) * np.exp(-t * 8)
    x = body + 0.7 * burst + room * rng.standard_normal(len(t))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)[None]


@pytest.mark.parametrize("seed", range(6))
def test_short_clips_keep_their_mark_under_white_noise_at_20_db(seed):
    # The benchmark's hardest common case: 2 s clips, noise 20 dB below the whole signal.
    rng = np.random.default_rng(100 + seed)
    for x, rate in ((_speechlike(2.0, seed=seed), 16000), (_hit(2.0, 44100, seed), 44100)):
        y = A.as_written(embed(x, rate, 0x5A5A))
        z = y + rng.standard_normal(y.shape).astype(np.float32) * np.sqrt(np.mean(y**2)) * 0.1
        d = detect(z, rate)
        assert d.present, (rate, d.z)


def _tabla(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A tuned drum stroke: five near-harmonic modes over a settling pitch, ringing for seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(250, 450) * (1 + 0.05 * np.exp(-t * 20))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    modes = (
        rng.uniform(0.3, 1) / h * np.sin(h * phase + rng.uniform(0, 6)) * np.exp(-t * rng.uniform(2, 6) * h**0.5)
        for h in range(1, 6)
    )
    x = sum(modes) + 0.3 * rng.standard_normal(len(t)) * np.exp(-t * 60)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)[None]


@pytest.mark.parametrize("seed", range(6))
def test_ringing_tones_keep_their_mark_under_white_noise_at_20_db(seed):
    # The benchmark's misses under noise were such strokes (tabla, cowbell): a few partials
    # whose decay the noise soon covers. Read as they are, the whitened log magnitudes of the
    # covered cells drown the rest (the detector without its denoised view missed seeds 0
    # and 4 here, z 3.2 and 3.9); weighted by their share of signal, z is 6 to 11.
    x = _tabla(2.0, 44100, seed)
    y = A.as_written(embed(x, 44100, 0x5A5A))
    rng = np.random.default_rng(200 + seed)
    z = y + rng.standard_normal(y.shape).astype(np.float32) * np.sqrt(np.mean(y**2)) * 0.1
    d = detect(z, 44100)
    assert d.present and d.z >= 1.2 * d.threshold, d.z


@pytest.mark.parametrize("seed", range(3))
def test_one_second_crops_anywhere_in_a_drum_loop_are_detected(seed):
    y = A.as_written(embed(_drums(4.0, seed=seed), 44100, 99))
    rng = np.random.default_rng(seed)
    for start in rng.integers(0, y.shape[-1] - 44100, size=4):
        d = detect(y[:, start : start + 44100], 44100)
        assert d.present and d.payload == 99, (start, d.z)


def test_near_silent_clip_keeps_a_mark_that_survives_16_bit_output():
    rng = np.random.default_rng(7)
    x = (1e-4 * rng.standard_normal((1, 48000))).astype(np.float32)  # -80 dBFS room tone
    y = embed(x, 16000, 4321)
    level, mark = (10 * np.log10(np.mean(v.astype(np.float64) ** 2)) for v in (x, y - x))
    assert mark >= level - S.TARGET_SNR_DB + 10  # lifted towards MIN_MARK_DBFS, not 30 dB under
    d = detect(A.as_written(y), 16000)
    assert d.present and d.payload == 4321


def test_too_short_clip_names_the_minimum():
    with pytest.raises(WavesmithError, match="MIN_SECONDS"):
        embed(np.zeros((1, 8000), np.float32) + 0.1, 16000, 1)


def test_silent_clip_is_refused_and_short_audio_is_not_detected():
    with pytest.raises(WavesmithError, match="silent"):
        embed(np.zeros((1, 32000), np.float32), 16000, 1)
    assert not detect(np.zeros((1, 100), np.float32), 16000).present


def test_payload_for_is_stable_16_bit():
    assert payload_for("run-1") == payload_for("run-1")
    assert payload_for("run-1") != payload_for("run-2")
    assert all(0 <= payload_for(f"r{i}") < 2**16 for i in range(50))


def test_threshold_bounds_false_positives_by_design():
    views, n = len(S.VIEWS), S.PHASES * S.PERIOD
    assert views * D.tail_bound(D.TAU_ALIGNED) + views * n * D.tail_bound(D.TAU_SEARCH) <= S.DESIGN_FPR * 1.0001
    assert D.tail_bound(3.0) <= np.exp(-4.5) and 4.0 < D.TAU_ALIGNED < D.TAU_SEARCH < 5.5
    # Empirically: on unmarked audio, the aligned sync statistic of 300 different keys is
    # ~N(0,1) in every view (the features, weights included, are computed without the key).
    rng = np.random.default_rng(0)
    x = _speechlike(3.0) + 0.02 * rng.standard_normal((1, 48000)).astype(np.float32)
    views = D.features(S.mix16(x, 16000))
    keys = [S.pattern(f"null-key-{i}") for i in range(300)]
    for feats in views:
        chips = D.chip_sums(D.fold(feats[0]), 0)
        zs = [D.z_score(chips, pat.sign, (pat.role < 0).astype(np.float64)) for pat in keys]
        assert abs(np.mean(zs)) < 0.2 and 0.8 < np.std(zs) < 1.2


def test_marking_and_detection_run_faster_than_real_time():
    import time

    x = _speechlike(20.0)
    detect(embed(x[:, :32000], 16000, 7), 16000)  # first calls pay for torch's start-up
    t0 = time.perf_counter()
    y = embed(x, 16000, 7)
    t1 = time.perf_counter()
    detect(y, 16000)
    t2 = time.perf_counter()
    # >= 100x is the benchmark's figure; here a loose bound that survives a busy machine.
    assert 20.0 / (t1 - t0) > 20 and 20.0 / (t2 - t1) > 20


def test_audio_with_little_in_the_band_is_not_covered_in_hiss():
    # A 6 kHz tone holds only its onset click in 60-3800 Hz. Scaling the mark up to 30 dB
    # under the tone would add noise there far louder than the band's own content (+22 dB,
    # measured before the fix), audible and still not detectable: MAX_CHANGE bounds it.
    rng = np.random.default_rng(3)
    t = np.arange(3 * 16000) / 16000
    tones = (np.sin(2 * np.pi * 6000 * t), np.sin(2 * np.pi * 5000 * t) + 2e-3 * rng.standard_normal(len(t)))
    for tone in tones:
        x = (0.5 * tone)[None].astype(np.float32)
        y = embed(x, 16000, 1)
        band = slice(S.K0, S.K1)
        signal = S.stft(S.mix16(x, 16000))[:, band].abs().square().sum()
        mark = S.stft(S.mix16(y - x, 16000))[:, band].abs().square().sum()
        assert 10 * np.log10(float(mark / signal)) <= 20 * np.log10(S.MAX_CHANGE) + 1.0


def test_audio_under_the_last_16_bit_step_is_silent():
    with pytest.raises(WavesmithError, match="silent clip"):
        embed((3e-6 * np.random.default_rng(0).standard_normal((1, 48000))).astype(np.float32), 16000, 1)


def test_frame_snr_of_a_clip_shorter_than_a_frame_is_empty():
    assert E.frame_snr_db(np.ones((1, 10), np.float32), np.ones((1, 10), np.float32), 16000).size == 0
