"""``db add``: find input files, decode them in parallel, store the new clips.

Workers decode (:mod:`wavesmith.db.decode`); the main process alone writes, in batches:
audio appended and fsynced first, then the batch's catalog rows in one transaction.
A crash loses at most the uncommitted batch, whose bytes the next writer truncates, and
the same ``db add`` picks up where it stopped because finished sources are skipped.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from wavesmith.audio import AUDIO_EXTENSIONS
from wavesmith.db.catalog import split_for
from wavesmith.db.decode import Decoded, Job, Settings, decode
from wavesmith.errors import WavesmithError

# Commit at least every this many files (the environment variable exists for the
# kill-and-rerun tests, which need several commits from a small corpus)...
COMMIT_FILES = int(os.environ.get("WAVESMITH_DB_COMMIT_FILES", "256"))
COMMIT_SECONDS = 2.0  # ...or this often, so an interruption loses little work
CHUNK_FILES = 8  # files per task sent to a worker
MANIFEST_COLUMNS = ("path", "label", "speaker", "text", "language")
# A language is a token such as en-us, pt-br or cmn (espeak-ng voice names, BCP 47 tags):
# it names things (embedding rows, phonemiser voices), so no spaces or punctuation.
LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,35}")
MAX_LISTED = 100  # skipped inputs named in a summary (all of them are in the catalog)


def collect_jobs(
    sources: Iterable[str | os.PathLike], manifest: str | os.PathLike | None, label_from: str
) -> tuple[list[Job], int]:
    """Input files to consider, in a stable order, and how many non-audio files were ignored.

    Folders are walked recursively for audio extensions; a file named explicitly is always
    tried (and rejected with a reason if it is not audio). Manifest rows give metadata.
    """
    if label_from not in ("parent", "none"):
        raise WavesmithError(f"--label-from must be 'parent' or 'none', not {label_from!r}")
    jobs: dict[str, Job] = {}
    ignored = 0
    for source in sources:
        root = Path(source).expanduser()
        if root.is_dir():
            for path, error in _walk(root):
                if error == "hidden" or (error is None and path.suffix.lower() not in AUDIO_EXTENSIONS):
                    ignored += 1
                    continue
                jobs.setdefault(str(path), Job(str(path), error=error))
        elif root.exists() or root.is_symlink():
            path = root.absolute()
            jobs.setdefault(str(path), Job(str(path)))
        else:
            raise WavesmithError(f"source {source} does not exist")
    if manifest is not None:
        for job in read_manifest(manifest):
            jobs[job.path] = job  # the manifest's metadata wins over a folder walk's
    for job in jobs.values():
        if label_from == "parent" and job.label is None:
            job.label = Path(job.path).parent.name or None
        if job.error is None:
            try:
                st = os.stat(job.path)
                job.size, job.mtime = st.st_size, st.st_mtime
                if not os.access(job.path, os.R_OK):
                    job.error = "permission denied"
            except OSError as e:
                job.error = e.strerror or str(e)
    return [jobs[k] for k in sorted(jobs)], ignored


def _walk(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Files under ``root`` (absolute, sorted), and unreadable folders with their reason.

    Hidden files and folders (``.git``, macOS ``._x.wav`` resource forks) are passed over as
    not audio; symbolic links are followed, each real folder once (no loops), but a link to
    a folder outside ``root`` is not (a link to ``/`` or ``/proc`` would walk the whole
    machine): it is reported, and can be added by naming its target.
    """
    failures: list[OSError] = []
    seen: set[tuple[int, int]] = set()
    inside = os.path.realpath(root)
    for folder, dirs, files in os.walk(root.absolute(), onerror=failures.append, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            target = os.path.realpath(os.path.join(folder, d))
            if os.path.commonpath([inside, target]) != inside:
                dirs.remove(d)
                yield Path(folder) / d, f"link to a folder outside the source folder ({target}); not followed"
        for name in sorted(files):
            yield Path(folder) / name, "hidden" if name.startswith(".") else None
        while failures:
            e = failures.pop()
            yield Path(e.filename or folder), f"cannot list folder: {e.strerror or e}"
    for e in failures:
        yield Path(e.filename or root), f"cannot list folder: {e.strerror or e}"


def read_manifest(manifest: str | os.PathLike) -> list[Job]:
    """Rows of a ``.csv`` (header row) or ``.jsonl`` manifest; relative paths resolve next to it."""
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise WavesmithError(f"manifest {manifest} does not exist")
    base = manifest.absolute().parent
    try:
        if manifest.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            rows = []
            for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise WavesmithError(f"manifest {manifest} line {n} is not JSON: {e.msg}") from None
            if rows and any(not isinstance(r, dict) or "path" not in r for r in rows):
                raise WavesmithError(f"manifest {manifest} has rows without a 'path' key")
        else:
            with open(manifest, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                fields = [c.strip().lower() for c in reader.fieldnames or []]
                if "path" not in fields:
                    raise WavesmithError(
                        f"manifest {manifest} has no 'path' column (columns: {', '.join(fields) or 'none'}; "
                        f"expected some of {', '.join(MANIFEST_COLUMNS)})"
                    )
                rows = [{k.strip().lower(): v for k, v in r.items() if k} for r in reader]
    except (OSError, UnicodeDecodeError) as e:
        raise WavesmithError(f"cannot read manifest {manifest}: {e}") from None
    jobs = []
    for n, row in enumerate(rows, 1):
        rel = str(row.get("path") or "").strip()
        path = (base / Path(rel).expanduser()) if rel else base / f"<row {n}: empty path>"
        job = Job(str(path.absolute()), **{k: _text(row.get(k)) for k in ("label", "speaker", "text", "language")})
        if not rel:
            job.error = f"manifest row {n} has an empty path"
        elif job.language is not None and not LANGUAGE.fullmatch(job.language):
            job.error = (f"manifest row {n} has a bad language {job.language[:40]!r} (letters, digits, '-' and "
                         "'_', at most 35 characters: an espeak-ng voice name such as en-us)")
        elif not path.exists():
            job.error = f"manifest row {n} points to a file that does not exist"
        elif path.is_dir():
            job.error = f"manifest row {n} points to a folder, not a file"
        jobs.append(job)
    return jobs


def _text(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


# --- the parallel decode loop ---------------------------------------------------------------

_SETTINGS: Settings | None = None


def _init_worker(settings: Settings, parent: int) -> None:
    global _SETTINGS
    _SETTINGS = settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl+C
    # Die with the main process: a SIGKILLed `db add` must not leave decoders behind,
    # blocked forever on a task pipe whose write end they inherited themselves.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class StopRequest:
    """Turns the first Ctrl+C into a request the main loop honours between files.

    A KeyboardInterrupt raised at an arbitrary point can leave multiprocessing's locks
    held and hang the pool's shutdown; a flag lets the loop stop cleanly, commit what
    it has, and only then raise. A second Ctrl+C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("wavesmith: stopping after the files in progress (Ctrl+C again to stop now)", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _decode_chunk(jobs: list[Job]) -> list[Decoded]:
    assert _SETTINGS is not None
    return [decode(job, _SETTINGS) for job in jobs]


def decoded_stream(jobs: list[Job], settings: Settings, workers: int) -> Iterator[Decoded]:
    """Decode ``jobs`` in input order with at most ``2 * workers`` chunks in flight (bounded memory)."""
    if workers <= 1 or len(jobs) <= CHUNK_FILES:
        for job in jobs:
            yield decode(job, settings)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    chunks = [jobs[i : i + CHUNK_FILES] for i in range(0, len(jobs), CHUNK_FILES)]
    pool = mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=(settings, os.getpid()))
    try:
        pending: deque = deque()
        it = iter(chunks)
        for chunk in it:
            pending.append(pool.apply_async(_decode_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            results = pending.popleft().get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_decode_chunk, (nxt,)))
            yield from results
    finally:
        # Not Pool.terminate(): its result thread stops reading first, so a worker caught
        # writing a large result into the full pipe keeps the queue's lock, which terminate
        # then waits for, forever (seen on Ctrl+C). The chunks in flight (at most 2 * workers)
        # finish instead, and their results are dropped.
        pool.close()
        pool.join()


# The order of BatchWriter's rows (named, so the table's own column order does not matter).
CLIP_FIELDS = ("id, hash, source, segment, orig_rate, orig_channels, orig_format, duration, peak, rms_db, "
               "label, speaker, text, split, shard, offset, length, added, language")


class BatchWriter:
    """Collects decoded files and commits them: audio fsynced first, then rows in one transaction."""

    def __init__(self, con, shards, ratios: tuple[float, ...], next_id: int, known: set[str]):
        self.con, self.shards, self.ratios = con, shards, ratios
        self.known = known  # sources already in the catalog: re-decoded because they changed
        self.next_id = next_id
        self.clips: list[tuple] = []
        self.links: list[tuple[str, int]] = []
        self.sources: list[tuple] = []
        self.errors: list[tuple[str, str, float]] = []
        self.pending_hashes: dict[str, int] = {}
        self.stats = {"added": 0, "duplicates": 0, "errors": 0, "seconds": 0.0}
        self.error_list: list[tuple[str, str]] = []  # the first MAX_LISTED, for the summary
        self.last_commit = time.monotonic()

    def add(self, d: Decoded) -> None:
        job = d.job
        now = time.time()
        if d.error:
            self.errors.append((job.path, d.error, now))
            if len(self.error_list) < MAX_LISTED:
                self.error_list.append((job.path, d.error))
            self.stats["errors"] += 1
            if job.size >= 0:
                self.sources.append((job.path, job.size, job.mtime, 0, 0, d.error))
            return
        made = dup = 0
        for p in d.pieces:
            clip_id = self.pending_hashes.get(p.hash)
            if clip_id is None:
                row = self.con.execute("SELECT id FROM clips WHERE hash = ?", (p.hash,)).fetchone()
                clip_id = row[0] if row else None
            if clip_id is not None:
                dup += 1
            else:
                clip_id = self.next_id
                self.next_id += 1
                shard, offset, length = self.shards.append(p.pcm)
                self.clips.append((
                    clip_id, p.hash, job.path, p.segment, d.orig_rate, d.orig_channels, d.orig_format,
                    p.duration, p.peak, p.rms_db, job.label, job.speaker, job.text,
                    split_for(p.hash, self.ratios), shard, offset, length, now, job.language,
                ))
                self.pending_hashes[p.hash] = clip_id
                made += 1
                self.stats["seconds"] += p.duration
            self.links.append((job.path, clip_id))
        self.stats["added"] += made
        self.stats["duplicates"] += dup
        self.sources.append((job.path, job.size, job.mtime, made, dup, None))

    def due(self) -> bool:
        n = len(self.sources) + len(self.errors)
        return n >= COMMIT_FILES or (n and time.monotonic() - self.last_commit > COMMIT_SECONDS)

    def commit(self) -> None:
        if not (self.clips or self.sources or self.errors):
            return
        self.shards.sync()  # audio durable before any row points at it
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            # A changed source file: forget what it produced before, then drop orphaned clips.
            changed = [(s[0],) for s in self.sources if s[0] in self.known]
            old: set[int] = set()
            for (path,) in changed:
                old.update(r[0] for r in con.execute("SELECT clip FROM source_clips WHERE path = ?", (path,)))
            con.executemany("DELETE FROM source_clips WHERE path = ?", changed)
            con.executemany(f"INSERT INTO clips ({CLIP_FIELDS}) VALUES ({', '.join('?' * 19)})", self.clips)
            con.executemany("INSERT OR IGNORE INTO source_clips VALUES (?, ?)", self.links)
            con.executemany("INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?)", self.sources)
            con.executemany("DELETE FROM errors WHERE path = ?", [(s[0],) for s in self.sources if s[5] is None])
            con.executemany("INSERT OR REPLACE INTO errors VALUES (?,?,?)", self.errors)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('shard_ends', ?)", (json.dumps(self.shards.ends, sort_keys=True),)
            )
            con.executemany(
                "DELETE FROM clips WHERE id = ? AND NOT EXISTS (SELECT 1 FROM source_clips WHERE clip = ?)",
                [(i, i) for i in old],
            )
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:  # a full disk can end the transaction itself
                con.execute("ROLLBACK")
            raise
        self.clips, self.links, self.sources, self.errors = [], [], [], []
        self.pending_hashes.clear()
        self.last_commit = time.monotonic()


def progress_bar(total: int, enabled: bool | None):
    """A tqdm bar on stderr (files/s and ETA); off when stderr is not a terminal unless asked."""
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, unit="file", file=sys.stderr, disable=not enabled, dynamic_ncols=True, smoothing=0.1)
