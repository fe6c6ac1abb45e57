import os

import pytest

from wavesmith.files import atomic_path, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    write_text(target, "old")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise OSError(28, "No space left on device")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.html"]


def test_written_file_gets_the_users_usual_mode_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "config.toml", "x = 1\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_path_with_fsync_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    from wavesmith import files

    events = []
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))))
    real_replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b)))
    target = tmp_path / "x.pt"
    with files.atomic_path(target, fsync=True) as tmp:
        tmp.write_bytes(b"data")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].endswith(".tmp.pt") and events[2][1] == str(tmp_path) and target.read_bytes() == b"data"
    events.clear()
    with files.atomic_path(tmp_path / "y.txt") as tmp:
        tmp.write_text("plain")
    assert [e[0] for e in events] == ["replace"]  # no fsync unless asked
