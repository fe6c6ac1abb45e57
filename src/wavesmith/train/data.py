"""Batches for the engine: an endless, resumable stream of training crops on the device.

The order is a ``DistributedSampler`` over the train split (each process gets its own
share; with one process, all of it), reshuffled every epoch with ``set_epoch``. The
sampler here never ends: it walks epoch after epoch and yields ``(epoch, index)`` pairs,
and the dataset wrapper sets the crop epoch from the pair itself. So one DataLoader (with
persistent workers) serves the whole run, each item's random crop is a pure function of
``(seed, epoch, index)``, and the position ``(epoch, offset)`` saved in a checkpoint is all
a resumed run needs to draw exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from wavesmith.errors import WavesmithError
from wavesmith.train.distributed import Dist


class _EpochItems(Dataset):
    """A ClipDataset indexed by ``(epoch, index)``: the crop epoch travels with the index."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class EndlessSampler(Sampler):
    """``DistributedSampler`` epochs back to back, starting ``offset`` items into ``epoch``.

    An epoch shorter than one batch (a tiny split shared by many processes) is repeated
    until it fills a batch, so every epoch yields whole batches.
    """

    def __init__(self, size: int, d: Dist, batch_size: int, seed: int, epoch: int = 0, offset: int = 0):
        self.inner = DistributedSampler(range(size), num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.epoch, self.offset = epoch, offset

    def epoch_indices(self, epoch: int) -> list[int]:
        self.inner.set_epoch(epoch)
        idx = list(self.inner)
        while len(idx) < self.batch_size:
            idx += idx
        return idx[: len(idx) - len(idx) % self.batch_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = self.epoch, self.offset
        while True:
            for i in self.epoch_indices(epoch)[offset:]:
                yield epoch, i
            epoch, offset = epoch + 1, 0


class Batches:
    """``next_batch()`` for ``train_step``: the next training batch, already on ``device``.

    ``position`` is ``(epoch, offset)`` of the next item this process will draw; it counts
    what was handed to the model, not what the loader prefetched.
    """

    def __init__(self, dataset, d: Dist, batch_size: int, workers: int, seed: int, device: torch.device,
                 epoch: int = 0, offset: int = 0):
        if len(dataset) == 0:
            raise WavesmithError(f"the {dataset.split!r} split of the database is empty; add clips first")
        self.sampler = EndlessSampler(len(dataset), d, batch_size, seed, epoch, offset)
        self.batch_size, self.device = batch_size, device
        self.epoch, self.offset = epoch, offset
        self.drawn = 0  # clips handed out by this process since start
        self._per_epoch = len(self.sampler.epoch_indices(epoch))
        # Its own generator, so building the loader draws nothing from the global RNG
        # (a resumed run builds it at a different point of the stream).
        gen = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            _EpochItems(dataset), batch_size=batch_size, sampler=self.sampler, num_workers=workers,
            pin_memory=device.type == "cuda", drop_last=True, persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None, generator=gen,
            worker_init_fn=_ignore_sigint if workers > 0 else None,
        )
        self._it = iter(self.loader)

    @property
    def position(self) -> tuple[int, int]:
        return self.epoch, self.offset

    def __call__(self) -> dict:
        batch = next(self._it)
        self.offset += self.batch_size
        if self.offset >= self._per_epoch:
            self.epoch, self.offset = self.epoch + 1, 0
            self._per_epoch = len(self.sampler.epoch_indices(self.epoch))
        self.drawn += self.batch_size
        return to_device(batch, self.device)


def to_device(batch: dict, device: torch.device) -> dict:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def valid_batches(dataset, batch_size: int, count: int, device: torch.device) -> Iterator[dict]:
    """The first ``count`` batches of a split, cropped from each clip's start (the same every time)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    for i, batch in enumerate(loader):
        if i >= count:
            break
        yield to_device(batch, device)


def _ignore_sigint(_worker_id: int) -> None:
    # Ctrl+C reaches the whole process group; workers must keep serving until the main
    # process has finished its step and saved, so they leave the signal to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
