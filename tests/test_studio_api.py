"""The studio without a browser: the root gate, and each tab's API function (``wavesmith.studio.api``)."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import wavesmith
from toy_model import make_db, tone
from wavesmith import audio as A
from wavesmith import shipped
from wavesmith.cli import main
from wavesmith.db.catalog import FORMAT_VERSION
from wavesmith.errors import WavesmithError
from wavesmith.studio import api
from wavesmith.studio.paths import inside
from wavesmith.studio.training import Trainer

SRC = Path(wavesmith.__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A studio root holding one database of labelled tones (``db``)."""
    r = tmp_path_factory.mktemp("root")
    make_db(r)
    return r


# --- the root gate ----------------------------------------------------------------------------


def test_paths_resolve_inside_the_root_and_nowhere_else(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path / "outside")  # a link that leaves the root
    (tmp_path / "root" / "in").symlink_to(tmp_path / "root" / "a")  # a link that stays inside
    r = tmp_path / "root"
    assert inside(r, "a") == (r / "a").resolve()
    assert inside(r, "") == r.resolve() and inside(r, "./a/new.wav") == (r / "a" / "new.wav").resolve()
    assert inside(r, "in/x") == (r / "a" / "x").resolve()
    for bad, why in (("../outside", "'..'"), ("a/../../outside", "'..'"), (str(tmp_path / "outside"), "absolute"),
                     (str(r / "a"), "absolute"), ("~/x", "absolute"), ("out", "outside"), ("out/file.wav", "outside"),
                     ("a\0b", "NUL")):
        with pytest.raises(WavesmithError, match=why):
            inside(r, bad)
    with pytest.raises(WavesmithError, match="no such file"):
        inside(r, "missing", exists=True)


def test_find_lists_databases_runs_and_generated_folders_but_never_through_links(tmp_path):
    make_db(tmp_path / "elsewhere")
    r = tmp_path / "root"
    (r / "runs" / "one").mkdir(parents=True)
    (r / "runs" / "one" / "config.toml").write_text("")
    (r / "gen").mkdir()
    (r / "gen" / "generated.jsonl").write_text("")
    (r / "linked").symlink_to(tmp_path / "elsewhere")
    assert api.find(r, "db") == []
    assert api.find(r, "run") == ["runs/one"] and api.find(r, "generated") == ["gen"]
    assert api.models(r)[-1] == "runs/one" and "drums" in api.models(r)


# --- Database ---------------------------------------------------------------------------------


def test_database_summary_and_random_clips_with_spectrograms(root):
    s = api.database_summary(root, "db")
    assert s["info"]["clips"] == 20 and s["info"]["labels"] == {"hi": 10, "lo": 10} and s["errors"] == []
    clips = api.random_clips(root, "db", n=3, seed=0)
    assert len(clips) == 3 and len({c["id"] for c in clips}) == 3
    for c in clips:
        assert c["audio"].shape == (1, 2400) and c["sample_rate"] == 8000 and c["label"] in ("hi", "lo")
        assert c["spectrogram_png"].startswith(b"\x89PNG")
    assert {c["split"] for c in api.random_clips(root, "db", n=5, split="train")} == {"train"}


def test_database_errors_are_messages(root, tmp_path):
    with pytest.raises(WavesmithError, match="no such file"):
        api.database_summary(root, "nothing.db")
    with pytest.raises(WavesmithError, match="'..'"):
        api.database_summary(root, "../x")
    make_db(tmp_path / "r")
    con = sqlite3.connect(tmp_path / "r" / "db" / "catalog.sqlite")  # a database from another version
    con.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(WavesmithError, match="incompatible"):
        api.database_summary(tmp_path / "r", "db")


# --- Generate, Detect, Transform ----------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(root):
    return api.generate_clips(root, "drums", n=1, label="snare", seed=3, steps=2)


def test_generate_from_a_shipped_model_writes_marked_files_under_the_root(root, generated):
    g = generated
    assert g["folder"].startswith("studio/generate-") and Path(g["path"]).parent == root / "studio"
    assert [Path(f).name for f in g["files"]] == ["000.wav"] and Path(g["records_file"]).is_file()
    rec = g["records"][0]
    assert rec["label"] == "snare" and rec["seed"] == 3 and rec["settings"]["steps"] == 2 and rec["watermark"]
    assert g["clips"][0]["spectrogram_png"].startswith(b"\x89PNG") and g["clips"][0]["seconds"] >= 1.0
    assert api.model_conditions(root, "drums")["labels"][:2] == ["clap", "cymbal"]


def test_generate_refuses_unknown_models_and_paths_outside_the_root(root):
    with pytest.raises(WavesmithError, match="no such file"):
        api.generate_clips(root, "no-such-run")
    with pytest.raises(WavesmithError, match="absolute"):
        api.generate_clips(root, "drums", out="/tmp/elsewhere")
    with pytest.raises(WavesmithError, match="unknown label"):
        api.generate_clips(root, "drums", label="banjo", steps=2)


