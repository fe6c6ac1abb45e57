"""The tts acoustic model: alignment search, length regulation, band masking, learning, speaking."""

import itertools
import shutil

import numpy as np
import pytest
import torch

from wavesmith.errors import WavesmithError
from wavesmith.models.base import DataInfo
from wavesmith.models.tts import TTS, VARIANCE_SCALE, Config, expand, monotonic_alignment, token_means

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")


def _best_path_durations(logp, n, t):
    """Brute force: the monotonic path (each token >= 1 frame) with the highest total log-likelihood."""
    best, arg = -np.inf, None
    for cuts in itertools.combinations(range(1, t), n - 1):
        d = np.diff([0, *cuts, t])
        idx = np.repeat(np.arange(n), d)
        score = logp[idx, np.arange(t)].sum()
        if score > best:
            best, arg = score, d
    return arg


def test_monotonic_alignment_finds_the_best_path():
    rng = np.random.default_rng(0)
    logp = rng.normal(size=(3, 4, 8)).astype(np.float32)
    n_tok, n_frames = np.array([4, 3, 2]), np.array([8, 6, 5])
    got = monotonic_alignment(logp, n_tok, n_frames)
    for b in range(3):
        want = _best_path_durations(logp[b], n_tok[b], n_frames[b])
        assert got[b, : n_tok[b]].tolist() == want.tolist()
        assert got[b, n_tok[b]:].sum() == 0


def test_expand_and_token_means_are_inverse():
    h = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3)
    d = torch.tensor([[2, 0, 3]])
    x = expand(h, d, 7)
    assert x[0, 0].tolist() == [0, 0, 2, 2, 2, 0, 0]
    means = token_means(x[:, 1], torch.tensor([[1.0] * 5 + [0, 0]]), d)
    assert means[0].tolist() == [3.0, 0.0, 5.0]


def _toy(languages=("en-us",)):
    info = DataInfo(22050, 1, (), ("a", "b"), languages)
    torch.manual_seed(0)
    return TTS(Config(channels=32, decoder_channels=32, encoder_attention=1, speaker_dim=16, dropout=0.0), info)


def _batch(rate=16000):
    t = torch.arange(22050 * 2) / 22050
    tone = 0.3 * torch.sin(2 * np.pi * 220 * t) * (torch.sin(2 * np.pi * 2 * t) > 0)
    return {"audio": tone.repeat(2, 1, 1), "length": torch.tensor([44100, 30000]),
            "text": ["hello there", "good morning"], "speaker": torch.tensor([0, 1]),
            "language": torch.tensor([0, 0]), "orig_rate": torch.tensor([rate, rate]),
            "f0": torch.full((2, 2 * 86 + 1), 220.0)}


@needs_espeak
def test_losses_ignore_bands_above_the_recordings_nyquist(monkeypatch):
    model = _toy().eval()
    b = _batch(rate=8000)
    a = model.losses(b, torch.Generator().manual_seed(0))
    frames = model.mel_frames
    high = model.centres >= 4000

    def noisy_high_bands(audio, lengths):  # whatever lies above 4 kHz
        mel, n = frames(audio, lengths)
        return mel + 3.0 * torch.rand_like(mel) * high[None, :, None], n

    monkeypatch.setattr(model, "mel_frames", noisy_high_bands)
    for key in ("mel_l1", "prior", "energy"):
        assert torch.allclose(model.losses(b, torch.Generator().manual_seed(0))[key], a[key], atol=1e-5), key
    full_band = {**b, "orig_rate": torch.tensor([22050, 22050])}  # now the noise counts
    assert not torch.allclose(model.losses(full_band, torch.Generator().manual_seed(0))["mel_l1"], a["mel_l1"],
                              atol=1e-3)


