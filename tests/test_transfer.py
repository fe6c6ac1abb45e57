"""``wavesmith transfer``: a melody played by a DDSP run follows its input's pitch; bad input loses nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from test_ddsp import SR, tone, tone_db
from wavesmith import analysis as AN
from wavesmith import audio as A
from wavesmith.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from wavesmith.train import train

    root = tmp_path_factory.mktemp("ddsp")
    sets = ["steps=2", "workers=0", "batch_size=2", "valid_every=0", "hidden=32", "mlp_layers=1",
            "harmonics=20", "noise_bands=17", "reverb_seconds=0.05", "crop_seconds=0.5"]
    train(tone_db(root), "ddsp", root / "run", sets=sets, progress=False)
    return root / "run"


def test_output_follows_the_input_melody_moved_by_semitones(run, tmp_path):
    src = tmp_path / "hum.wav"
    sf.write(src, np.concatenate([tone(196.0, 0.6), tone(247.0, 0.6)]), SR)
    out = tmp_path / "out"
    assert main(["transfer", str(run), str(src), "--out", str(out), "--semitones", "5"]) == 0
    y, rate = A.read(out / "000.wav")
    x, _ = A.read(src)
    assert rate == SR and y.shape == x.shape
    f_in, f_out = AN.track_f0(x, SR), AN.track_f0(y, SR)
    both = f_in.voiced & f_out.voiced
    cents = 1200 * np.log2(f_out.f0[both] / f_in.f0[both])
    assert both.mean() > 0.8 and abs(np.median(cents) - 500) < 20
    rec = json.loads((out / "generated.jsonl").read_text())
    assert rec["source"] == str(src) and rec["settings"]["semitones"] == 5 and rec["model"] == "ddsp"


def test_a_chord_is_played_with_a_one_line_warning(run, tmp_path, capsys):
    src = tmp_path / "chord.wav"
    # A minor sixth, the lower note louder: tracked. (A fifth of harmonic tones is itself a harmonic
    # series an octave below its lower note, and dio-yin, the default tracker, may follow that.)
    sf.write(src, tone(220.0, 2.0) + 0.6 * tone(349.2, 2.0), SR)  # 2 s: long enough to carry the mark
    out = tmp_path / "out"
    assert main(["transfer", str(run), str(src), "--out", str(out)]) == 0
    err = [e for e in capsys.readouterr().err.strip().splitlines() if "C2PA signing key" not in e]  # first run only
    assert len(err) == 1 and err[0].startswith("wavesmith: warning:"), err
    assert "not sound like one pitched voice" in err[0]
    assert (out / "000.wav").exists()


@pytest.mark.parametrize("case", ["silence", "noise", "semitones", "not_ddsp", "chord"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run, tmp_path, capsys, case):
    src = tmp_path / "in.wav"
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR)
    chord = tone(220.0) + tone(277.2)  # equal notes: no pitch is followed at all
    audio = {"silence": np.zeros(SR), "noise": noise, "chord": chord}.get(case, tone(220.0))
    sf.write(src, audio, SR)
    target = run
    if case == "not_ddsp":
        from toy_model import make_db
        from wavesmith.train import train

        train(make_db(tmp_path), "toy_model:ToyModel", tmp_path / "toy", sets=["steps=1", "workers=0",
              "batch_size=2", "preview_every=0", "valid_every=0"], progress=False)
        target = tmp_path / "toy"
    extra = ["--semitones", "30"] if case == "semitones" else []
    out = tmp_path / "out"
    assert main(["transfer", str(target), str(src), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wavesmith: error:"), err
    expect = {"silence": "silent", "noise": "no pitch", "semitones": "--semitones", "not_ddsp": "ddsp",
              "chord": "chord or a mix"}[case]
    assert expect in err[0] and not out.exists()


@pytest.mark.parametrize("command", ["pitch", "transfer"])
def test_cli_offers_every_tracker_and_no_other(command, capsys):
    # The CLI lists trackers by hand (parsing must not import WORLD): it must match analysis.TRACKERS.
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(AN.TRACKERS) + "}" in text.replace(", ", ",")


def test_transfer_refuses_an_unknown_tracker(run, tmp_path):
    from wavesmith.errors import WavesmithError
    from wavesmith.transfer import TransferSettings, transfer

    src = tmp_path / "in.wav"
    sf.write(src, tone(220.0), SR)
    with pytest.raises(WavesmithError, match="unknown --tracker 'crepe'"):
        transfer(run, [src], tmp_path / "out", TransferSettings(tracker="crepe"))
    assert not (tmp_path / "out").exists()


def test_a_shipped_timbre_plays_by_name_and_is_listed_as_a_timbre(run, tmp_path, monkeypatch, capsys):
    from wavesmith import shipped
    from wavesmith.studio import api

    folder = tmp_path / "models"
    shipped.export(run, "reed", {"summary": "a test timbre.", "licence": "MIT"}, folder)
    monkeypatch.setattr(shipped, "folder", lambda: folder)
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.wav"
    sf.write(src, tone(220.0, 2.0), SR)
    assert main(["transfer", "reed", str(src), "--out", str(tmp_path / "out"), "--no-watermark"]) == 0
    rec = json.loads((tmp_path / "out" / "generated.jsonl").read_text())
    assert rec["checkpoint"].endswith("reed.pt") and rec["settings"]["tracker"] == "dio-yin"
    assert main(["models"]) == 0
    assert "wavesmith transfer reed AUDIO" in capsys.readouterr().out
    root = tmp_path / "root"
    root.mkdir()
    assert "reed" in api.timbres(root) and "reed" not in api.models(root)
    made = api.transfer_upload(root, "reed", src)
    assert len(made["files"]) == 1


def test_the_shipped_violin_follows_a_melody(tmp_path):
    # The shipped weights themselves: a two-note melody comes out at its pitch and sounding.
    src = tmp_path / "in.wav"
    sf.write(src, np.concatenate([tone(330.0), tone(440.0)]), SR)
    assert main(["transfer", "violin", str(src), "--out", str(tmp_path / "out"), "--no-watermark"]) == 0
    y, rate = A.read(tmp_path / "out" / "000.wav")
    track = AN.track_f0(y[0], rate, "harvest")
    first = (track.times > 0.2) & (track.times < 0.8)
    second = (track.times > 1.2) & (track.times < 1.8)
    assert np.nanmedian(np.abs(track.cents(330.0)[first])) < 30
    assert np.nanmedian(np.abs(track.cents(440.0)[second])) < 30
    assert 20 * np.log10(np.sqrt(np.mean(y**2))) > -40