def test_generate_decodes_with_a_chosen_vocoder_and_refuses_one_outside_the_root(root):
    assert api.vocoders() == ["universal", "lj"]
    g = api.generate_clips(root, "drums", n=1, label="kick", seed=3, steps=2, vocoder="lj")
    assert g["records"][0]["settings"]["vocoder"] == "lj"
    with pytest.raises(WavesmithError, match="no such file"):
        api.generate_clips(root, "drums", n=1, steps=2, vocoder="no-such-vocoder")
    with pytest.raises(WavesmithError, match="'..'|absolute"):
        api.generate_clips(root, "drums", n=1, steps=2, vocoder="../elsewhere")


def test_detect_says_marked_in_plain_words(generated, tmp_path):
    r = api.detect_upload(generated["files"][0])
    assert r["watermark"] and r["words"][0].startswith("Marked") and "Content Credentials" in r["words"][1]
    plain = tmp_path / "plain.wav"
    sf.write(plain, tone(440, 16000, 2.0, amp=0.3), 16000)
    r = api.detect_upload(plain)
    assert not r["watermark"] and r["words"][0].startswith("Not marked") and r["c2pa"] is None


def test_bad_uploads_are_refused_with_reasons(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "silent.wav", np.zeros(8000, dtype=np.float32), 8000)
    sf.write(tmp_path / "nothing.wav", np.zeros(0, dtype=np.float32), 8000)  # an empty recording
    (tmp_path / "notes.txt").write_text("hello")
    for name, why in (("corrupt.wav", "cannot decode"), ("empty.wav", "empty file"), ("silent.wav", "silent"),
                      ("nothing.wav", "no audio samples"), ("notes.txt", "unsupported format"), ("gone.wav", "gone")):
        with pytest.raises(WavesmithError, match=why):
            api.detect_upload(tmp_path / name)
    with pytest.raises(WavesmithError, match="upload or record"):
        api.detect_upload(None)
    sf.write(tmp_path / "big.wav", tone(440, 8000, 1.0), 8000)
    with pytest.raises(WavesmithError, match="up to 0 MiB"):
        api.check_upload(tmp_path / "big.wav", max_bytes=1000)


def test_pitch_keeps_the_upload_under_the_root_and_cites_it(root, tmp_path):
    sf.write(tmp_path / "tone.wav", tone(220, 16000, 1.5, amp=0.4), 16000)
    r = api.pitch_upload(root, tmp_path / "tone.wav", semitones=12)
    source = Path(r["records"][0]["source"])
    assert source.parent == root / "studio" / "uploads" and source.read_bytes() == (tmp_path / "tone.wav").read_bytes()
    y, rate = A.read(r["files"][0])
    assert rate == 16000 and y.shape[-1] == 24000 and r["records"][0]["settings"]["semitones"] == 12
    with pytest.raises(WavesmithError, match="semitones"):
        api.pitch_upload(root, tmp_path / "tone.wav", semitones=99)


def test_transfer_without_a_ddsp_run_says_what_it_needs(root, tmp_path):
    sf.write(tmp_path / "tone.wav", tone(220, 16000, 1.0, amp=0.4), 16000)
    with pytest.raises(WavesmithError, match="DDSP run"):
        api.transfer_upload(root, "", tmp_path / "tone.wav")
    with pytest.raises(WavesmithError, match="no such file"):
        api.transfer_upload(root, "runs/none", tmp_path / "tone.wav")


# --- Voice --------------------------------------------------------------------------------------


