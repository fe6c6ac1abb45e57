"""The audio store: append-only int16 PCM shard files read through memory maps.

``DB/audio/shard-00000.pcm`` holds clips back to back as interleaved int16 frames
(``frames x channels``); the catalog keeps each clip's shard, offset and length in frames.
A new shard starts once one passes :data:`SHARD_BYTES`, so no file grows without bound.

Bytes past the last offset the catalog knows are garbage from an interrupted writer:
the next writer truncates them (:meth:`ShardWriter.__init__`), readers never look there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wavesmith.errors import WavesmithError

SHARD_BYTES = 2 * 1024**3  # start a new shard past ~2 GB
SAMPLE_BYTES = 2  # int16


def shard_path(db_dir: Path, shard: int) -> Path:
    return db_dir / "audio" / f"shard-{shard:05d}.pcm"


class ShardReader:
    """Zero-copy views of stored clips. Opens each shard's memory map lazily, per process.

    Pickling drops the maps (a DataLoader worker or a DDP rank maps the files itself).
    """

    def __init__(self, db_dir: Path, channels: int):
        self.db_dir = Path(db_dir)
        self.channels = channels
        self._maps: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"db_dir": self.db_dir, "channels": self.channels, "_maps": {}}

    def _map(self, shard: int, end_sample: int) -> np.ndarray:
        mm = self._maps.get(shard)
        if mm is None or mm.shape[0] < end_sample:  # first use, or the shard grew since
            path = shard_path(self.db_dir, shard)
            if not path.is_file():
                raise WavesmithError(f"{path} is missing: the database is damaged (see `wavesmith db verify`)")
            if path.stat().st_size < end_sample * SAMPLE_BYTES:
                raise WavesmithError(f"{path} is shorter than the catalog says: the database is damaged "
                                     "(see `wavesmith db verify`)")
            mm = np.memmap(path, dtype=np.int16, mode="r")
            self._maps[shard] = mm
        return mm

    def view(self, shard: int, offset: int, start: int, frames: int) -> np.ndarray:
        """int16 ``(frames, channels)`` starting ``start`` frames into the clip at ``offset``."""
        c = self.channels
        lo = (offset + start) * c
        hi = lo + frames * c
        return self._map(shard, hi)[lo:hi].reshape(frames, c)

    def read(self, shard: int, offset: int, length: int) -> np.ndarray:
        """A whole clip as float32 ``(channels, frames)`` in [-1, 1)."""
        x = self.view(shard, offset, 0, length)
        return np.ascontiguousarray(x.T, dtype=np.float32) * np.float32(1.0 / 32768.0)

    def close(self) -> None:
        self._maps.clear()


class ShardWriter:
    """Appends clips to the last shard. Only one exists at a time (the writer holds ``DB/.lock``).

    ``committed`` maps each shard to the frame count the catalog accounts for (its
    high-water mark, which only grows: audio of pruned clips stays until a compaction, so a
    reader holding an old clip list never maps truncated bytes); anything beyond it on
    disk is cut off here, so interrupted appends leave no trace. :attr:`ends` is the map
    to commit with the rows of the appended clips.
    """

    def __init__(self, db_dir: Path, channels: int, committed: dict[int, int], shard_bytes: int = SHARD_BYTES):
        self.db_dir = Path(db_dir)
        self.channels = channels
        self.shard_bytes = shard_bytes
        (self.db_dir / "audio").mkdir(parents=True, exist_ok=True)
        self.shard = max(committed) if committed else 0
        for path in sorted((self.db_dir / "audio").glob("shard-*.pcm")):
            n = int(path.stem.split("-")[1])
            keep = committed.get(n, 0) * channels * SAMPLE_BYTES
            if path.stat().st_size > keep:
                if keep == 0 and n > self.shard:
                    path.unlink()  # a shard started by a writer that never committed to it
                    continue
                with open(path, "r+b") as f:
                    f.truncate(keep)
                    os.fsync(f.fileno())
        self._file = open(shard_path(self.db_dir, self.shard), "ab")
        self.frames = self._file.tell() // (channels * SAMPLE_BYTES)
        self.ends = {int(k): int(v) for k, v in committed.items()}

    def append(self, pcm: np.ndarray) -> tuple[int, int, int]:
        """Append int16 ``(frames, channels)``; returns ``(shard, offset, length)`` in frames."""
        data = np.ascontiguousarray(pcm, dtype=np.int16)
        length = data.shape[0]
        if self.frames > 0 and (self.frames + length) * self.channels * SAMPLE_BYTES > self.shard_bytes:
            self.sync()
            self._file.close()
            self.shard += 1
            self._file = open(shard_path(self.db_dir, self.shard), "ab")
            self.frames = 0
        self._file.write(data.tobytes())
        offset = self.frames
        self.frames += length
        self.ends[self.shard] = self.frames
        return self.shard, offset, length

    def sync(self) -> None:
        """Make appended audio durable; call before committing the rows that point at it."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()
