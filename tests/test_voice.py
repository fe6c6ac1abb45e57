"""clone and say: consent, reference checks, the voice file, and marked speech (a tiny TTS trained on espeak-ng)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tts_toy import HAS_ESPEAK, RATE, SENTENCES, speak, train_toy
from wavesmith import audio as A
from wavesmith import vad
from wavesmith import voice as V
from wavesmith import watermark as W
from wavesmith.cli import main
from wavesmith.errors import WavesmithError
from wavesmith.generate import load_model

needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="needs the espeak-ng program (apt-get install espeak-ng)")
CONSENT = "Kim agreed on 1 May 2025 to have their voice cloned for this test."
REF_TEXTS = SENTENCES[:4]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny TTS checkpoint (espeak-ng voices "amy" and "bob") and a new speaker's references."""
    if not HAS_ESPEAK:
        pytest.skip("needs the espeak-ng program (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("voice")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ckpt = train_toy(root, steps=30)
    finally:
        torch.set_num_threads(old)
    refs = [speak(root / "refs" / f"kim{i}.wav", t, "en-gb+m3") for i, t in enumerate(REF_TEXTS)]
    return {"root": root, "ckpt": ckpt, "refs": refs}


@pytest.fixture(scope="module")
def cloned(base):
    """A voice cloned through the CLI (a few fine-tuning steps)."""
    out = base["root"] / "kim.voice"
    args = ["clone", *map(str, base["refs"]), "--out", str(out), "--consent", CONSENT, "--base", str(base["ckpt"]),
            "--steps", "4"]
    for t in REF_TEXTS:
        args += ["--text", t]
    assert main(args) == 0
    return out


def _clone_err(capsys, args) -> str:
    assert main(["clone", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wavesmith: error:"), lines
    return lines[0]


@pytest.mark.parametrize("consent", [None, "", "   "])
def test_clone_without_consent_is_refused_saying_why(tmp_path, capsys, consent):
    extra = [] if consent is None else ["--consent", consent]
    err = _clone_err(capsys, [str(tmp_path / "a.wav"), "--out", str(tmp_path / "v.voice"), *extra])
    assert "--consent is required" in err and "agreed" in err
    assert not (tmp_path / "v.voice").exists()


@needs_espeak
def test_too_little_speech_says_how_much_more_is_needed(base, tmp_path, capsys):
    short = speak(tmp_path / "short.wav", "Hello there.", "en-gb+m3")
    err = _clone_err(capsys, [str(short), "--out", str(tmp_path / "v.voice"), "--consent", CONSENT,
                              "--base", str(base["ckpt"])])
    have = vad.analyse(A.load(short, RATE, 1)[0], RATE).seconds
    assert "at least 5 s" in err and f"give {5 - have:.1f} s more" in err


def _noise(n):
    return 0.3 * np.random.default_rng(0).standard_normal(n)


def _chord(n):
    t = np.arange(n) / RATE
    return sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))


@pytest.mark.parametrize(("make", "words"), [
    (_noise, "noise"),
    (lambda n: 0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / RATE), "tone"),
    (lambda n: np.zeros(n), "silent"),
    (_chord, "chords"),
])
def test_noise_tone_silence_and_chords_are_not_speech(make, words):
    with pytest.raises(WavesmithError, match=words):
        vad.check_speech(make(8 * RATE).astype(np.float32), RATE, "ref.wav")


@needs_espeak
def test_espeak_speech_passes_the_speech_check_and_counts_its_pauses_out(tmp_path):
    x = A.load(speak(tmp_path / "s.wav", " ".join(SENTENCES[:3]), "en-us"), RATE, 1)[0]
    x = np.concatenate([np.zeros(RATE, np.float32), x, np.zeros(RATE, np.float32)])
    report = vad.check_speech(x, RATE, "s.wav")
    assert report.seconds < len(x) / RATE - 2.0  # the added second of silence at each end is not speech
    assert report.seconds > 0.6 * (len(x) / RATE - 2.0)
    assert vad.pauses(report.active), "the pauses between sentences are found"


