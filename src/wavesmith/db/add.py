"""The body of :meth:`Database.add`: skip what is known, decode the rest, commit in batches."""

from __future__ import annotations

import errno
import math
import os
import sqlite3
import time
from pathlib import Path

from wavesmith.db.decode import Settings
from wavesmith.db.ingest import BatchWriter, StopRequest, collect_jobs, decoded_stream, progress_bar
from wavesmith.errors import WavesmithError

MAX_WORKERS = 1024


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def add(
    db,
    sources: list,
    manifest=None,
    label_from: str = "none",
    trim_silence: bool = False,
    split_long: float | None = None,
    min_duration: float = 0.0,
    max_duration: float | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    wait: float = 600.0,
) -> dict:
    t0 = time.monotonic()
    if not sources and manifest is None:
        raise WavesmithError("nothing to add: give folders or files, or --manifest")
    if split_long is not None and not 0 < split_long < math.inf:
        raise WavesmithError(f"--split-long must be a positive number of seconds, not {split_long}")
    if not 0 <= min_duration < math.inf or (max_duration is not None and not 0 < max_duration < math.inf):
        raise WavesmithError("--min-duration must be >= 0 and --max-duration > 0 (finite numbers of seconds)")
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise WavesmithError(f"--workers must be between 1 and {MAX_WORKERS} (0: all cores), not {workers}")
    if max_duration is not None and max_duration < min_duration:
        raise WavesmithError(f"--max-duration {max_duration} is below --min-duration {min_duration}")
    settings = Settings(db.sample_rate, db.channels, trim_silence, split_long, min_duration, max_duration)
    workers = default_workers() if not workers else max(1, int(workers))
    jobs, ignored = collect_jobs([Path(s) for s in sources], manifest, label_from)

    try:
        stats, stop = _add_jobs(db, jobs, settings, workers, progress, wait)
    except (OSError, sqlite3.OperationalError) as e:
        if not _disk_full(e):
            raise
        raise WavesmithError(f"the disk is full: stopped adding to {db.path}; the clips committed so far are "
                             "intact: free some space and run the same `db add` again to continue") from None
    if stop.requested:
        raise KeyboardInterrupt  # after committing: rerunning the same add completes it
    elapsed = time.monotonic() - t0
    return {
        "files": len(jobs),
        "decoded": stats["decoded"],
        "unchanged": len(jobs) - stats["decoded"],
        "relabelled": stats["relabelled"],
        "added": stats["added"],
        "duplicates": stats["duplicates"],
        "errors": stats["errors"],
        "ignored_not_audio": ignored,
        "added_hours": stats["seconds"] / 3600.0,
        "clips": len(db),
        "seconds": round(elapsed, 3),
        "files_per_second": round(stats["decoded"] / elapsed, 1) if elapsed > 0 else 0.0,
        "error_list": stats["error_list"],
    }


def _disk_full(e: BaseException) -> bool:
    """ENOSPC or a quota from the store, or SQLite's SQLITE_FULL from the catalog."""
    if isinstance(e, sqlite3.OperationalError):
        return getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(e)
    return getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def _add_jobs(db, jobs, settings, workers, progress, wait):
    with db.writing(wait) as writing:
        con, shards = writing.catalog, writing.shards
        known = {p: (size, mtime) for p, size, mtime in con.execute("SELECT path, size, mtime FROM sources")}
        todo = [j for j in jobs if j.error or known.get(j.path) != (j.size, j.mtime)]
        relabelled = _update_metadata(con, [j for j in jobs if not j.error and known.get(j.path) == (j.size, j.mtime)])
        next_id = (con.execute("SELECT MAX(id) FROM clips").fetchone()[0] or 0) + 1
        batch = BatchWriter(con, shards, db.split_ratios, next_id, set(known))
        bar = progress_bar(len(todo), progress)
        stream = decoded_stream(todo, settings, workers)
        try:
            with StopRequest() as stop:
                for decoded in stream:
                    batch.add(decoded)
                    bar.update(1)
                    if batch.due():
                        batch.commit()
                    if stop.requested:
                        break
        finally:
            # On Ctrl+C what was decoded so far is still committed; on SIGKILL the next
            # writer truncates the uncommitted audio (see ShardWriter).
            stream.close()  # stops the worker pool now (after its chunks in flight), not at GC
            batch.commit()
            bar.close()
    stats = dict(batch.stats, decoded=len(todo), relabelled=relabelled, error_list=batch.error_list)
    return stats, stop


def _update_metadata(con, jobs) -> int:
    """Give unchanged sources the label/speaker/text/language this run provides (without decoding); count changes.

    Only fields the run sets are written, so re-adding a folder without ``--label-from``
    or a manifest keeps the labels it had. An error an earlier run recorded for one of
    these sources (a bad manifest row since corrected) is forgotten: it is stored and fine.
    """
    fields = ("label", "speaker", "text", "language")
    rows = [(j.label, j.speaker, j.text, j.language, j.path) for j in jobs
            if (j.label, j.speaker, j.text, j.language) != (None, None, None, None)]
    stale = [(p,) for (p,) in con.execute("SELECT path FROM errors")]
    stale = list({(j.path,) for j in jobs} & set(stale))
    if not rows and not stale:
        return 0
    sets = ", ".join(f"{f} = COALESCE(?{i}, {f})" for i, f in enumerate(fields, 1))
    differs = " OR ".join(f"{f} IS NOT COALESCE(?{i}, {f})" for i, f in enumerate(fields, 1))
    con.execute("BEGIN IMMEDIATE")
    try:
        before = con.total_changes
        con.executemany(f"UPDATE clips SET {sets} WHERE source = ?5 AND ({differs})", rows)
        changed = con.total_changes - before
        con.executemany("DELETE FROM errors WHERE path = ?", stale)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return changed
