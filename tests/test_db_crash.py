"""Interrupted and concurrent writers: the database stays consistent and a rerun completes it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from wavesmith.cli import main
from wavesmith.db import Database
from wavesmith.errors import WavesmithError

N_FILES = 160


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Many three-second 48 kHz files, so ``db add`` runs long enough to be interrupted."""
    root = tmp_path_factory.mktemp("crash") / "src"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        sf.write(str(root / f"n{i:04d}.wav"), rng.uniform(-0.5, 0.5, (3 * 48000, 1)).astype(np.float32), 48000)
    return root


def start_add(db_path, *sources, workers=1):
    env = dict(os.environ, WAVESMITH_DB_COMMIT_FILES="4")
    cmd = [sys.executable, "-m", "wavesmith", "db", "add", str(db_path), *map(str, sources), "--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def committed(db_path) -> int:
    try:
        con = sqlite3.connect(f"file:{db_path / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def interrupt_mid_way(db_path, source, sig) -> subprocess.Popen:
    proc = start_add(db_path, source, workers=2)
    deadline = time.monotonic() + 60
    while committed(db_path) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = children(proc.pid)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{w}") and not zombie(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if os.path.exists(f"/proc/{w}") and not zombie(w)], "decoders outlived db add"
    return proc


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return found


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def shard_bytes(db_path) -> int:
    return sum(p.stat().st_size for p in (db_path / "audio").glob("shard-*.pcm"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_add_leaves_a_consistent_database_that_a_rerun_completes(tmp_path, corpus, sig):
    db_path = tmp_path / "db"
    Database.create(db_path).close()
    proc = interrupt_mid_way(db_path, corpus, sig)
    assert proc.returncode in ((-signal.SIGKILL,) if sig == signal.SIGKILL else (130, -signal.SIGINT))
    with Database.open(db_path) as db:
        partial = len(db)
        assert 0 < partial < N_FILES, "the interruption should land mid-way"
        assert db.verify()["problems"] == []
        for clip in db.clips()[:5]:
            assert db.audio(clip.id).shape == (1, 48000)
        summary = db.add([corpus], progress=False, workers=1)
        assert summary["unchanged"] >= partial  # the committed part is not decoded again
        assert len(db) == N_FILES and summary["errors"] == 0
        assert db.verify()["problems"] == []
        # garbage appended by the interrupted writer was cut off: the store holds exactly the clips
        assert shard_bytes(db_path) == 2 * sum(c.length for c in db.clips())


def test_uncommitted_audio_is_truncated_by_the_next_writer(tmp_path, corpus):
    db = Database.create(tmp_path / "db")
    db.add([corpus / "n0000.wav"], progress=False)
    size = shard_bytes(tmp_path / "db")
    with open(tmp_path / "db" / "audio" / "shard-00000.pcm", "ab") as f:
        f.write(b"\x01\x02" * 1000)  # what a killed writer leaves behind
    db.add([corpus / "n0001.wav"], progress=False)
    assert shard_bytes(tmp_path / "db") == size * 2
    assert db.verify()["problems"] == []


def test_concurrent_adds_both_succeed_without_corruption(tmp_path, corpus):
    halves = [tmp_path / "a", tmp_path / "b"]
    for i, folder in enumerate(halves):
        folder.mkdir()
        for p in sorted(corpus.glob("*.wav"))[i * 20 : (i + 1) * 20]:
            os.symlink(p, folder / p.name)
    db_path = tmp_path / "db"
    Database.create(db_path).close()
    procs = [start_add(db_path, folder) for folder in halves]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with Database.open(db_path) as db:
        assert len(db) == 40
        assert db.verify()["problems"] == []


def test_second_writer_gives_up_after_its_wait_with_a_clear_message(tmp_path, corpus):
    db = Database.create(tmp_path / "db")
    other = Database.open(tmp_path / "db")
    with db.writing():
        with pytest.raises(WavesmithError, match="another wavesmith process is writing"):
            other.add([corpus / "n0000.wav"], progress=False, wait=0.3)
    assert other.add([corpus / "n0000.wav"], progress=False, wait=0.3)["added"] == 1


def test_cli_runs_create_add_info_errors_export_prune(tmp_path, corpus, capsys):
    db = str(tmp_path / "db")
    assert main(["db", "create", db, "--sample-rate", "8000", "--split-ratios", "0.5,0.25,0.25"]) == 0
    (tmp_path / "bad.wav").write_text("not audio")
    assert main(["db", "add", db, str(corpus / "n0000.wav"), str(tmp_path / "bad.wav"), "--no-progress"]) == 0
    assert "1 clip(s) added" in capsys.readouterr().out
    assert main(["db", "info", db, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["clips"], info["errors"], info["sample_rate"]) == (1, 1, 8000)
    assert main(["db", "errors", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"].endswith("bad.wav")
    assert main(["db", "export", db, str(tmp_path / "out"), "--format", "flac"]) == 0
    assert len(list((tmp_path / "out").rglob("*.flac"))) == 1
    assert main(["db", "verify", db]) == 0
    assert main(["db", "prune", db]) == 0
    assert "0 clip(s)" in capsys.readouterr().out


def test_cli_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["db", "info", str(tmp_path / "missing")]) == 2
    (tmp_path / "m.csv").write_text("file\nx.wav\n")
    db = str(tmp_path / "db")
    main(["db", "create", db])
    capsys.readouterr()
    assert main(["db", "add", db, "--manifest", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wavesmith: error:") and "'path' column" in err and "\n" not in err


# Workers that each send a large result at the same moment, and a consumer that stops
# reading at moments sweeping across those sends (as Ctrl+C does mid-ingest).
_STOP_WHILE_SENDING = r"""
import time
import wavesmith.db.ingest as I

DEADLINE = 0.0

def slow_big(chunk):  # forked workers see it: the pool resolves _decode_chunk by name
    if chunk[0] == 0:
        return list(chunk)
    time.sleep(max(0.0, DEADLINE - time.time()))
    return [bytes(32 << 20)]

I._decode_chunk = slow_big
for k in range(12):
    DEADLINE = time.time() + 0.3
    stream = I.decoded_stream(list(range(64)), None, 2)
    next(stream)
    time.sleep(max(0.0, DEADLINE + 0.015 * k - time.time()))
    stream.close()
print("all closed")
"""


def test_stopping_the_decoders_while_they_send_large_results_does_not_hang():
    # Pool.terminate() deadlocked here (4 of 5 runs before the fix): its result thread
    # stopped reading, and a worker blocked mid-send kept the lock terminate waited for.
    proc = subprocess.Popen([sys.executable, "-c", _STOP_WHILE_SENDING], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("closing decoded_stream deadlocked")
    assert proc.returncode == 0 and "all closed" in out
