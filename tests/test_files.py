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
