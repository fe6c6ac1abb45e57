"""The SQLite catalog of a clip database: one row per clip, per source file, per skipped input.

The catalog is the single source of truth. The audio store (:mod:`wavesmith.db.store`) is
append-only; a clip exists when, and only when, its row is committed here. Writers append
audio, fsync it, then commit the rows in one transaction, so a crash at any moment leaves
either the old catalog or the new one, never a row pointing at missing audio.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

from wavesmith.errors import WavesmithError

# Bump when the layout changes. A writer migrates an older catalog in place (see
# `migrate`); readers read every version in READABLE_VERSIONS; newer ones are refused.
#   1: the first layout
#   2: clips.language (an espeak-ng voice name such as en-us; NULL if unknown)
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FORMAT_NAME = "wavesmith-clip-db"
CATALOG_FILE = "catalog.sqlite"
SPLITS = ("train", "valid", "test")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,       -- blake2b of the stored int16 samples
    source TEXT NOT NULL,            -- first path the audio came from
    segment INTEGER NOT NULL,        -- index of the piece when --split-long cut the file
    orig_rate INTEGER NOT NULL,
    orig_channels INTEGER NOT NULL,
    orig_format TEXT NOT NULL,
    duration REAL NOT NULL,          -- seconds at the database rate
    peak REAL NOT NULL,
    rms_db REAL NOT NULL,
    label TEXT,
    speaker TEXT,
    text TEXT,
    split TEXT NOT NULL,
    shard INTEGER NOT NULL,
    offset INTEGER NOT NULL,         -- in frames from the start of the shard
    length INTEGER NOT NULL,         -- in frames
    added REAL NOT NULL,
    language TEXT                    -- last: where format 1's ALTER TABLE ADD COLUMN puts it
);
CREATE INDEX clips_split ON clips(split);
CREATE INDEX clips_source ON clips(source);
CREATE TABLE sources (
    path TEXT PRIMARY KEY,           -- absolute path of an input file
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    clips INTEGER NOT NULL,          -- clips it produced (0: duplicate audio or error)
    duplicates INTEGER NOT NULL,     -- pieces whose audio was already stored
    error TEXT                       -- why it was skipped, NULL if it was not
);
CREATE TABLE source_clips (path TEXT NOT NULL, clip INTEGER NOT NULL, PRIMARY KEY (path, clip));
CREATE INDEX source_clips_clip ON source_clips(clip);
CREATE TABLE errors (path TEXT PRIMARY KEY, reason TEXT NOT NULL, time REAL NOT NULL);
"""