@needs_espeak
def test_a_reference_that_is_noise_is_refused_by_clone(base, tmp_path, capsys):
    noise = tmp_path / "noise.wav"
    sf.write(noise, _noise(6 * RATE).astype(np.float32), RATE)
    err = _clone_err(capsys, [*map(str, base["refs"]), str(noise), "--out", str(tmp_path / "v.voice"),
                              "--consent", CONSENT, "--base", str(base["ckpt"])])
    assert "noise.wav" in err and "noise" in err and "speech" in err


@needs_espeak
def test_short_references_are_judged_together(base, tmp_path, capsys):
    bursts = []
    for i in range(4):  # single-word-length files: too short to judge alone, noise together
        bursts.append(tmp_path / f"burst{i}.wav")
        sf.write(bursts[-1], _noise(int(1.5 * RATE)).astype(np.float32), RATE)
    err = _clone_err(capsys, [*map(str, bursts), "--out", str(tmp_path / "v.voice"), "--consent", CONSENT,
                              "--base", str(base["ckpt"])])
    assert "4 short reference(s) together" in err and "noise" in err
    assert not (tmp_path / "v.voice").exists()


@needs_espeak
def test_watermarked_reference_is_refused_unless_allowed_and_then_recorded(base, tmp_path, capsys):
    x, rate = A.read(base["refs"][0])
    marked = tmp_path / "marked.wav"
    A.write(marked, W.embed(x, rate, 1234), rate)
    refs = [str(marked), *map(str, base["refs"][1:])]
    common = ["--out", str(tmp_path / "v.voice"), "--consent", CONSENT, "--base", str(base["ckpt"]), "--steps", "0"]
    err = _clone_err(capsys, [*refs, *common])
    assert "marked.wav" in err and "watermark" in err and "--allow-synthetic" in err
    assert main(["clone", *refs, *common, "--allow-synthetic"]) == 0
    state, _ = V.load_voice(tmp_path / "v.voice")
    assert state["allow_synthetic"] is True and state["synthetic_references"] == ["marked.wav"]
    assert [r["synthetic"] for r in state["references"]] == [True, False, False, False]


@needs_espeak
def test_text_count_must_match_the_audio_files(base, tmp_path, capsys):
    err = _clone_err(capsys, [*map(str, base["refs"]), "--out", str(tmp_path / "v.voice"), "--consent", CONSENT,
                              "--text", "only one", "--base", str(base["ckpt"])])
    assert "--text is given 1 times for 4 audio files" in err


@needs_espeak
def test_voice_file_holds_the_adaptation_and_its_record(base, cloned):
    state, _ = V.load_voice(cloned)  # weights_only: no code is unpickled
    model, meta = load_model(base["ckpt"])
    assert state["base"]["sha256"] == meta["sha256"] and state["consent"] == CONSENT
    assert [r["file"] for r in state["references"]] == [p.name for p in base["refs"]]
    assert [r["sha256"] for r in state["references"]] == [V.file_sha256(p) for p in base["refs"]]
    assert all(r["speech_seconds"] > 1.0 for r in state["references"])
    assert state["transcripts"] == REF_TEXTS and state["transcript_source"] == "given"
    assert state["steps"] == 4 and state["language"] == "en-us" and state["allow_synthetic"] is False
    assert state["speaker_vector"].shape == (model.config.speaker_dim,)
    params = model.adaptation_parameters()
    assert set(state["adapted"]) == set(params)
    assert all(v.dtype == torch.float16 and v.shape == params[k].shape for k, v in state["adapted"].items())
    assert any(float(v.abs().max()) > 0 for v in state["adapted"].values()), "fine-tuning moved the adapters"
    assert main(["clone", *map(str, base["refs"]), "--out", str(cloned), "--consent", CONSENT]) == 2  # exists


