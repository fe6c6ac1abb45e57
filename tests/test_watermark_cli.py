"""Content Credentials and the ``mark`` / ``detect`` commands."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from wavesmith import audio as A
from wavesmith.cli import main
from wavesmith.watermark import mark_file, read_manifest, sign_file
from wavesmith.watermark.credentials import SOURCE_TYPE


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESMITH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("WAVESMITH_C2PA_KEY", raising=False)
    monkeypatch.delenv("WAVESMITH_C2PA_CERT", raising=False)


def _tone_file(path, seconds=3.0, rate=16000):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(len(t))
    A.write(path, x[None].astype(np.float32), rate)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_signed_manifest_reads_back_with_its_claims(tmp_path, capsys, ext):
    path = _tone_file(tmp_path / f"a.{ext}")
    result = sign_file(path, model="wavenet", checkpoint_hash="c0ffee")
    assert result == {"signed": True, "reason": None}
    assert "created a local C2PA signing key" in capsys.readouterr().err
    m = read_manifest(path)
    assert m["validation_state"] in ("Valid", "Trusted")
    assert m["digital_source_type"] == SOURCE_TYPE
    assert m["model"] == "wavenet" and m["checkpoint_hash"] == "c0ffee"
    assert m["generator"].startswith("wavesmith ") and m["created"]
    assert A.read(path)[0].shape[-1] > 0  # still decodes


def test_tampered_file_fails_validation(tmp_path):
    path = _tone_file(tmp_path / "a.wav")
    assert sign_file(path)["signed"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip audio bits after signing
    path.write_bytes(bytes(data))
    assert read_manifest(path)["validation_state"] == "Invalid"


def test_unsupported_format_is_reported_not_raised(tmp_path):
    path = _tone_file(tmp_path / "a.ogg")
    before = _digest(path)
    result = sign_file(path)
    assert result["signed"] is False and "not written" in result["reason"]
    assert _digest(path) == before


def test_unsigned_file_has_no_manifest(tmp_path):
    assert read_manifest(_tone_file(tmp_path / "a.wav")) is None


def test_mark_never_touches_input_and_detect_json_reports_it(tmp_path, capsys):
    src = _tone_file(tmp_path / "in.wav")
    before = _digest(src)
    out = tmp_path / "out.flac"
    assert main(["mark", str(src), str(out), "--payload", "4242"]) == 0
    assert _digest(src) == before
    capsys.readouterr()
    assert main(["detect", str(out), str(src), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [str(out), str(src)]
    assert rows[0]["watermark"] is True and rows[0]["payload"] == 4242 and rows[0]["confidence"] > 0.99
    assert rows[0]["segments"] and rows[0]["c2pa"]["validation_state"] in ("Valid", "Trusted")
    assert rows[0]["c2pa"]["title"] == "out.flac"
    assert rows[1]["watermark"] is False and rows[1]["payload"] is None and rows[1]["c2pa"] is None


def test_in_place_replaces_the_input_only_when_asked(tmp_path):
    src = _tone_file(tmp_path / "in.wav")
    before = _digest(src)
    assert main(["mark", str(src), str(src)]) == 2  # OUT == IN without --in-place is refused
    assert _digest(src) == before
    assert main(["mark", str(src), "--in-place", "--payload", "9"]) == 0
    assert _digest(src) != before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_mark_to_ogg_keeps_watermark_and_says_manifest_not_written(tmp_path, capsys):
    src = _tone_file(tmp_path / "in.wav")
    out = tmp_path / "out.ogg"
    assert main(["mark", str(src), str(out), "--payload", "77"]) == 0
    assert "not written" in capsys.readouterr().err
    assert main(["detect", str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["watermark"] and row["payload"] == 77 and row["c2pa"] is None


def test_bad_files_get_a_message_and_others_are_still_checked(tmp_path, capsys):
    good = tmp_path / "good.wav"
    mark_file(_tone_file(tmp_path / "in.wav"), good, 5)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    capsys.readouterr()
    assert main(["detect", str(empty), str(good), str(junk), "--json"]) == 2
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r.get("error") is not None for r in rows] == [True, False, True]
    assert rows[1]["watermark"] and rows[1]["payload"] == 5
    assert "empty.wav" in captured.err and "junk.wav" in captured.err


def test_too_short_input_is_a_clear_error(tmp_path, capsys):
    src = _tone_file(tmp_path / "short.wav", seconds=0.5)
    assert main(["mark", str(src), str(tmp_path / "o.wav")]) == 2
    assert "MIN_SECONDS" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_mark_reads_the_written_file_back_and_warns_when_the_mark_cannot_be_found(tmp_path, capsys):
    src = _tone_file(tmp_path / "in.wav")
    assert main(["mark", str(src), str(tmp_path / "ok.wav"), "--payload", "31"]) == 0
    assert "warning" not in capsys.readouterr().err
    # A pure 6 kHz tone has nothing in the mark's band: the file is written and signed, and
    # the user is told that its watermark cannot be found, rather than left to assume it.
    t = np.arange(3 * 16000) / 16000
    tone = tmp_path / "tone.wav"
    A.write(tone, (0.5 * np.sin(2 * np.pi * 6000 * t))[None].astype(np.float32), 16000)
    result = mark_file(tone, tmp_path / "tone-marked.wav", 31)
    assert result["signed"] and result["verified"] is False
    assert main(["mark", str(tone), str(tmp_path / "tone-cli.wav")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "its watermark" in line]
    assert len(warnings) == 1 and warnings[0].startswith("wavesmith: warning: ")
    assert (tmp_path / "tone-cli.wav").is_file()


def test_a_second_mark_is_refused_unless_forced(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from wavesmith.cli import main

    rate = 16000
    t = np.arange(3 * rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))).astype("float32")
    sf.write(str(tmp_path / "in.wav"), x, rate)
    assert main(["mark", str(tmp_path / "in.wav"), str(tmp_path / "one.wav"), "--payload", "7"]) == 0
    capsys.readouterr()  # the first mark may say it made a signing key
    assert main(["mark", str(tmp_path / "one.wav"), str(tmp_path / "two.wav"), "--payload", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already carries a wavesmith watermark (payload 7)" in err[0]
    assert not (tmp_path / "two.wav").exists()
    assert main(["mark", str(tmp_path / "one.wav"), str(tmp_path / "two.wav"), "--payload", "9", "--force"]) == 0
