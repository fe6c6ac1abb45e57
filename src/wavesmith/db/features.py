"""Analysis features stored beside the PCM: f0 and loudness, computed once per clip.

A model that plays f0 and loudness contours (DDSP) would otherwise track pitch in every
training step, which costs more than the step. :func:`load_or_compute` analyses each clip
of the database once (:mod:`wavesmith.analysis`) and keeps the contours in
``DB/features/<spec key>.npz``; later runs read them. The file is keyed by the clip set
(the database fingerprint), so adding clips recomputes it; it is written atomically.

Frame ``i`` of a clip is centred on sample ``i * hop`` with ``hop = sample_rate //
frame_rate``, the grid :class:`wavesmith.db.ClipDataset` crops along with the audio.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import numpy as np

from wavesmith import analysis as AN
from wavesmith.analysis import FeatureSpec
from wavesmith.files import write_bytes


@dataclass
class Features:
    """Contours of every clip, flat: clip ``clip_ids[i]`` owns frames ``starts[i]:starts[i + 1]``."""

    clip_ids: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n + 1,) int64
    f0: np.ndarray  # (frames,) float32 Hz, 0 where unvoiced
    loudness: np.ndarray  # (frames,) float32 dB (A-weighted)


def load_or_compute(db, spec: FeatureSpec, progress: bool = True) -> Features:
    """The features of every clip of ``db`` (a :class:`wavesmith.db.Database`), computed if not stored."""
    path = db.path / "features" / f"{spec.key}.npz"
    fingerprint = db.fingerprint()
    if path.exists():
        with np.load(path) as z:
            if str(z["fingerprint"]) == fingerprint:
                return Features(z["clip_ids"], z["starts"], z["f0"], z["loudness"])
    clips = db.clips()
    if progress:
        print(f"wavesmith: analysing f0 and loudness of {len(clips)} clips once ({spec.tracker}, "
              f"{spec.frame_rate} frames/s) into {path}", file=sys.stderr)
    f0s, lds = [], []
    for c in clips:
        f0, ld = AN.contours(db.audio(c.id), db.sample_rate, spec)
        f0s.append(f0)
        lds.append(ld)
    starts = np.concatenate([[0], np.cumsum([len(f) for f in f0s])]).astype(np.int64)
    feats = Features(np.array([c.id for c in clips], dtype=np.int64), starts,
                     np.concatenate(f0s) if f0s else np.zeros(0, np.float32),
                     np.concatenate(lds) if lds else np.zeros(0, np.float32))
    buf = io.BytesIO()
    np.savez(buf, fingerprint=np.array(fingerprint), clip_ids=feats.clip_ids, starts=feats.starts, f0=feats.f0,
             loudness=feats.loudness)
    write_bytes(path, buf.getvalue())
    return feats