def connect(db_dir: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open the catalog with the settings every connection uses (WAL: readers never block the writer).

    ``readonly`` (a read-only mount, or no write permission) opens it for reading only and
    leaves the journal mode alone, which a reader could not set anyway.
    """
    # check_same_thread=False: SQLite serialises use of one connection itself, and a
    # trainer's preview thread may read the database its loop opened.
    file = db_dir.absolute() / CATALOG_FILE
    if readonly:
        # Reading a WAL database needs its -shm file; with no -wal and -shm there, no writer
        # is active, and `immutable` reads without them (they cannot be made here).
        live = all(Path(f"{file}{x}").exists() for x in ("-wal", "-shm"))
        uri = f"{file.as_uri()}?mode=ro" + ("" if live else "&immutable=1")
        con = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA query_only=ON")
        return con
    con = sqlite3.connect(str(file), timeout=60.0, isolation_level=None, check_same_thread=False)
    # NORMAL is crash-safe for a killed process in WAL mode; on power loss the last
    # commits may roll back, which only orphans audio bytes (never a dangling row).
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=OFF")
    return con


def initialise(db_dir: Path, sample_rate: int, channels: int, split_ratios: tuple[float, ...]) -> None:
    """Create a fresh catalog (the caller made sure none exists)."""
    con = connect(db_dir)
    try:
        # WAL is recorded in the file, so every later connection has it without setting it
        # (and opening a foreign or damaged file never converts it).
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("BEGIN")
        for statement in _statements(_SCHEMA):  # not executescript: it would commit mid-way
            con.execute(statement)
        meta = {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "sample_rate": str(int(sample_rate)),
            "channels": str(int(channels)),
            "split_ratios": json.dumps(list(split_ratios)),
            "created": str(time.time()),
            "shard_ends": "{}",  # committed frames per shard (see store.ShardWriter)
        }
        con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        con.execute(f"PRAGMA user_version={FORMAT_VERSION}")
        con.execute("COMMIT")
    finally:
        con.close()


def check_file(db_dir: Path) -> None:
    """Refuse a catalog file SQLite would have to change or guess at: empty, foreign or truncated.

    Checked from its header before any connection, so a refused file is left exactly as it
    was (SQLite writes a header into an empty file, and journal files beside any file).
    """
    path = db_dir / CATALOG_FILE
    with open(path, "rb") as f:
        head = f.read(100)
    size = path.stat().st_size
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        raise WavesmithError(f"{db_dir} is not a wavesmith clip database ({CATALOG_FILE} is not an SQLite file)")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    if size < page * pages:
        raise WavesmithError(f"{db_dir}: its catalog is truncated ({size} of {page * pages} bytes); restore "
                             f"{CATALOG_FILE} from a backup, or make a new database")


def _statements(script: str) -> list[str]:
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def read_meta(con: sqlite3.Connection, db_dir: Path) -> dict[str, str]:
    """The meta table, after checking that this wavesmith can read the format."""
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise WavesmithError(f"{db_dir} is not a wavesmith clip database ({e})") from None
    if meta.get("format") != FORMAT_NAME:
        raise WavesmithError(f"{db_dir} is not a wavesmith clip database")
    if version not in READABLE_VERSIONS or meta.get("format_version") != str(version):
        raise WavesmithError(
            f"{db_dir} was made by an incompatible wavesmith (database format {version}; "
            f"this version reads formats {READABLE_VERSIONS[0]} to {FORMAT_VERSION}): "
            "rebuild it with `wavesmith db create` and `db add`"
        )
    return meta


def migrate(con: sqlite3.Connection) -> int:
    """Bring an older catalog up to :data:`FORMAT_VERSION` in place; returns the version it now has.

    The caller holds the writer lock. Every step runs in one transaction with the version
    bump (SQLite's ALTER TABLE and ``PRAGMA user_version`` are transactional), so a crash
    leaves the old format or the new one. Adding a column rewrites no rows: it is quick
    however many clips the database holds, and the old rows read NULL in it.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            con.execute("ALTER TABLE clips ADD COLUMN language TEXT")
            version = 2
        if version == FORMAT_VERSION:
            con.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(version),))
            con.execute(f"PRAGMA user_version={version}")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    return version


def split_for(content_hash: str, ratios: tuple[float, ...]) -> str:
    """The split of a clip: a fixed function of its content hash, so it never moves."""
    u = int(content_hash[:16], 16) / float(1 << 64)
    total = sum(ratios)
    edge = 0.0
    for name, r in zip(SPLITS, ratios, strict=False):
        edge += r / total
        if u < edge:
            return name
    return SPLITS[len(ratios) - 1]


def parse_ratios(value: str | tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or a sequence) -> three non-negative ratios summing to 1."""
    try:
        parts = [float(x) for x in (value.split(",") if isinstance(value, str) else value)]
    except ValueError:
        raise WavesmithError(f"split ratios must be numbers like 0.8,0.1,0.1, not {value!r}") from None
    if len(parts) != 3 or not all(0 <= p < math.inf for p in parts) or not 0 < sum(parts) < math.inf:
        raise WavesmithError(f"split ratios need three non-negative numbers (train,valid,test), got {value!r}")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]
