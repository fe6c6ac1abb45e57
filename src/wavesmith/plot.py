"""Pictures without a plotting library: spectrogram PNGs from numpy (zlib + struct).

Training previews and evaluation reports both need spectrogram images; matplotlib would be
a heavy dependency for that alone.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import torch

from wavesmith import audio as A

# Anchor colours of a perceptually ordered dark-to-bright map (black, purple, red, yellow, white).
_ANCHORS = np.array(
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
    dtype=np.float64,
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 (shape ``values.shape + (3,)``)."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_ANCHORS) - 1)
    i = np.minimum(v.astype(int), len(_ANCHORS) - 2)
    f = (v - i)[..., None]
    return (_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 array as PNG."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def spectrogram_png(
    audio: np.ndarray | torch.Tensor, sample_rate: int, height: int = 128, dynamic_range_db: float = 80.0
) -> bytes:
    """A log-mel spectrogram of the first channel as PNG bytes (low frequencies at the bottom)."""
    return png_bytes(spectrogram_rgb(audio, sample_rate, height, dynamic_range_db))


def spectrogram_rgb(
    audio: np.ndarray | torch.Tensor, sample_rate: int, height: int = 128, dynamic_range_db: float = 80.0
) -> np.ndarray:
    """The picture of :func:`spectrogram_png` as ``(height, frames, 3)`` uint8 RGB."""
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    x = x.reshape(-1, x.shape[-1])[0]
    n_fft = 1024 if sample_rate > 24000 else 512
    mel = A.log_mel(x, sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=height).numpy()
    db = mel * (20.0 / np.log(10.0))
    top = db.max() if db.size else 0.0
    img = (db - (top - dynamic_range_db)) / dynamic_range_db
    return colormap(img[::-1])
