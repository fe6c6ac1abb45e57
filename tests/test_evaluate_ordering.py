"""The metrics rank known damage: real held-out clips sit at the floor, damage scores worse in
proportion, exact copies of training clips are flagged and real held-out clips are not.

Small synthetic labelled fixtures (tones, chirps, noise bursts) at 8 kHz, so the whole file
runs in seconds; the same check on real recordings is ``benchmarks/evaluate_ordering.py``.
"""

from __future__ import annotations

import degrade
import numpy as np
import pytest

from wavesmith.evaluate import classifier
from wavesmith.evaluate import metrics as m
from wavesmith.evaluate.core import REFERENCE, RealSets, evaluate_arrays
from wavesmith.evaluate.features import extract

SR = 8000


@pytest.fixture(scope="module")
def world():
    train, y_train = degrade.synthetic_clips(160, SR, seed=1, seconds=0.5)
    ref, y_ref = degrade.synthetic_clips(48, SR, seed=2, seconds=0.5)
    floor, y_floor = degrade.synthetic_clips(48, SR, seed=3, seconds=0.5)
    fresh, y_fresh = degrade.synthetic_clips(48, SR, seed=4, seconds=0.5)
    clf = classifier.train(train, y_train, list(degrade.LABELS), SR, ref, y_ref, max_steps=50, batch_size=32)
    real = RealSets(SR, ref, floor, train, [f"train{i}" for i in range(len(train))], y_ref, y_floor, held_out=REFERENCE)
    return {"real": real, "clf": clf, "fresh": fresh, "y_fresh": y_fresh, "train": train}


def _damaged(clips, kind, strength):
    return degrade.damage(clips, kind, strength, SR)


def _fd_logmel(clips, ref_feats):
    return m.frechet_of(extract(clips, SR).frames, ref_feats.frames)


def test_classifier_learns_the_synthetic_classes(world):
    assert world["clf"].test_accuracy >= 0.9


def test_real_clips_score_near_the_floor_and_far_from_noise(world):
    res, _ = evaluate_arrays(world["fresh"], [f"f{i}" for i in range(48)], world["real"], world["clf"],
                          world["y_fresh"])
    for name in ("fd_logmel", "fd_classifier"):
        r = res[name]
        assert r["value"] < 2.5 * r["real_floor"] + 1.0, (name, r)
        assert r["noise"] > 10 * r["value"], (name, r)
        assert r["silence"] > 10 * r["value"], (name, r)
    assert res["inception_score"]["value"] > 0.8 * res["inception_score"]["real_floor"]
    assert res["inception_score"]["noise"] < 1.5
    assert res["classifier_accuracy"]["value"] >= 0.9
    assert res["memorization"]["value"] == 0.0 and res["memorization"]["flagged"] == []


# Three strengths per damage, mildest first: 20/10/0 dB SNR, 4/2/1 kHz low-pass, clip at 50/10/2 % of peak.
DAMAGE = {"noise": (20, 10, 0), "lowpass": (3000, 2000, 1000), "clip": (0.5, 0.1, 0.02)}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damage_scores_worse_in_proportion_to_its_strength(world, kind):
    real = world["real"]
    ref_feats = extract(real.reference, SR)
    floor = _fd_logmel(world["fresh"], ref_feats)
    fd = [_fd_logmel(_damaged(world["fresh"], kind, s), ref_feats) for s in DAMAGE[kind]]
    assert fd[0] > 1.5 * floor, (floor, fd)
    assert fd[0] < fd[1] < fd[2], (floor, fd)
    _, f_ref = world["clf"].predict(real.reference)
    _, f_clean = world["clf"].predict(world["fresh"])
    fdc = [m.frechet_of(world["clf"].predict(_damaged(world["fresh"], kind, s))[1], f_ref) for s in DAMAGE[kind]]
    clean = m.frechet_of(f_clean, f_ref)
    assert clean < fdc[1] < fdc[2], (clean, fdc)


def test_exact_copies_of_training_clips_are_flagged_and_held_out_clips_are_not(world):
    copies = world["train"][:10]
    clips = copies + world["fresh"][:20]
    files = [f"copy{i}" for i in range(10)] + [f"fresh{i}" for i in range(20)]
    res, _ = evaluate_arrays(clips, files, world["real"], None)
    mem = res["memorization"]
    assert sorted(mem["flagged"]) == sorted(files[:10])
    assert [c["nearest_train"] for c in mem["copies"]] == [f"train{i}" for i in range(10)]
    assert mem["real_floor"] == 0.0 and mem["noise"] == 0.0
    assert "classifier_accuracy" not in res  # no classifier, no classifier metrics


def test_slightly_changed_copies_are_still_flagged(world):
    rng = np.random.default_rng(5)
    near = [np.clip(x * 0.97 + 1e-4 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)
            for x in world["train"][:8]]
    res, _ = evaluate_arrays(near, [f"n{i}" for i in range(8)], world["real"], None)
    assert len(res["memorization"]["flagged"]) == 8
