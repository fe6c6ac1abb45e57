"""``wavesmith generate``: EMA weights, seeds, records, conditions, marking, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from toy_model import make_db
from wavesmith import audio as A
from wavesmith import checkpoint as ckpt
from wavesmith.cli import main
from wavesmith.errors import WavesmithError
from wavesmith.generate import file_seed, generate, load_model, save_clips
from wavesmith.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    db = make_db(root)
    sets = ["steps=3", "workers=0", "batch_size=4", "preview_every=0", "valid_every=0", "warmup_steps=1",
            "checkpoint_every=2"]
    train(db, "toy_model:ToyModel", root / "run", sets=sets, progress=False)
    return root / "run"


def records(out):
    return [json.loads(s) for s in (out / "generated.jsonl").read_text().splitlines()]


def read_all(out, ext="wav"):
    return [A.read(p)[0] for p in sorted(out.glob(f"*.{ext}"))]


def test_load_model_uses_the_ema_weights(run_dir):
    model, meta = load_model(run_dir)
    state, digest = ckpt.load(meta["path"])
    assert meta["sha256"] == digest and meta["step"] == 3 and not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["ema"]["shadow"][k]), k
    assert any(not torch.equal(state["ema"]["shadow"][k], state["model"][k]) for k in state["model"])


def test_a_run_gives_its_best_pt_by_default_and_its_newest_checkpoint_with_last(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    older, newest = ckpt.list_checkpoints(run)
    ckpt.mark_best(older)  # a run whose best validation loss came before its last step
    _, meta = load_model(run)
    assert meta["step"] == 2 and meta["path"].endswith("best.pt")
    assert load_model(run, checkpoint="last")[1]["path"] == str(newest)
    assert main(["generate", str(run), "--checkpoint", "last", "-n", "1", "--seconds", "0.25", "--out",
                 str(tmp_path / "g"), "--no-watermark"]) == 0
    assert records(tmp_path / "g")[0]["step"] == 3
    (run / "checkpoints" / "best.pt").unlink()  # no best.pt (empty valid split): the newest
    assert load_model(run)[1]["step"] == 3


def test_same_seed_gives_the_same_files_and_each_file_is_reproducible_alone(run_dir, tmp_path):
    generate(run_dir, tmp_path / "a", n=3, seconds=0.5, seed=7, watermark=False)
    generate(run_dir, tmp_path / "b", n=3, seconds=0.5, seed=7, watermark=False)
    generate(run_dir, tmp_path / "c", n=3, seconds=0.5, seed=8, watermark=False)
    a, b, c = read_all(tmp_path / "a"), read_all(tmp_path / "b"), read_all(tmp_path / "c")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], a[2])
    seeds = [r["seed"] for r in records(tmp_path / "a")]
    assert seeds == [file_seed(7, i) for i in range(3)] and seeds[0] == 7
    generate(run_dir, tmp_path / "one", n=1, seconds=0.5, seed=seeds[2], watermark=False)
    assert np.array_equal(read_all(tmp_path / "one")[0], a[2])


def test_generated_jsonl_describes_each_marked_file(run_dir, tmp_path):
    from wavesmith.watermark import detect

    paths = generate(run_dir, tmp_path / "g", n=2, seconds=1.5, seed=1, label="lo", temperature=0.7)
    assert [p.name for p in paths] == ["000.wav", "001.wav"]
    recs = records(tmp_path / "g")
    _, meta = load_model(run_dir)
    for i, r in enumerate(recs):
        assert r["file"] == f"{i:03d}.wav" and r["model"] == "toy_model:ToyModel" and r["label"] == "lo"
        assert r["checkpoint_sha256"] == meta["sha256"] and r["settings"]["temperature"] == 0.7
        assert isinstance(r["watermark"]["payload"], int) and r["c2pa"]["signed"] is True
    x, rate = A.read(paths[0])
    found = detect(x, rate)
    assert found.present and found.payload == recs[0]["watermark"]["payload"]


def test_no_watermark_is_warned_and_recorded(run_dir, tmp_path, capsys):
    code = main(["generate", str(run_dir), "-n", "1", "--seconds", "0.5", "--out", str(tmp_path / "g"),
                 "--no-watermark", "--seed", "3", "--format", "flac"])
    assert code == 0 and "no watermark" in capsys.readouterr().err
    (rec,) = records(tmp_path / "g")
    assert rec["watermark"] is False and rec["settings"]["watermark"] is False and rec["file"] == "000.flac"


def test_prompt_and_mel_from_are_passed_as_waveforms(run_dir, tmp_path):
    prompt = tmp_path / "p.wav"
    A.write(prompt, 0.5 * np.ones((1, 4000), np.float32), 8000)
    generate(run_dir, tmp_path / "plain", n=1, seconds=0.5, seed=2, watermark=False)
    generate(run_dir, tmp_path / "prompted", n=1, seconds=0.5, seed=2, watermark=False, prompt=prompt)
    generate(run_dir, tmp_path / "mel", n=1, seconds=0.5, seed=2, watermark=False, mel_from=prompt)
    plain, prompted, mel = (read_all(tmp_path / d)[0] for d in ("plain", "prompted", "mel"))
    assert not np.allclose(plain, prompted) and np.allclose(prompted, mel, atol=1e-4)
    assert records(tmp_path / "prompted")[0]["settings"]["prompt"] == str(prompt)


def test_batches_record_their_seed_and_place(run_dir, tmp_path):
    generate(run_dir, tmp_path / "g", n=3, seconds=0.5, seed=5, batch_size=2, watermark=False)
    recs = records(tmp_path / "g")
    assert [(r["seed"], r["batch_index"]) for r in recs] == [(5, 0), (5, 1), (file_seed(5, 2), 0)]


def test_unknown_label_lists_the_known_ones(run_dir, tmp_path):
    with pytest.raises(WavesmithError, match="unknown label 'mid'; known labels: hi, lo"):
        generate(run_dir, tmp_path / "g", n=1, label="mid")


def test_unsupported_condition_is_a_clear_error(run_dir, tmp_path):
    with pytest.raises(WavesmithError, match="trained without speakers"):
        generate(run_dir, tmp_path / "g", n=1, speaker="ann")


def test_output_folder_of_an_earlier_generation_is_refused(run_dir, tmp_path):
    generate(run_dir, tmp_path / "g", n=1, seconds=0.5, seed=1, watermark=False)
    with pytest.raises(WavesmithError, match="already holds generated files"):
        generate(run_dir, tmp_path / "g", n=1, seconds=0.5, seed=1, watermark=False)


def test_truncated_checkpoint_is_a_one_line_error(run_dir, tmp_path):
    path = ckpt.list_checkpoints(run_dir)[-1]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WavesmithError, match="truncated or corrupt"):
        load_model(bad)
    with pytest.raises(WavesmithError, match="no run, checkpoint or shipped model named"):
        load_model(tmp_path / "missing")


def test_save_clips_leaves_clips_too_short_for_the_mark_unmarked_and_says_why(tmp_path):
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 1, 800)).astype(np.float32)
    paths = save_clips(audio, 8000, tmp_path, [{"index": 4}, {"index": 5}], model="m", checkpoint_hash="h")
    assert [p.name for p in paths] == ["004.wav", "005.wav"]
    rec = records(tmp_path)[0]
    assert rec["watermark"] is False and "too short" in rec["watermark_reason"]


def test_save_clips_checks_each_written_file_and_records_whether_its_mark_is_found(tmp_path, capsys):
    rate = 16000
    t = np.arange(3 * rate) / rate
    hum = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    hum += np.random.default_rng(0).normal(0, 0.02, len(t))
    audio = np.stack([hum[None], (0.5 * np.sin(2 * np.pi * 6000 * t))[None]]).astype(np.float32)
    save_clips(audio, rate, tmp_path, [{}, {}], model="m", checkpoint_hash="h")
    found, lost = records(tmp_path)
    assert found["watermark"]["verified"] is True and "watermark_reason" not in found
    # The tone holds only its onset click in the band: too little for the mark, or its payload.
    assert lost["watermark"]["verified"] is False and "its watermark" in lost["watermark_reason"]
    err = capsys.readouterr().err
    assert "001.wav: its watermark" in err and "000.wav" not in err


def test_ogg_files_are_watermarked_but_unsigned_and_the_user_is_told(tmp_path, capsys):
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 1, 16000)).astype(np.float32)
    save_clips(audio, 16000, tmp_path, [{}, {}], format="ogg", model="m", checkpoint_hash="h")
    recs = records(tmp_path)
    assert [r["c2pa"]["signed"] for r in recs] == [False, False] and "ogg" in recs[0]["c2pa"]["reason"]
    assert isinstance(recs[0]["watermark"]["payload"], int)
    err = capsys.readouterr().err
    assert err.count("C2PA manifest not written") == 1 and "000.ogg" in err


def test_file_seeds_stay_those_of_earlier_versions():
    # Pinned: a recorded seed must remake its file with every later version.
    assert [file_seed(7, i) for i in range(4)] == [7, 1711099005, 1077072701, 1475561657]


def test_generate_help_states_mel_diffusions_default_guidance(capsys):
    from wavesmith.models.mel_diffusion import Config

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{Config().guidance:g} for new mel-diffusion runs" in text
