"""The real models through the engine: previews and generation work for every kind of model.

The engine names no model, so what it offers a model (preview lengths, conditions) must suit
a WaveGAN whose window is shorter than a second and a WaveNet vocoder that needs mel input.
"""

from __future__ import annotations

import numpy as np
import pytest

from toy_model import make_db
from wavesmith import audio as A
from wavesmith.generate import generate
from wavesmith.train import train
from wavesmith.train.logs import read

ENGINE = ["workers=0", "batch_size=2", "steps=1", "preview_every=1", "valid_every=0", "log_every=1"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return make_db(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize(
    "model, sets",
    [
        # a 1024-sample window at 8 kHz is 0.128 s, shorter than the 1 s preview default
        ("wavegan", ["window=1024", "model_dim=4", "n_critic=1"]),
        # a vocoder cannot sample without log-mel input: previews resynthesize held-out clips
        ("wavenet", ["conditioning=mel", "layers=2", "stacks=1", "residual_channels=4", "gate_channels=8",
                     "skip_channels=4", "cond_channels=4", "n_mels=8", "n_fft=256", "hop_length=64", "crop=512"]),
        # a mel-domain model decodes through the pretrained vocoder (22.05 kHz) back to the database's rate
        ("mel-diffusion", ["seconds=0.3", "channels=8", "mults=[1, 2]", "blocks=1", "sample_steps=2"]),
        ("wavenet", ["conditioning=label", "layers=2", "stacks=1", "residual_channels=4", "gate_channels=8",
                     "skip_channels=4", "crop=512"]),
    ],
)
def test_every_model_kind_trains_through_a_preview(db, tmp_path, model, sets):
    train(db, model, tmp_path / "run", sets=[*ENGINE, "preview_seconds=0.2", *sets], progress=False)
    previews = read(tmp_path / "run", "preview")
    assert previews and "preview_skipped" not in previews[0], previews
    assert list((tmp_path / "run" / "previews").glob("step-*.wav"))
    assert list((tmp_path / "run" / "previews").glob("step-*.png"))


def test_generate_defaults_to_a_wavegan_window_shorter_than_two_seconds(db, tmp_path):
    sets = [*ENGINE, "preview_every=0", "window=1024", "model_dim=4", "n_critic=1"]
    train(db, "wavegan", tmp_path / "run", sets=sets, progress=False)
    files = generate(tmp_path / "run", tmp_path / "out", n=1, seed=1, watermark=False)
    import soundfile as sf

    assert sf.info(str(files[0])).frames == 1024


def test_temperature_zero_is_greedy_for_wavenet_and_refused_for_wavegan(db, tmp_path):
    from wavesmith.errors import WavesmithError

    tiny = ["layers=2", "stacks=1", "residual_channels=4", "gate_channels=8", "skip_channels=4", "crop=512"]
    train(db, "wavenet", tmp_path / "wn", sets=[*ENGINE, "preview_every=0", *tiny], progress=False)
    a = generate(tmp_path / "wn", tmp_path / "a", n=1, seconds=0.05, seed=1, temperature=0, watermark=False)
    b = generate(tmp_path / "wn", tmp_path / "b", n=1, seconds=0.05, seed=2, temperature=0, watermark=False)
    assert np.array_equal(A.read(a[0])[0], A.read(b[0])[0])  # greedy: the seed draws nothing
    train(db, "wavegan", tmp_path / "wg", sets=[*ENGINE, "preview_every=0", "window=1024", "model_dim=4"],
          progress=False)
    with pytest.raises(WavesmithError, match="--temperature 0 .* wavegan needs --temperature > 0"):
        generate(tmp_path / "wg", tmp_path / "c", n=1, seed=1, temperature=0, watermark=False)
    assert not (tmp_path / "c").exists()