@needs_espeak
def test_tts_learns_a_toy_batch_and_speaks_at_the_asked_speed():
    model = _toy()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    b = _batch()
    first = None
    for _ in range(40):
        loss = model.losses(b, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        first = first if first is not None else float(loss["mel_l1"])
    assert float(loss["mel_l1"]) < 0.6 * first
    model.eval()
    s = model.table_vector(0)
    slow = model.synthesize(["hello there"], "en-us", s, speed=1.0)[0]
    fast = model.synthesize(["hello there"], "en-us", s, speed=2.0)[0]
    assert slow.shape[0] == 80 and fast.shape[1] < slow.shape[1]
    with pytest.raises(Exception, match="unsupported language 'fr-fr'.*en-us"):
        model.synthesize(["bonjour"], "fr-fr", s)
    with pytest.raises(Exception, match="nothing speakable"):
        model.synthesize(["..."], "en-us", s)


@needs_espeak
def test_variance_scale_widens_each_bands_swing_around_its_mean_and_is_checked():
    model = _toy()
    model.eval()
    s = model.table_vector(0)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # an untrained decoder predicts nearly flat frames
            p.add_(0.05 * torch.randn_like(p))
    mels = {}
    for scale in (1.0, 1.5):
        model.config.variance_scale = scale
        with torch.no_grad():
            mels[scale] = model.synthesize(["hello there"], "en-us", s)[0]
    assert torch.allclose(mels[1.5].mean(-1), mels[1.0].mean(-1), atol=1e-4)
    assert torch.allclose(mels[1.5].std(-1), 1.5 * mels[1.0].std(-1), rtol=1e-3, atol=1e-5)
    assert float(mels[1.0].std(-1).mean()) > 1e-3  # there is a swing to widen
    from wavesmith.config import from_dict

    with pytest.raises(WavesmithError, match="variance_scale"):
        from_dict(Config, {"variance_scale": 0.1}).validate()
    assert Config().variance_scale == VARIANCE_SCALE > 1  # old checkpoints lack the key: they get the default


def test_fine_tuning_matches_speaker_and_language_rows_by_name():
    old = _toy(("en-us", "fr-fr"))
    info = DataInfo(22050, 1, (), ("b", "c"), ("fr-fr", "nl"))
    new = TTS(old.config, info)
    w = new.adapt_weights(dict(old.state_dict()), old.info)
    table, lang = w["speaker_table.weight"], w["language_embed.weight"]
    assert torch.equal(table[0], old.speaker_table.weight[1])  # "b" keeps what it learned
    assert torch.equal(table[1], old.speaker_table.weight[-1])  # "c" starts as the unknown row
    assert torch.equal(lang[0], old.language_embed.weight[1]) and torch.equal(lang[1], old.language_embed.weight[-1])
    new.load_state_dict(w)


def test_text_is_read_as_us_english_unless_a_language_is_named():
    assert _toy(("be", "en-us", "fr-fr")).default_language == "en-us"
    assert _toy(("be", "fr-fr")).default_language == "be"
    assert _toy(()).default_language == "en-us"
    model = _toy(("be", "en-us", "fr-fr"))
    assert model.language_id("fr") == 2  # a bare language names the model's one variety of it


def _postnet_toy(**over):
    info = DataInfo(22050, 1, (), ("a", "b"), ("en-us",))
    torch.manual_seed(0)
    cfg = dict(channels=32, decoder_channels=32, encoder_attention=1, speaker_dim=16, dropout=0.1,
               postnet_channels=16, postnet_dilations=(1, 2), postnet_frames=64)
    return TTS(Config(**{**cfg, **over}), info)


@needs_espeak
def test_postnet_only_trains_the_post_net_and_leaves_the_rest_as_loaded():
    model = _postnet_toy(postnet_only=True)
    base = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("postnet.")}
    (opt,) = model.configure_optimizers().values()
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.postnet.parameters()}
    model.train()
    assert model.postnet.training and not model.decoder.training and not model.decoder[0].drop.training
    b = _batch()
    first = last = None
    for _ in range(30):  # the same times and noise every step: the loss must fall
        parts = model.losses(b, torch.Generator().manual_seed(0), parts="postnet")
        assert torch.equal(parts["loss"], parts["postnet"]) and "mel_l1" in parts
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        first = float(parts["loss"]) if first is None else first
        last = float(parts["loss"])
    assert last < 0.8 * first
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in base.items())  # not one frozen weight moved
    assert "postnet" not in model.losses(b, torch.Generator().manual_seed(0), parts="base")
    full = model.losses(b, torch.Generator().manual_seed(0), parts="all")
    assert torch.allclose(full["loss"], sum(full[k] for k in ("mel_l1", "prior", "duration", "pitch", "energy",
                                                               "postnet")) + 0.1 * full["speaker"])


@needs_espeak
def test_speaking_through_the_post_net_adds_a_seeded_residual_that_can_be_left_out():
    model = _postnet_toy().eval()
    with torch.no_grad():
        for p in model.postnet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    s = model.table_vector(0)
    model.config.variance_scale = 1.0
    plain = model.synthesize(["hello there"], "en-us", s, postnet=False)[0]
    torch.manual_seed(1)
    a = model.synthesize(["hello there"], "en-us", s)[0]
    torch.manual_seed(1)
    b = model.synthesize(["hello there"], "en-us", s)[0]
    torch.manual_seed(2)
    c = model.synthesize(["hello there"], "en-us", s)[0]
    assert a.shape == plain.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float((a - plain).abs().mean()) > 1e-3
    no_postnet = TTS(Config(**{**model.config.__dict__, "postnet_channels": 0}), model.info).eval()
    no_postnet.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("postnet.")})
    assert torch.equal(no_postnet.synthesize(["hello there"], "en-us", s)[0], plain)
    model.config.postnet_temperature = 0.0  # deterministic: the seed no longer matters
    torch.manual_seed(1)
    d1 = model.synthesize(["hello there"], "en-us", s)[0]
    torch.manual_seed(2)
    assert torch.equal(d1, model.synthesize(["hello there"], "en-us", s)[0]) and not torch.equal(d1, plain)
    model.config.postnet_steps = 0  # the config's way to leave it out
    assert torch.equal(model.synthesize(["hello there"], "en-us", s)[0], plain)


def test_a_post_net_starts_fresh_from_a_model_without_one_and_is_checked():
    old = _toy()
    new = _postnet_toy()
    w = new.adapt_weights(dict(old.state_dict()), old.info)
    new.load_state_dict(w)
    assert torch.equal(new.decoder_out.weight, old.decoder_out.weight)
    from wavesmith.config import from_dict

    for bad in ({"postnet_only": True}, {"postnet_channels": 12}, {"postnet_channels": 16, "postnet_steps": -1},
                {"postnet_channels": 16, "postnet_temperature": -0.5}):
        with pytest.raises(WavesmithError, match="postnet"):
            from_dict(Config, bad).validate()