def test_a_voice_file_with_code_in_it_is_refused(tmp_path):
    path = tmp_path / "evil.voice"
    torch.save({"format": V.FORMAT, "version": V.VERSION, "x": Path("/")}, path)  # a pickled object
    with pytest.raises(WavesmithError, match="not a readable voice file"):
        V.load_voice(path)


@needs_espeak
def test_a_voice_from_another_base_is_refused(base, cloned, tmp_path, capsys):
    state, _ = V.load_voice(cloned)
    other = dict(state, base={**state["base"], "sha256": "0" * 64})
    V.save_voice(tmp_path / "other.voice", other)
    resized = dict(state, adapted={k: v[..., :1] for k, v in state["adapted"].items()})
    V.save_voice(tmp_path / "resized.voice", resized)
    for name, words in (("other.voice", "cloned from another base model"), ("resized.voice", "does not fit")):
        assert main(["say", "Hello.", "--voice", str(tmp_path / name), "--out", str(tmp_path / name[:5]),
                     "--base", str(base["ckpt"])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]
        assert not (tmp_path / name[:5] / "generated.jsonl").exists()


@needs_espeak
def test_an_interrupted_clone_leaves_no_voice_file(base, tmp_path, monkeypatch):
    from wavesmith.models.tts import TTS

    real, calls = TTS.losses, []

    def losses(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(TTS, "losses", losses)
    out = tmp_path / "v.voice"
    with pytest.raises(KeyboardInterrupt):
        V.clone(base["refs"], out, CONSENT, texts=REF_TEXTS, base=base["ckpt"], steps=10, progress=False)
    assert list(tmp_path.iterdir()) == []


@needs_espeak
def test_without_transcripts_or_whisper_the_encoder_vector_alone_is_the_voice(base, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(V, "whisper_model_dir", lambda: None)
    r = V.clone(base["refs"], tmp_path / "v", CONSENT, base=base["ckpt"], progress=False)
    assert r["file"].endswith("v.voice") and not r["fine_tuned"]
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and "not fine-tuned" in note[0]
    state, _ = V.load_voice(tmp_path / "v.voice")
    assert state["adapted"] == {} and state["transcript_source"] is None


@needs_espeak
def test_whisper_segments_become_the_adaptation_utterances(base, tmp_path, monkeypatch):
    monkeypatch.setattr(V, "whisper_model_dir", lambda: tmp_path)
    monkeypatch.setattr(V, "transcribe", lambda refs, folder, rate: [(i, 0.0, 2.0, REF_TEXTS[i]) for i in range(4)])
    r = V.clone(base["refs"], tmp_path / "w.voice", CONSENT, base=base["ckpt"], steps=2, progress=False)
    assert r["fine_tuned"] and r["transcript_source"] == "whisper tiny.en"


@needs_espeak
def test_say_writes_numbered_marked_files_with_records_and_the_voice_assertion(cloned, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["say", "Good morning to you.", "The red book is on the table.", "--voice", str(cloned),
                 "--out", str(out), "--seed", "7", "--speed", "1.5", "--pitch", "2"]) == 0
    said = capsys.readouterr().out
    assert "wrote 2 files" in said and "x real time" in said
    assert sorted(p.name for p in out.iterdir()) == ["000.wav", "001.wav", "generated.jsonl"]
    recs = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert [r["text"] for r in recs] == ["Good morning to you.", "The red book is on the table."]
    for r in recs:
        assert r["voice"] == "kim.voice" and r["clone"] is True and r["seed"] == 7
        assert r["language"] == "en-us" and r["speed"] == 1.5 and r["pitch"] == 2.0
        assert r["watermark"]["verified"] is True and r["c2pa"]["signed"] is True
    manifest = W.read_manifest(out / "000.wav")
    voice = manifest["voice"]
    state, digest = V.load_voice(cloned)
    assert voice["clone"] is True and voice["consent"] == CONSENT and voice["voice_sha256"] == digest
    assert voice["references"] == [{"file": r["file"], "sha256": r["sha256"]} for r in state["references"]]


@needs_espeak
def test_say_with_a_speaker_of_the_base_model(base, tmp_path):
    from wavesmith.say import say

    r = say("amy", tmp_path / "out", ["Hello."], base=str(base["ckpt"]), seed=1)
    rec = json.loads((tmp_path / "out" / "generated.jsonl").read_text())
    assert len(r["files"]) == 1 and rec["voice"] == "amy" and rec["clone"] is False
    assert W.read_manifest(tmp_path / "out" / "000.wav")["voice"] == {"voice": "amy", "clone": False}
    # Another vocoder decodes the same frames: other samples, recorded with each file.
    say("amy", tmp_path / "lj", ["Hello."], base=str(base["ckpt"]), seed=1, vocoder_name="lj")
    assert rec["vocoder"] == "universal"
    assert json.loads((tmp_path / "lj" / "generated.jsonl").read_text())["vocoder"] == "lj"
    a, b = (sf.read(str(tmp_path / d / "000.wav"))[0] for d in ("out", "lj"))
    assert a.shape == b.shape and not np.allclose(a, b)


@needs_espeak
@pytest.mark.parametrize(("args", "words"), [
    (["Hello.", "--language", "xx-nowhere"], "unsupported language 'xx-nowhere'; supported languages: "),
    (["   "], "nothing to say: the text is empty"),
    (["... !!! ---"], "nothing"),
    (["Hello.", "--voice", "carol"], "known speakers: amy, bob"),
    (["Hello.", "--voice", "missing.voice"], "no voice file missing.voice"),
    (["Hello.", "--vocoder", "no-such-vocoder"], "unknown vocoder 'no-such-vocoder'"),
])
def test_say_bad_input_is_one_line_and_writes_nothing(base, cloned, tmp_path, capsys, args, words):
    voice = [] if "--voice" in args else ["--voice", str(cloned)]
    out = tmp_path / "out"
    assert main(["say", *args, *voice, "--out", str(out), "--base", str(base["ckpt"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not out.exists() or not any(out.iterdir())


@needs_espeak
def test_speed_two_speaks_in_fewer_frames(cloned):
    from wavesmith.say import resolve_voice

    model, _, s, _, _ = resolve_voice(str(cloned), None, "cpu")
    text = ["She sells sea shells by the sea shore, and the shells she sells are sea shells."]
    slow, fast = (model.synthesize(text, "en-us", s, speed=x)[0].shape[-1] for x in (1.0, 2.0))
    assert fast < 0.7 * slow


@needs_espeak
def test_pitch_twelve_semitones_raises_voiced_phonemes_an_octave(cloned):
    from wavesmith.say import resolve_voice

    model, _, s, _, _ = resolve_voice(str(cloned), None, "cpu")
    seen = []
    hook = model.pitch_embed.register_forward_hook(lambda mod, inp, out: seen.append(inp[0][0, 0].clone()))
    try:
        for semitones in (0.0, 12.0):
            model.synthesize(["A watched pot never boils."], "en-us", s, pitch=semitones)
    finally:
        hook.remove()
    flat, raised = seen
    voiced = flat > 0.5
    assert voiced.any(), "the toy predicts some voiced phonemes"
    assert torch.allclose(raised[voiced], flat[voiced] + 1.0)
    assert torch.equal(raised[~voiced], flat[~voiced])


@needs_espeak
def test_the_shipped_speech_model_says_text_and_refuses_a_voice_it_never_learned(tmp_path, capsys):
    from wavesmith.cli import main

    assert main(["say", "--voice", "asterisk-it-menardi", "--out", str(tmp_path / "x"), "Ciao"]) == 2
    assert "never learned the voice of asterisk-it-menardi" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    text = "Hello there, how are you doing today my friend?"
    assert main(["say", "--voice", "fotaq-joe", "--out", str(tmp_path / "y"), "--seed", "1", text]) == 0
    rec = json.loads((tmp_path / "y" / "generated.jsonl").read_text().splitlines()[0])
    assert rec["text"] == text and rec["language"] == "en-us" and rec["watermark"]["verified"]
