"""The clip database: a folder with an SQLite catalog and a memory-mapped int16 audio store.

``DB/catalog.sqlite`` (clips, sources, skipped inputs), ``DB/audio/shard-*.pcm``
(the samples), ``DB/.lock`` (held by the one process that writes at a time). All audio
is stored at the sample rate and channel count fixed by :meth:`Database.create`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavesmith.db import catalog
from wavesmith.db.store import SAMPLE_BYTES, ShardReader, ShardWriter, shard_path
from wavesmith.errors import WavesmithError
from wavesmith.files import usual_mode

LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Clip:
    """One clip of the database, as the catalog describes it."""

    id: int
    source: str  # the file it came from (the first one, when the same audio came twice)
    label: str | None
    speaker: str | None
    text: str | None
    language: str | None  # an espeak-ng voice name (en-us, fr-fr, ...); None if unknown
    split: str  # train / valid / test
    duration: float  # seconds
    sample_rate: int  # of the database (audio is stored converted)
    channels: int
    length: int  # frames
    hash: str
    segment: int  # piece index when --split-long cut the source
    orig_rate: int
    orig_channels: int
    orig_format: str
    peak: float
    rms_db: float
    shard: int
    offset: int


_CLIP_COLUMNS = (
    "id, source, label, speaker, text, {language}, split, duration, length, hash, segment, "
    "orig_rate, orig_channels, orig_format, peak, rms_db, shard, offset"
)


class Database:
    """A clip database on disk. Make one with :meth:`create`, reopen it with :meth:`open`."""

    def __init__(self, path: Path, _con, meta: dict[str, str], readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly  # opened for reading only (a read-only mount or no write permission)
        self._con = _con
        self.sample_rate = int(meta["sample_rate"])
        self.channels = int(meta["channels"])
        self.split_ratios: tuple[float, ...] = tuple(json.loads(meta["split_ratios"]))
        # Format 1 has no language column: read as unknown until a writer migrates it.
        self.format_version = int(meta["format_version"])
        self._reader = ShardReader(self.path, self.channels)
        self._locations: dict[int, tuple[int, int, int]] = {}

    # --- opening --------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        sample_rate: int = 16000,
        channels: int = 1,
        split_ratios: str | tuple[float, ...] = (0.8, 0.1, 0.1),
    ) -> Database:
        """Make an empty database; :class:`WavesmithError` if ``path`` exists and is not an empty folder."""
        path = Path(path).expanduser()
        if not 1000 <= int(sample_rate) <= 768000:
            raise WavesmithError(f"sample rate {sample_rate} Hz is out of range (1000 to 768000)")
        if not 1 <= int(channels) <= 64:
            raise WavesmithError(f"channels must be between 1 and 64, not {channels}")
        ratios = catalog.parse_ratios(split_ratios)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise WavesmithError(f"{path} already exists; open it, or choose a new path")
        # Built in a hidden sibling folder and renamed into place: a killed create leaves
        # no half-made database behind, and of two racing creates exactly one wins.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.creating-", dir=path.parent))
        except OSError as e:
            raise WavesmithError(f"cannot create {path}: {e.strerror or e}") from None
        try:
            os.chmod(tmp, usual_mode(folder=True))  # mkdtemp makes it 0700; the user's umask decides
            (tmp / "audio").mkdir()
            catalog.initialise(tmp, int(sample_rate), int(channels), ratios)
            try:
                os.rename(tmp, path)  # replaces an empty folder, fails on a non-empty one
            except OSError:
                raise WavesmithError(f"{path} already exists; open it, or choose a new path") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike, readonly: bool | None = None) -> Database:
        """Open an existing database; :class:`WavesmithError` if missing or made by an incompatible version.

        ``readonly`` defaults to whether the folder or its catalog cannot be written: such a
        database reads as usual, and writing to it is refused with a message.
        """
        path = Path(path).expanduser()
        file = path / catalog.CATALOG_FILE
        if not file.is_file():
            hint = "" if path.exists() else " (make one with `wavesmith db create`)"
            raise WavesmithError(f"{path} is not a wavesmith clip database{hint}")
        if readonly is None:
            readonly = not (os.access(path, os.W_OK) and os.access(file, os.W_OK))
        catalog.check_file(path)
        try:
            con = catalog.connect(path, readonly=readonly)
        except sqlite3.DatabaseError as e:  # a truncated or foreign catalog.sqlite
            raise WavesmithError(f"{path}: its catalog cannot be read ({e}); restore {catalog.CATALOG_FILE} "
                                 "from a backup, or make a new database") from None
        try:
            meta = catalog.read_meta(con, path)
        except BaseException:
            con.close()
            raise
        return cls(path, con, meta, readonly)

    def close(self) -> None:
        """Release the catalog connection and memory maps."""
        self._reader.close()
        self._con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r}, sample_rate={self.sample_rate}, channels={self.channels})"

    # --- reading --------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Sorted distinct labels; a label's index is its id in :class:`ClipDataset` items."""
        rows = self._con.execute("SELECT DISTINCT label FROM clips WHERE label IS NOT NULL ORDER BY label")
        return [r[0] for r in rows]

    @property
    def speakers(self) -> list[str]:
        """Sorted distinct speakers; a speaker's index is its id in :class:`ClipDataset` items."""
        rows = self._con.execute("SELECT DISTINCT speaker FROM clips WHERE speaker IS NOT NULL ORDER BY speaker")
        return [r[0] for r in rows]

    @property
    def languages(self) -> list[str]:
        """Sorted distinct languages; a language's index is its id in :class:`ClipDataset` items."""
        if not self.has_language:
            return []
        rows = self._con.execute("SELECT DISTINCT language FROM clips WHERE language IS NOT NULL ORDER BY language")
        return [r[0] for r in rows]

    @property
    def has_language(self) -> bool:
        """Whether the catalog has the language column (format 2 on; a format 1 database reads none)."""
        return self.format_version >= 2

    def clips(self, split: str | None = None) -> list[Clip]:
        """All clips (ordered by id), or those of one split (``train``, ``valid``, ``test``)."""
        if split is not None and split not in catalog.SPLITS:
            raise WavesmithError(f"unknown split {split!r}; use one of {', '.join(catalog.SPLITS)}")
        columns = _CLIP_COLUMNS.format(language="language" if self.has_language else "NULL")
        sql = f"SELECT {columns} FROM clips" + (" WHERE split = ?" if split else "") + " ORDER BY id"
        rows = self._con.execute(sql, (split,) if split else ()).fetchall()
        return [_clip(r, self.sample_rate, self.channels) for r in rows]

    def __len__(self) -> int:
        return self._con.execute("SELECT COUNT(*) FROM clips").fetchone()[0]

    def audio(self, clip_id: int, max_seconds: float | None = None) -> np.ndarray:
        """The samples of a clip: float32 ``(channels, frames)`` at :attr:`sample_rate`.

        ``max_seconds`` returns only the clip's start (memory bounded by that length).
        """
        loc = self._locations.get(int(clip_id))
        if loc is None:
            row = self._con.execute("SELECT shard, offset, length FROM clips WHERE id = ?", (int(clip_id),)).fetchone()
            if row is None:
                raise WavesmithError(f"no clip with id {clip_id} in {self.path}")
            loc = self._locations[int(clip_id)] = tuple(row)
        shard, offset, length = loc
        if max_seconds is not None:
            length = min(length, int(max_seconds * self.sample_rate))
        return self._reader.read(shard, offset, length)

    def fingerprint(self) -> str:
        """A short hash of the clip set and its metadata; changes whenever clips are added or removed."""
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{self.sample_rate}/{self.channels}/{self.split_ratios}".encode())
        language = "language" if self.has_language else "NULL"
        sql = f"SELECT id, hash, label, speaker, text, split, {language} FROM clips ORDER BY id"
        for row in self._con.execute(sql):
            # a clip without a language hashes as before the column existed: migrating a
            # format 1 database changes no fingerprint (runs resume, caches stay valid)
            h.update(repr(row[:-1] if row[-1] is None else row).encode())
        return h.hexdigest()

    def errors(self) -> list[dict]:
        """Every skipped input: ``{"path", "reason", "time"}``, by path."""
        rows = self._con.execute("SELECT path, reason, time FROM errors ORDER BY path")
        return [{"path": p, "reason": r, "time": t} for p, r, t in rows]

    def verify(self) -> dict:
        """Check the store against the catalog: every clip inside its shard, no overlaps, hashes match.

        Returns ``{"clips", "problems": [...]}``; an empty ``problems`` list means consistent.
        Reads every stored sample, so it takes as long as a pass over the audio.
        """
        from wavesmith.db.decode import content_hash

        problems: list[str] = []
        integrity = [r[0] for r in self._con.execute("PRAGMA integrity_check")]
        if integrity != ["ok"]:
            problems += [f"catalog: {line}" for line in integrity]
        ends: dict[int, int] = {}
        rows = self._con.execute("SELECT id, hash, shard, offset, length FROM clips ORDER BY shard, offset")
        n = 0
        for clip_id, h, shard, offset, length in rows:
            n += 1
            if offset < ends.get(shard, 0):
                problems.append(f"clip {clip_id} overlaps the previous clip in shard {shard}")
            ends[shard] = offset + length
            try:
                pcm = self._reader.view(shard, offset, 0, length)
            except (OSError, ValueError, WavesmithError) as e:
                problems.append(f"clip {clip_id}: {e}")
                continue
            if content_hash(pcm) != h:
                problems.append(f"clip {clip_id}: stored audio does not match its hash")
        return {"clips": n, "problems": problems}

    def info(self) -> dict:
        """Summary figures (what ``wavesmith db info --json`` prints)."""
        from wavesmith.db.report import info

        return info(self)

    # --- writing --------------------------------------------------------------------------

    def add(
        self,
        sources,
        manifest: str | os.PathLike | None = None,
        label_from: str = "none",
        trim_silence: bool = False,
        split_long: float | None = None,
        min_duration: float = 0.0,
        max_duration: float | None = None,
        workers: int | None = None,
        progress: bool | None = None,
        wait: float = 600.0,
    ) -> dict:
        """Decode and store every new audio file under ``sources`` (files or folders) and in ``manifest``.

        Sources already stored with the same size and mtime are skipped without decoding;
        audio identical to a stored clip is not stored twice. Bad inputs are recorded (see
        :meth:`errors`) and counted, never raised. Returns a summary dict. ``wait`` is how
        long to wait for another process writing this database before giving up.
        """
        from wavesmith.db.add import add

        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        return add(
            self, list(sources), manifest=manifest, label_from=label_from, trim_silence=trim_silence,
            split_long=split_long, min_duration=min_duration, max_duration=max_duration,
            workers=workers, progress=progress, wait=wait,
        )

    def prune(self, wait: float = 600.0) -> dict:
        """Forget sources whose files are gone and the clips only they provided."""
        with self.writing(wait):
            con = self._con
            gone = [p for (p,) in con.execute("SELECT path FROM sources") if not os.path.exists(p)]
            gone_errors = [p for (p,) in con.execute("SELECT path FROM errors") if not os.path.exists(p)]
            before = len(self)
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("DELETE FROM sources WHERE path = ?", [(p,) for p in gone])
                con.executemany("DELETE FROM source_clips WHERE path = ?", [(p,) for p in gone])
                con.executemany("DELETE FROM errors WHERE path = ?", [(p,) for p in gone_errors])
                con.execute("DELETE FROM clips WHERE id NOT IN (SELECT clip FROM source_clips)")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            # Survivors whose first source is gone now name a remaining one.
            con.execute(
                "UPDATE clips SET source = (SELECT MIN(path) FROM source_clips WHERE clip = clips.id) "
                "WHERE source NOT IN (SELECT path FROM sources)"
            )
            return {"sources_removed": len(gone), "clips_removed": before - len(self), "clips": len(self)}

    def export(self, out: str | os.PathLike, format: str = "wav", split: str | None = None) -> list[Path]:
        """Write clips back out as files ``OUT/<split>/<label or 'unlabelled'>/<id>.<format>`` (atomically)."""
        from wavesmith.db.report import export

        return export(self, out, format=format, split=split)

    def _shard_ends(self) -> dict[int, int]:
        """Frames the catalog accounts for in each shard (its high-water marks)."""
        row = self._con.execute("SELECT value FROM meta WHERE key = 'shard_ends'").fetchone()
        if row is not None:
            return {int(k): int(v) for k, v in json.loads(row[0]).items()}
        # not recorded yet: what the clips account for
        rows = self._con.execute("SELECT shard, MAX(offset + length) FROM clips GROUP BY shard").fetchall()
        return {int(s): int(e) for s, e in rows}

    def check_store(self) -> None:
        """Refuse a store that lacks audio the catalog points at (a deleted or cut shard file).

        Appending to such a store would write new clips under old clips' offsets, and
        training on it would fail mid-run; both check first and stop with this message.
        """
        for shard, end in sorted(self._shard_ends().items()):
            if end <= 0:
                continue
            path = shard_path(self.path, shard)
            size = path.stat().st_size if path.is_file() else -1
            if size < end * self.channels * SAMPLE_BYTES:
                n = self._con.execute("SELECT COUNT(*) FROM clips WHERE shard = ?", (shard,)).fetchone()[0]
                what = "is missing" if size < 0 else "is shorter than the catalog says"
                raise WavesmithError(
                    f"{path} {what}: {n} clip(s) point into it, and nothing is written to a damaged store; "
                    f"restore the file from a backup (`wavesmith db verify {self.path}` lists the clips it "
                    "affects), or make a new database and `db add` the sources again")

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only SQL query on the catalog (summaries such as ``db info``)."""
        return self._con.execute(sql, params).fetchall()

    @contextmanager
    def writing(self, wait: float = 600.0):
        """Hold the writer lock; yields a :class:`Writing`: the catalog connection and a
        :class:`ShardWriter` positioned after the committed audio. On exit the cached clip
        locations are dropped, since the write may have moved them."""
        if self.readonly:
            raise WavesmithError(f"{self.path} is read-only (no write permission, or a read-only mount); "
                                 "it can be read, not changed")
        if not 0 <= wait < float("inf"):
            raise WavesmithError(f"--wait must be a finite number of seconds >= 0, not {wait}")
        with _lock(self.path, wait):
            self.check_store()
            if self.format_version < catalog.FORMAT_VERSION:
                self.format_version = catalog.migrate(self._con)
            writer = ShardWriter(self.path, self.channels, self._shard_ends())
            try:
                yield Writing(self._con, writer)
            finally:
                writer.close()
                self._locations.clear()


@dataclass(frozen=True)
class Writing:
    """What a writer holding the lock works with: the catalog connection and the shard writer."""

    catalog: sqlite3.Connection
    shards: ShardWriter


def _clip(row: tuple, sample_rate: int, channels: int) -> Clip:
    (cid, source, label, speaker, text, language, split, duration, length, h, segment,
     orig_rate, orig_channels, orig_format, peak, rms_db, shard, offset) = row
    return Clip(
        cid, source, label, speaker, text, language, split, duration, sample_rate, channels, length, h, segment,
        orig_rate, orig_channels, orig_format, peak, rms_db, shard, offset,
    )


@contextmanager
def _lock(db_dir: Path, timeout: float):
    """Exclusive writer lock on ``DB/.lock``: wait up to ``timeout`` seconds, saying so once."""
    try:
        fd = os.open(str(db_dir / LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WavesmithError(f"cannot write to {db_dir}: {e.strerror or e}") from None
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WavesmithError(
                        f"another wavesmith process is writing to {db_dir}; gave up after {timeout:g} s "
                        "(try again when it has finished, or pass a longer --wait)"
                    ) from None
                if not told:
                    print(f"wavesmith: waiting for another process writing to {db_dir}...", file=sys.stderr)
                    told = True
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
