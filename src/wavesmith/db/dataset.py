"""Training data: fixed-length crops of the stored clips as a PyTorch ``Dataset``.

Samples are read straight from the memory-mapped store into the output tensor (no file
reads, no intermediate buffers). The dataset holds only small numpy arrays and the
database path, so it pickles cheaply into DataLoader workers and DDP ranks; each process
maps the shard files itself on first use.

Random crops are a pure function of ``(seed, epoch, index)``: two runs, or a resumed run,
see exactly the same crops whatever the number of workers or ranks.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from wavesmith.db.store import ShardReader
from wavesmith.seeds import mix64


class ClipDataset(torch.utils.data.Dataset):
    """Crops of ``crop_samples`` frames from the clips of one split.

    Items are dicts: ``audio`` float32 ``(channels, crop)`` (zero past a clip's end),
    ``mask`` float32 ``(crop,)`` (1 on real samples), ``label``, ``speaker`` and ``language``
    int64 scalars (index into ``db.labels`` / ``db.speakers`` / ``db.languages``, -1 if none),
    ``text`` str ("" if none), ``length`` int64 (real samples in the crop) and ``orig_rate``
    int64 (the clip's sample rate before it was stored: above half of it the audio holds
    nothing the recording had). With ``train=True`` the crop
    start is random (derived from ``seed``, the epoch and the index; see :meth:`set_epoch`);
    otherwise every clip is cropped from its start. ``crop_samples=None`` gives whole clips.

    With ``features`` (a :class:`wavesmith.analysis.FeatureSpec`), items also hold the
    crop's ``f0`` and ``loudness`` frames (float32 ``(crop // hop + 1,)``, unvoiced and -120 dB
    past the clip's end), read from the contours stored once per clip; crops then start on
    a frame boundary so frame ``i`` stays centred on sample ``i * hop``.
    """

    def __init__(
        self,
        db,
        split: str | None = "train",
        crop_samples: int | None = 16384,
        train: bool = True,
        seed: int = 0,
        features=None,
    ):
        from wavesmith.db.database import Database

        owned = not isinstance(db, Database)
        if owned:
            db = Database.open(db)
        try:
            clips = db.clips(split)
            self.labels: list[str] = db.labels
            self.speakers: list[str] = db.speakers
            self.languages: list[str] = db.languages
            self.db_path = db.path
            self.sample_rate = db.sample_rate
            self.channels = db.channels
            if features is not None:
                from wavesmith.db.features import load_or_compute

                stored = load_or_compute(db, features)
        finally:
            if owned:
                db.close()
        if crop_samples is not None and int(crop_samples) <= 0:
            raise ValueError(f"crop_samples must be positive, not {crop_samples}")
        self.split = split
        self.crop_samples = None if crop_samples is None else int(crop_samples)
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        label_ids = {name: i for i, name in enumerate(self.labels)}
        speaker_ids = {name: i for i, name in enumerate(self.speakers)}
        language_ids = {name: i for i, name in enumerate(self.languages)}
        self.clip_ids = np.array([c.id for c in clips], dtype=np.int64)
        self._loc = np.array([(c.shard, c.offset, c.length) for c in clips], dtype=np.int64).reshape(-1, 3)
        self._label = np.array([label_ids.get(c.label, -1) for c in clips], dtype=np.int64)
        self._speaker = np.array([speaker_ids.get(c.speaker, -1) for c in clips], dtype=np.int64)
        self._language = np.array([language_ids.get(c.language, -1) for c in clips], dtype=np.int64)
        self._orig_rate = np.array([c.orig_rate for c in clips], dtype=np.int64)
        self._text = [c.text or "" for c in clips]
        self._reader = ShardReader(self.db_path, self.channels)
        self._pid = os.getpid()
        self._hop = 1
        if features is not None:
            self._hop = self.sample_rate // features.frame_rate
            where = np.searchsorted(stored.clip_ids, self.clip_ids)
            self._feat_start = stored.starts[where]
            self._feat_len = stored.starts[where + 1] - self._feat_start
            self._f0, self._loudness = stored.f0, stored.loudness
        self.features = features

    def __len__(self) -> int:
        return len(self.clip_ids)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops items give (call it like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def crop_start(self, index: int) -> int:
        """Frame where item ``index``'s crop starts in its clip (this epoch)."""
        length = self._loc.item(index, 2)
        crop = self.crop_samples
        if crop is None or not self.train or length <= crop:
            return 0
        start = mix64(self.seed, self.epoch, index) % (length - crop + 1)
        return start - start % self._hop

    def __getitem__(self, index) -> dict:
        """One item, or a whole batch when ``index`` is a sequence of indices (see :meth:`batch`)."""
        if not isinstance(index, (int, np.integer)):
            return self.batch(index)
        index = int(index)
        if index < 0:
            index += len(self)
        reader = self._local_reader()
        shard, offset, length = self._loc[index].tolist()
        crop = length if self.crop_samples is None else self.crop_samples
        n = min(length, crop)
        pcm = reader.view(shard, offset, self.crop_start(index), n)
        audio = np.zeros((self.channels, crop), dtype=np.float32)
        np.multiply(pcm.T, np.float32(1.0 / 32768.0), out=audio[:, :n])
        mask = np.zeros(crop, dtype=np.float32)
        mask[:n] = 1.0
        item = {
            "audio": torch.from_numpy(audio),
            "mask": torch.from_numpy(mask),
            # scalar_tensor: a third of torch.tensor's overhead, which matters at 20k items/s
            "label": torch.scalar_tensor(self._label.item(index), dtype=torch.int64),
            "speaker": torch.scalar_tensor(self._speaker.item(index), dtype=torch.int64),
            "language": torch.scalar_tensor(self._language.item(index), dtype=torch.int64),
            "text": self._text[index],
            "length": torch.scalar_tensor(n, dtype=torch.int64),
            "orig_rate": torch.scalar_tensor(self._orig_rate.item(index), dtype=torch.int64),
        }
        if self.features is not None:
            f0, ld = self._crop_features([index], crop)
            item["f0"], item["loudness"] = torch.from_numpy(f0[0]), torch.from_numpy(ld[0])
        return item

    def _crop_features(self, idx: list[int], crop: int) -> tuple[np.ndarray, np.ndarray]:
        """f0 and loudness frames of each item's crop: float32 ``(len(idx), crop // hop + 1)``."""
        frames = crop // self._hop + 1
        f0 = np.zeros((len(idx), frames), dtype=np.float32)
        ld = np.full((len(idx), frames), -120.0, dtype=np.float32)
        for row, index in enumerate(idx):
            first = self.crop_start(index) // self._hop
            n = max(0, min(frames, int(self._feat_len[index]) - first))
            lo = int(self._feat_start[index]) + first
            f0[row, :n] = self._f0[lo:lo + n]
            ld[row, :n] = self._loudness[lo:lo + n]
        return f0, ld

    def batch(self, indices) -> dict:
        """Items ``indices`` already collated: the batch ``DataLoader`` would give, built in place.

        Skips per-item tensors and the stacking copy of the default collate. Use it with
        ``DataLoader(ds, batch_size=None, sampler=BatchSampler(sampler, B, drop_last))``.
        """
        if self.crop_samples is None:
            raise ValueError("batches need a fixed crop_samples")
        idx = [int(i) + (len(self) if int(i) < 0 else 0) for i in indices]
        reader = self._local_reader()
        crop = self.crop_samples
        audio = np.zeros((len(idx), self.channels, crop), dtype=np.float32)
        lengths = np.empty(len(idx), dtype=np.int64)
        scale = np.float32(1.0 / 32768.0)
        for row, index in enumerate(idx):
            shard, offset, length = self._loc[index].tolist()
            n = min(length, crop)
            lengths[row] = n
            pcm = reader.view(shard, offset, self.crop_start(index), n)
            np.multiply(pcm.T, scale, out=audio[row, :, :n])
        mask = (np.arange(crop)[None, :] < lengths[:, None]).astype(np.float32)
        out = {
            "audio": torch.from_numpy(audio),
            "mask": torch.from_numpy(mask),
            "label": torch.from_numpy(self._label[idx]),
            "speaker": torch.from_numpy(self._speaker[idx]),
            "language": torch.from_numpy(self._language[idx]),
            "text": [self._text[i] for i in idx],
            "length": torch.from_numpy(lengths),
            "orig_rate": torch.from_numpy(self._orig_rate[idx]),
        }
        if self.features is not None:
            f0, ld = self._crop_features(idx, crop)
            out["f0"], out["loudness"] = torch.from_numpy(f0), torch.from_numpy(ld)
        return out

    def _local_reader(self) -> ShardReader:
        if os.getpid() != self._pid:  # a forked worker must not share the parent's maps
            self._reader = ShardReader(self.db_path, self.channels)
            self._pid = os.getpid()
        return self._reader

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_reader"] = ShardReader(self.db_path, self.channels)  # no memory maps travel
        return state

    def __repr__(self) -> str:
        return (
            f"ClipDataset({str(self.db_path)!r}, split={self.split!r}, clips={len(self)}, "
            f"crop_samples={self.crop_samples}, train={self.train}, seed={self.seed})"
        )
