"""DDSP: the synthesizers do what the paper says, and a few steps on a tone learn its timbre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavesmith import analysis as AN
from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.ddsp import DDSP, Config, harmonic_synth, noise_synth, spectral_loss

SR = 16000
HOP = 160  # 100 frames a second


def small(**kw) -> DDSP:
    torch.manual_seed(0)
    return DDSP(Config(hidden=64, mlp_layers=1, harmonics=30, noise_bands=33, reverb_seconds=0.1, **kw), DataInfo(SR))


def test_harmonic_synth_plays_the_given_f0_and_drops_harmonics_above_nyquist():
    f0 = torch.full((1, 101), 3000.0)
    dist = torch.ones(1, 101, 5)
    y = harmonic_synth(f0, torch.ones(1, 101, 1), dist, SR, SR)[0].numpy()
    spec = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    peaks = freqs[spec > 0.1 * spec.max()]
    assert set(np.round(peaks).astype(int)) == {3000, 6000}  # 9000 Hz and up are past Nyquist


def test_noise_synth_follows_its_filter():
    mags = torch.zeros(1, 101, 33)
    mags[..., :8] = 1.0  # pass band: bins 0..7 of 32 -> below ~1.9 kHz
    y = noise_synth(mags, HOP, SR, torch.Generator().manual_seed(0))[0].numpy()
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spec[freqs < 1500].mean() > 100 * spec[freqs > 3000].mean()


def tone(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A bright tone with a fixed timbre: harmonic k at 1/k, brightest band around 1.5 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    vib = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(vib) / SR
    x = sum(np.sin(k * phase) / k * (1 + 2 * np.exp(-((k * f0 - 1500) / 400) ** 2))
            for k in range(1, 30) if k * f0 < SR / 2)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def features(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """f0 and loudness at 100 frames a second, computed once per clip as the database would store them."""
    track = AN.track_f0(x, SR, frame_period_ms=10.0)
    ld = AN.loudness(x, SR, frame_period_ms=10.0)
    n = len(x) // HOP + 1
    return torch.tensor(track.f0[:n], dtype=torch.float32), torch.tensor(ld[:n], dtype=torch.float32)


def test_a_few_steps_learn_a_tones_timbre_and_the_output_keeps_the_input_pitch():
    clips = [tone(f) for f in (150.0, 200.0, 260.0, 330.0)]
    feats = [features(x) for x in clips]
    batch = {"audio": torch.from_numpy(np.stack(clips))[:, None], "mask": torch.ones(4, SR),
             "f0": torch.stack([f for f, _ in feats]), "loudness": torch.stack([ld for _, ld in feats]),
             "label": torch.full((4,), -1)}
    torch.set_num_threads(1)
    model = small()
    opt = model.configure_optimizers()["ddsp"]

    def update(name, loss):
        opt.zero_grad()
        loss.backward()
        opt.step()

    first = model.validation_loss(batch)["loss"]
    for step in range(60):
        model.train_step(lambda: batch, update, step)
    last = model.validation_loss(batch)["loss"]
    assert last < 0.7 * first, (first, last)
    # An unseen pitch in the learned timbre: f0 is the given one, to a few cents.
    f0, ld = features(tone(233.0))
    y = model.sample(1, 1.0, {"f0": f0[None], "loudness": ld[None]}, seed=0)[0, 0].numpy()
    out = AN.track_f0(y, SR, frame_period_ms=10.0)
    n = min(len(out.f0), len(f0))
    assert np.nanmedian(np.abs(out.cents(f0[:n].double().numpy())[10:n - 10])) < 10


def test_sample_requires_contours_and_is_seeded():
    model = small()
    assert model.requires == {"f0", "loudness"} <= model.accepts
    with pytest.raises(WavesmithError, match="f0 and loudness"):
        model.sample(1, 0.5)
    f0, ld = torch.full((1, 51), 220.0), torch.full((1, 51), -20.0)
    a = model.sample(1, 0.5, {"f0": f0, "loudness": ld}, seed=3)
    b = model.sample(1, 0.5, {"f0": f0, "loudness": ld}, seed=3)
    assert a.shape == (1, 1, 8000) and torch.equal(a, b)


def test_spectral_loss_is_zero_on_equal_signals_and_grows_with_difference():
    x = torch.randn(2, 4000)
    assert float(spectral_loss(x, x, (256, 64))) == 0.0
    assert float(spectral_loss(x, 0.5 * x, (256, 64))) < float(spectral_loss(x, 0.1 * x, (256, 64)))


def tone_db(root) -> object:
    import soundfile as sf

    from wavesmith.db import Database

    src = root / "src"
    src.mkdir()
    for i, f in enumerate((140.0, 170.0, 200.0, 240.0, 280.0, 330.0)):
        sf.write(str(src / f"t{i}.wav"), tone(f, 1.5), SR)
    db = Database.create(root / "db", sample_rate=SR, channels=1, split_ratios=(0.67, 0.33, 0.0))
    db.add([src], workers=1, progress=False)
    db.close()
    return root / "db"


def test_the_dataset_crops_stored_contours_with_the_audio(tmp_path):
    from wavesmith.analysis import FeatureSpec
    from wavesmith.db import ClipDataset, Database

    path = tone_db(tmp_path)
    spec = FeatureSpec(frame_rate=100)
    ds = ClipDataset(path, "train", crop_samples=SR // 2, train=True, seed=1, features=spec)
    stored = (path / "features" / f"{spec.key}.npz")
    assert stored.exists()
    mtime = stored.stat().st_mtime_ns
    ClipDataset(path, "valid", crop_samples=SR // 2, features=spec)  # read back, not recomputed
    assert stored.stat().st_mtime_ns == mtime
    db = Database.open(path)
    for index in range(len(ds)):
        item = ds[index]
        start = ds.crop_start(index)
        assert start % HOP == 0 and item["f0"].shape == (SR // 2 // HOP + 1,)
        # The crop's contours are those of the same span analysed on its own (away from the crop's edges).
        audio = db.audio(int(ds.clip_ids[index]))[:, start:start + SR // 2]
        f0, _ = features(audio[0])
        mid = slice(10, -10)
        assert np.median(np.abs(1200 * np.log2(item["f0"][mid].numpy() / f0[mid].numpy()))) < 5
    batch = ds.batch([0, 1])
    assert batch["f0"].shape == (2, SR // 2 // HOP + 1) and torch.equal(batch["f0"][1], ds[1]["f0"])


def test_ddsp_trains_through_the_engine_and_its_checkpoint_plays(tmp_path):
    from wavesmith.generate import load_model
    from wavesmith.train import train

    path = tone_db(tmp_path)
    sets = ["steps=4", "workers=0", "batch_size=2", "valid_every=2", "hidden=32", "mlp_layers=1",
            "harmonics=20", "noise_bands=17", "reverb_seconds=0.05", "crop_seconds=0.5"]
    train(path, "ddsp", tmp_path / "run", sets=sets, progress=False)
    model, meta = load_model(tmp_path / "run")
    assert meta["model_name"] == "ddsp" and meta["step"] == 4
    y = model.sample(1, 0.5, {"f0": torch.full((1, 51), 220.0), "loudness": torch.full((1, 51), -20.0)}, seed=0)
    assert y.shape == (1, 1, 8000) and torch.isfinite(y).all()