def test_voice_clones_into_the_root_with_consent_and_says_through_the_voice_api(root, tmp_path, monkeypatch):
    import wavesmith.say
    import wavesmith.voice

    assert api.voice_available()
    sf.write(tmp_path / "me.wav", tone(180, 16000, 2.0, amp=0.3), 16000)
    with pytest.raises(WavesmithError, match="consent"):  # the real clone's own refusals
        api.voice_clone(root, tmp_path / "me.wav", "  ", "me")
    if "speech" not in shipped.names():  # and up to where it needs a base speech model
        with pytest.raises(WavesmithError, match="no base speech model"):
            api.voice_clone(root, tmp_path / "me.wav", "I, Me, agree.", "real")
    calls = {}

    def clone(audio, out, consent, texts=None, language=None, base=None, **kw):
        calls["clone"] = (audio, out, consent, texts, base)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("voice")
        return {"file": str(out), "speech_seconds": 2.0, "fine_tuned": False, "steps": 0}

    def say(voice, out_dir, texts=None, base=None, **kw):
        calls["say"] = (voice, texts, base)
        return {"files": [str(A.write(Path(out_dir) / "000.wav", tone(300, 8000, 0.5).T, 8000))]}

    monkeypatch.setattr(wavesmith.voice, "clone", clone)
    monkeypatch.setattr(wavesmith.say, "say", say)
    with pytest.raises(WavesmithError, match="name the voice"):
        api.voice_clone(root, tmp_path / "me.wav", "I agree.", "../me")
    r = api.voice_clone(root, tmp_path / "me.wav", "I, Me, agree.", "me", transcript="hello there")
    audio, out, consent, texts, base = calls["clone"]
    assert r["voice"] == "studio/voices/me.voice" and out == root.resolve() / "studio/voices/me.voice"
    assert consent == "I, Me, agree." and texts == ["hello there"] and base == "speech"
    assert audio == [tmp_path / "me.wav"] and not list(root.rglob("*me.wav"))  # the recording is not kept
    assert api.voices(root) == ["studio/voices/me.voice"]
    s = api.voice_say(root, "Hello there.", "studio/voices/me.voice")
    assert calls["say"] == (str(root.resolve() / "studio/voices/me.voice"), ["Hello there."], None)
    assert len(s["files"]) == 1 and s["folder"].startswith("studio/say-")
    api.voice_say(root, "Hi.", "alice", base="speech")  # a speaker of the base model, by name
    assert calls["say"][0] == "alice"
    for bad in ("../x.voice", "/tmp/x.voice"):
        with pytest.raises(WavesmithError, match="'..'|absolute"):
            api.voice_say(root, "Hi.", bad)
    with pytest.raises(WavesmithError, match="type some text"):
        api.voice_say(root, "  ", "alice")


# --- Evaluate -----------------------------------------------------------------------------------


def test_evaluate_gives_the_html_report_and_table(tmp_path):
    root = tmp_path
    make_db(root, labels=("only",))  # one label: no classifier to train, so the test stays quick
    (root / "mine").mkdir()
    for i in range(4):
        A.write(root / "mine" / f"{i}.wav", tone(200 + 50 * i, 8000, 0.3, amp=0.4).T, 8000)
    r = api.evaluate_folder(root, "mine", "db", split="valid")
    assert r["html"].startswith("<!DOCTYPE html>") or "<html" in r["html"][:200]
    assert "fd_logmel" in r["table"] and (root / r["folder"] / "evaluate.json").is_file()
    with pytest.raises(WavesmithError, match="not a folder"):
        api.evaluate_folder(root, "db/catalog.sqlite", "db")
    first = api.evaluate_folder(root, "mine", "db", split="valid", reference_seconds=0.1)
    assert first["result"]["reference_seconds"] == 0.1 and r["result"]["reference_seconds"] is None
    assert first["result"]["fd_logmel"]["value"] != r["result"]["fd_logmel"]["value"]


# --- Train --------------------------------------------------------------------------------------


def test_training_starts_refuses_a_second_start_and_stops_with_a_checkpoint(root, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(TESTS)]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    trainer = Trainer(root)
    sets = ["workers=0", "batch_size=4", "preview_every=0", "valid_every=0", "log_every=1", "checkpoint_every=100000"]
    try:
        trainer.start("db", "runs/toy", model="toy_model:ToyModel", steps=10**6, sets=sets)
        with pytest.raises(WavesmithError, match="training already"):
            trainer.start("db", "runs/toy", model="toy_model:ToyModel", steps=10)
        deadline = time.monotonic() + 120
        while trainer.status("runs/toy")["step"] < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        s = trainer.status("runs/toy")
        assert s["state"] == "training" and s["steps"] == 10**6 and s["step"] >= 3 and "loss" in s["figures"]
        assert "stopping" in trainer.stop("runs/toy")
        trainer.jobs[(root / "runs" / "toy").resolve()].proc.wait(60)
    finally:
        trainer.stop_all(wait=30)
    s = trainer.status("runs/toy")
    assert s["state"] == "finished", s["log"]
    assert any("SIGINT" in line for line in s["log"])  # stopped as Ctrl+C stops it, with a checkpoint
    assert list((root / "runs" / "toy" / "checkpoints").glob("step-*.pt"))
    with pytest.raises(WavesmithError, match="not training"):
        trainer.stop("runs/toy")
    with pytest.raises(WavesmithError, match="'..'"):
        trainer.start("db", "../escape", model="toy_model:ToyModel")


# --- the command ----------------------------------------------------------------------------------


def test_serve_without_gradio_names_the_pip_command(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'wavesmith[studio]'" in err


def test_serve_checks_its_root_and_knows_local_hosts(tmp_path, capsys):
    from wavesmith.cli.studio import is_local

    assert main(["serve", "--root", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.4") and not is_local("example.org")


def test_the_cli_stays_quick_to_start_without_importing_gradio():
    import subprocess

    code = "import sys, wavesmith.cli as c; c.build_parser(); print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
