"""Writing files so that a reader never sees half of one.

Every file wavesmith writes (audio, reports, configs, logs, caches) goes to a temporary
file in the same folder, then ``os.replace``-s the name: on POSIX and Windows the rename is
atomic, so the old file or the new one is there, never a mix. If the write fails (a full
disk, an exception in the writer), the temporary file is removed and the old file stands.
``fsync=True`` (checkpoints) also survives a power cut: the file's data reach the disk
before the rename, and the rename reaches it before the call returns.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wavesmith.errors import WavesmithError

# mkstemp and mkdtemp make owner-only files and folders; what we write should get the
# user's usual mode (0644 and 0755 under umask 022), as open() and mkdir() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)


def usual_mode(folder: bool = False) -> int:
    """The mode ``open()`` (or, with ``folder``, ``mkdir()``) would give under the user's umask."""
    return (0o777 if folder else 0o666) & ~_UMASK


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name ends with ``path``'s own suffix, for writers that pick the format
    from the extension (libsndfile, c2pa). ``fsync``: flush the written file to the disk
    before the rename and the folder after it.
    """
    path = Path(path)
    try:  # a read-only or missing folder is the user's to fix: one line, not a traceback
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise WavesmithError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    os.chmod(tmp, usual_mode())
    try:
        yield Path(tmp)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op after the rename
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename, a new link) to the disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


@contextmanager
def hold_folder(folder: str | os.PathLike, busy: str) -> Iterator[bool]:
    """Hold an exclusive lock on ``folder`` itself for the block; yields whether this call made it.

    The lock is on the folder (no lock file is left behind) and is released when the block
    ends or the process dies. A second holder, in this process or another, gets
    :class:`WavesmithError` with the message ``busy`` at once. A folder this call made is
    removed again when the block leaves it empty (a refused run leaves nothing behind).
    """
    folder = Path(folder)
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        raise WavesmithError(f"cannot write to {folder}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WavesmithError(busy) from None
        yield made
    finally:
        os.close(fd)  # releases the lock
        if made:
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                pass


def folder_busy(folder: str | os.PathLike) -> bool:
    """Whether another holder has :func:`hold_folder`'s lock on ``folder`` now (False when it does not exist)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
