"""numpy's BLAS thread count, set for the work at hand and, on a shared machine, measured.

WaveNet's numpy generation (:mod:`wavesmith.models.wavenet_fast`) makes one small matrix
product after another: for one stream a second BLAS thread only adds synchronisation, for
a batch of streams it can help, and on a machine busy with other processes a spinning
second thread can be ten times slower. So one stream runs on one thread, and a batch
times a few steps with each candidate count and keeps the fastest (:class:`ThreadTrial`).
numpy has no API for its thread count; the scipy-openblas library it bundles has, reached
through ctypes.
"""

from __future__ import annotations

import ctypes
import glob
import os
import time

import numpy as np


class ThreadTrial:
    """Times ``STEPS`` steps with each candidate BLAS thread count, then keeps the fastest."""

    STEPS = 48  # steps timed per candidate thread count

    def __init__(self, candidates: tuple[int, ...]):
        self.candidates, self.times = list(candidates), []
        if self.candidates:
            set_blas_threads(self.candidates[0])

    def tick(self, t: int) -> None:
        if not self.candidates or t % self.STEPS or t > self.STEPS * len(self.candidates):
            return
        now = time.perf_counter()
        if t:
            self.times.append(now - self.start)
        self.start = now
        if len(self.times) < len(self.candidates):
            set_blas_threads(self.candidates[len(self.times)])
        else:
            set_blas_threads(self.candidates[int(np.argmin(self.times))])


def set_blas_threads(n: int) -> int | None:
    """Set numpy's OpenBLAS thread count (returns the previous one, None if unavailable).

    One thread is fastest for one stream (products too small to split); more help batches.
    """
    lib = _openblas()
    if lib is None:
        return None
    old = lib.scipy_openblas_get_num_threads64_()
    lib.scipy_openblas_set_num_threads64_(int(n))
    return int(old)


_LIB: list = []


def _openblas():
    if not _LIB:
        lib = None
        pattern = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs", "libscipy_openblas*")
        for path in glob.glob(pattern):
            try:
                cand = ctypes.CDLL(path)
                cand.scipy_openblas_get_num_threads64_  # noqa: B018 - probe the symbol
                lib = cand
            except (OSError, AttributeError):
                continue
        _LIB.append(lib)
    return _LIB[0]
