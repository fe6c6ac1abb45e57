"""The maths of wavesmith.evaluate on inputs whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from wavesmith.evaluate import features
from wavesmith.evaluate import memorization as M
from wavesmith.evaluate import metrics as m


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert m.frechet(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_frechet_is_symmetric_and_zero_for_identical_full_covariances():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    assert m.frechet_of(x, x) == pytest.approx(0.0, abs=1e-8)
    assert m.frechet_of(x, y) == pytest.approx(m.frechet_of(y, x), rel=1e-6)
    assert m.frechet_of(x, y) > 1.0


def test_inception_scores_of_confident_balanced_and_of_uniform_predictions():
    confident = np.eye(4)[np.arange(400) % 4]
    uniform = np.full((400, 4), 0.25)
    assert m.inception_score(confident) == pytest.approx(4.0, rel=1e-6)
    assert m.inception_score(uniform) == pytest.approx(1.0, rel=1e-6)
    assert m.modified_inception_score(uniform) == pytest.approx(1.0, rel=1e-6)
    assert m.modified_inception_score(confident) > 1e3  # confident and diverse: KL between classes is huge
    prior = np.full(4, 0.25)
    assert m.am_score(confident, prior) == pytest.approx(0.0, abs=1e-6)
    assert m.am_score(uniform, prior) == pytest.approx(np.log(4), rel=1e-6)


def test_ndb_k_finds_no_differing_bins_for_one_distribution_and_many_for_a_shifted_one():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(600, 3))
    centres = m.kmeans(real, 10)
    assert m.ndb_k(real, rng.normal(size=(600, 3)), centres) <= 0.2
    assert m.ndb_k(real, rng.normal(size=(600, 3)) + 1.5, centres) >= 0.6


def test_wasserstein_of_a_shift_is_the_shift_and_ks_of_disjoint_samples_is_one():
    rng = np.random.default_rng(3)
    a = rng.normal(size=500)
    assert m.wasserstein1(a, a + 2.0) == pytest.approx(2.0, rel=1e-9)
    assert m.ks_statistic(a, a + 100) == pytest.approx(1.0)
    assert m.ks_statistic(a, a) == pytest.approx(0.0)
    assert m.wasserstein1(np.array([np.nan]), a) is None


def test_features_of_tone_noise_and_silence():
    sr = 16000
    t = np.arange(sr) / sr
    tone = np.zeros((1, sr), np.float32)
    tone[0, : sr // 2] = 0.5 * np.sin(2 * np.pi * 220 * t[: sr // 2]) + 0.2 * np.sin(2 * np.pi * 440 * t[: sr // 2])
    noise = (0.1 * np.random.default_rng(0).standard_normal((1, sr))).astype(np.float32)
    f = features.extract([tone, noise, np.zeros((1, sr), np.float32)], sr)
    assert f.f0[0] == pytest.approx(220, rel=0.03)  # YIN picks the fundamental, not the louder-looking partial
    assert np.isnan(f.f0[1]) and np.isnan(f.f0[2])
    assert f.duration[0] == pytest.approx(0.5, abs=0.05)  # half of the clip is silent
    assert f.duration[2] == 0.0
    assert f.loudness[1] == pytest.approx(-20.0, abs=0.3)  # RMS 0.1
    assert f.centroid[1] > 3000 > f.centroid[0]
    assert f.embedding.shape == (3, 2 * features.N_MELS)


def test_trailing_silence_is_not_part_of_a_clips_sound_but_leading_silence_is():
    # A watermarked one-shot is kept at 1 s however short its hit; a real sample ends with its sound.
    # The log-mel frames (fd_logmel) and the loudness stop where the sound does.
    sr = 16000
    t = np.arange(sr // 4) / sr
    hit = (np.exp(-t / 0.03) * np.random.default_rng(1).standard_normal(len(t))).astype(np.float32)[None] * 0.5
    padded = np.zeros((1, sr), np.float32)
    padded[:, : hit.shape[-1]] = hit
    faint = padded.copy()
    faint[:, hit.shape[-1]:] = 10 ** (-85 / 20) * np.random.default_rng(2).standard_normal(sr - hit.shape[-1])
    late = np.zeros((1, sr), np.float32)
    late[:, sr // 2: sr // 2 + hit.shape[-1]] = hit
    silence = np.zeros((1, sr), np.float32)
    f = features.extract([hit, padded, faint, late, silence], sr)
    for i in (1, 2):
        assert f.loudness[i] == pytest.approx(f.loudness[0], abs=0.5)
    per_clip = [len(features.extract([c], sr).frames) for c in (hit, padded, faint, late, silence)]
    assert per_clip[1] == per_clip[0] == per_clip[2]  # the padding adds no frame
    assert per_clip[3] > per_clip[0] + 20  # the silence before a late onset is kept: placement matters
    assert per_clip[4] > 50  # a silent clip keeps its length (the silence calibration)


def test_nearest_neighbour_threshold_ignores_exact_duplicates_in_the_held_out_set():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(50, 8))
    held = np.concatenate([rng.normal(size=(20, 8)), train[:1]])
    d, idx = M.nearest(held, train)
    assert d[-1] == pytest.approx(0.0, abs=1e-6) and idx[-1] == 0
    assert M.threshold(d) == pytest.approx(0.5 * d[:-1].min())
