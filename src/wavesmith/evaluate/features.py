"""Per-clip and per-frame features for evaluation, batched in torch (no per-clip Python loops).

Everything here takes a list of float32 ``(channels, samples)`` clips of varying length at
one sample rate. Clips are sorted by length and processed in batches padded to the longest
clip of the batch; a frame mask keeps padding out of every statistic. A batch holds at most
:data:`BATCH_SAMPLES` samples with its padding, and files are read up to :data:`MAX_SECONDS`,
so memory is bounded by the batch, never by the longest clip.

What is measured (on the mean of the channels):

- log-mel frames (64 bands, windows of about 64 ms with a quarter-window hop):
  their mean and covariance feed the log-mel Frechet distance;
- a per-clip embedding (mean and standard deviation of the log-mel frames), used to find
  nearest neighbours for the memorization check;
- loudness (RMS in dBFS), the duration of non-silent audio, the spectral centroid of the
  non-silent frames, and a YIN fundamental frequency where the clip is pitched.

A clip is measured up to the end of its sound (its last frame louder than -60 dBFS and within
50 dB of its loudest) in the log-mel frames and the loudness: trailing silence, such as the
padding that keeps a watermarked one-shot at 1 s, does not count there. Silence before the
sound counts. The embedding takes every frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wavesmith import audio as A
from wavesmith.errors import WavesmithError

N_MELS = 64
SILENCE_DB = -60.0  # frames quieter than this (dBFS), or 50 dB under the clip's loudest, are silent
RELATIVE_SILENCE_DB = 50.0
YIN_THRESHOLD = 0.15  # de Cheveigne & Kawahara 2002, step 4: absolute threshold on the CMND
F0_RANGE = (50.0, 1000.0)  # Hz searched for a fundamental
EMBED_RANGE_DB = 60.0  # dynamic range of the clip embedding (dB under the clip's loudest mel band)
PITCHED_FRACTION = 0.5  # a clip is pitched when this share of its non-silent frames is voiced
MAX_SECONDS = 30.0  # evaluation reads this much of each file or clip (features of sounds, not of hours)
BATCH_SAMPLES = 2**21  # samples per feature batch, padding included (about 130 s at 16 kHz)


@dataclass
class Features:
    """Features of a set of clips (arrays indexed by clip, except ``frames``)."""

    frames: np.ndarray  # (n_frames_total, N_MELS) log-mel frames (padding excluded), float64
    embedding: np.ndarray  # (n, 2 * N_MELS) mean and std of each clip's log-mel frames
    loudness: np.ndarray  # (n,) dBFS
    duration: np.ndarray  # (n,) seconds of non-silent audio
    centroid: np.ndarray  # (n,) Hz, NaN for a silent clip
    f0: np.ndarray  # (n,) Hz, NaN where not pitched
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loudness)


def fft_size(sample_rate: int) -> int:
    """A power of two near 64 ms, so frames mean the same time span at any sample rate."""
    return 2 ** int(round(math.log2(0.064 * sample_rate)))


def extract(clips: list[np.ndarray], sample_rate: int, batch_size: int = 64, max_frames_kept: int = 10000,
            seed: int = 0) -> Features:
    """Compute :class:`Features` of ``clips`` (float32 ``(C, T)`` each, at ``sample_rate``)."""
    n = len(clips)
    n_fft = fft_size(sample_rate)
    hop = n_fft // 4
    emb = np.zeros((n, 2 * N_MELS))
    loud = np.zeros(n)
    dur = np.zeros(n)
    cen = np.full(n, np.nan)
    f0 = np.full(n, np.nan)
    frames = []
    lengths = np.array([c.shape[-1] for c in clips])
    order = np.argsort(lengths, kind="stable")
    window = torch.hann_window(n_fft)
    fb = A.mel_filterbank(sample_rate, n_fft, N_MELS)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    with torch.inference_mode():
        for idx in _batches(lengths[order], batch_size, max(BATCH_SAMPLES, n_fft)):
            idx = order[idx]
            t_max = max(int(lengths[idx].max()), n_fft)
            x = torch.zeros(len(idx), t_max)
            for row, i in enumerate(idx):
                c = np.asarray(clips[i], dtype=np.float32)
                x[row, : c.shape[-1]] = torch.from_numpy(c.reshape(-1, c.shape[-1]).mean(axis=0))
            n_valid = torch.as_tensor(np.maximum(lengths[idx] // hop, 1))
            spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True).abs() ** 2
            spec = spec[..., : int(n_valid.max())]  # (B, F, frames)
            valid = torch.arange(spec.shape[-1])[None] < n_valid[:, None]
            # Frame power in dBFS (a full-scale sine reads about -3 dB); Parseval with the window's energy.
            power = spec.sum(1) * 2 / (window.pow(2).sum() * n_fft)
            frame_db = 10 * torch.log10(power.clamp_min(1e-12))
            top = torch.where(valid, frame_db, torch.tensor(-1e9)).amax(1, keepdim=True)
            loud_mask = valid & (frame_db > SILENCE_DB) & (frame_db > top - RELATIVE_SILENCE_DB)
            # A clip's sound ends with its last non-silent frame: trailing silence is padding (a
            # watermarked one-shot keeps 1 s however short its hit; a sample file ends with its
            # sound), so the frame statistics and the loudness stop there. Leading silence stays:
            # an onset's placement is part of the sound. A clip with no sound keeps its length
            # (the silence calibration). The embedding keeps every frame: a hard end would make
            # a slightly changed copy one frame shorter than its original, and the copy unseen.
            last = torch.where(loud_mask, torch.arange(spec.shape[-1])[None], -1).amax(1)
            n_sound = torch.where(last >= 0, last + 1, n_valid)
            sound = torch.arange(spec.shape[-1])[None] < n_sound[:, None]
            mel = torch.log(torch.clamp(fb @ spec.sqrt(), min=1e-5)).transpose(1, 2)  # (B, frames, mels)
            # Embedding over all valid frames: silence and its placement are part of a clip's identity.
            # 60 dB of dynamic range under the clip's loudest band: faint noise (dither, a model's
            # hiss) must not move a copy of a training clip away from its original.
            w = valid.float()[..., None]
            top_mel = torch.where(valid[..., None], mel, torch.tensor(-1e9)).amax((1, 2), keepdim=True)
            em = torch.maximum(mel, top_mel - EMBED_RANGE_DB / 20 * math.log(10))
            mean = (em * w).sum(1) / w.sum(1)
            std = (((em - mean[:, None]) ** 2 * w).sum(1) / w.sum(1)).sqrt()
            emb[idx] = torch.cat([mean, std], 1).double().numpy()
            ends = torch.minimum(torch.as_tensor(lengths[idx]), n_sound * hop).clamp_min(1)
            sq = (x.double() ** 2 * (torch.arange(x.shape[-1])[None] < ends[:, None])).sum(1) / ends
            loud[idx] = (10 * torch.log10(sq.clamp_min(1e-12))).numpy()
            dur[idx] = (loud_mask.sum(1) * hop / sample_rate).numpy()
            lm = loud_mask.float()
            cen_b = ((spec * freqs[None, :, None]).sum(1) / spec.sum(1).clamp_min(1e-20) * lm).sum(1) / lm.sum(1)
            cen[idx] = torch.where(lm.sum(1) > 0, cen_b, torch.tensor(float("nan"))).double().numpy()
            f0[idx] = _yin_clip_f0(x, lengths[idx], sample_rate, n_fft // 2, hop, loud_mask)
            frames.append(mel[sound].double().numpy())
    frames = np.concatenate(frames) if frames else np.zeros((0, N_MELS))
    if len(frames) > max_frames_kept:  # covariance of a random subset: same statistics, bounded cost
        frames = frames[np.random.default_rng(seed).choice(len(frames), max_frames_kept, replace=False)]
    return Features(frames, emb, loud, dur, cen, f0)


def _batches(sorted_lengths: np.ndarray, batch_size: int, budget: int) -> list[slice]:
    """Runs of clips (sorted by length) whose padded size stays within ``budget`` samples."""
    out, start = [], 0
    while start < len(sorted_lengths):
        end = start + 1
        while end < len(sorted_lengths) and end - start < batch_size and \
                (end + 1 - start) * sorted_lengths[end] <= budget:
            end += 1
        out.append(slice(start, end))
        start = end
    return out


def _yin_clip_f0(x: torch.Tensor, lengths: np.ndarray, sample_rate: int, win: int, hop: int,
                 loud_mask: torch.Tensor) -> np.ndarray:
    """Median YIN f0 of each clip's voiced frames, NaN for clips that are not mostly voiced.

    YIN (de Cheveigne & Kawahara 2002): difference function via autocorrelation (eq. 7),
    cumulative-mean normalisation (eq. 8), then the first dip under an absolute threshold.
    Frames are taken on the same hop grid as the spectrogram, starting at each frame's centre.
    """
    b = x.shape[0]
    padded = torch.nn.functional.pad(x, (0, 2 * win))
    # Every other spectrogram frame is enough for a clip's median f0, and halves the cost;
    # only non-silent frames are analysed (padding and decay tails are most of a drum batch).
    loud_mask = loud_mask[:, ::2]
    fr = padded.unfold(1, 2 * win, 2 * hop)[:, : loud_mask.shape[1]][loud_mask]  # (N, 2W)
    out = np.full(b, np.nan)
    if len(fr) == 0:
        return out
    fr = fr - fr.mean(-1, keepdim=True)
    tau_min = max(2, int(sample_rate / F0_RANGE[1]))
    tau_max = min(win - 1, int(sample_rate / F0_RANGE[0]))
    # d(tau) = sum_j (x_j - x_{j+tau})^2 over j < W, with energies from cumulative sums.
    # A circular correlation of length 2W is exact here: j + tau < W + tau_max < 2W never wraps.
    spec = torch.fft.rfft(fr)
    head = torch.fft.rfft(fr[..., :win], n=2 * win)
    r = torch.fft.irfft(spec * head.conj(), n=2 * win)[..., : tau_max + 1]  # sum_{j<W} x_j x_{j+tau}
    e0 = (fr[..., :win] ** 2).sum(-1, keepdim=True)
    c = torch.nn.functional.pad(torch.cumsum(fr**2, -1), (1, 0))
    e_tau = c[..., win: win + tau_max + 1] - c[..., : tau_max + 1]
    d = (e0 + e_tau - 2 * r).clamp_min(0)
    taus = torch.arange(1, tau_max + 1)
    cmnd = d[..., 1:] * taus / torch.cumsum(d[..., 1:], -1).clamp_min(1e-12)  # cmnd[k] is tau = k + 1
    seg = cmnd[..., tau_min - 2: tau_max]
    inner = seg[..., 1:-1]
    local_min = (inner < YIN_THRESHOLD) & (inner <= seg[..., :-2]) & (inner <= seg[..., 2:])
    voiced_sel = local_min.any(-1)
    f0_sel = sample_rate / (local_min.float().argmax(-1) + tau_min).double()
    voiced = torch.zeros(loud_mask.shape, dtype=torch.bool)
    voiced[loud_mask] = voiced_sel
    f0 = torch.zeros(loud_mask.shape, dtype=torch.float64)
    f0[loud_mask] = f0_sel
    loud_n = loud_mask.sum(1)
    voiced_n = voiced.sum(1)
    for row in np.flatnonzero(((loud_n > 0) & (voiced_n >= torch.clamp(PITCHED_FRACTION * loud_n, min=2))).numpy()):
        out[row] = float(f0[row][voiced[row]].median())
    return out


# --- folders ---------------------------------------------------------------------------------


@dataclass
class Folder:
    """Clips read from a folder, converted to one rate and channel count."""

    files: list[str]  # paths relative to the folder, in sorted order
    clips: list[np.ndarray]
    skipped: list[dict]  # {"file", "reason"} for files that could not be decoded
    notes: list[str]  # conversions made (resampling, channel mixing)


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursively), sorted; hidden files ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WavesmithError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in A.AUDIO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_folder(folder: str | os.PathLike, sample_rate: int, channels: int, what: str = "folder") -> Folder:
    """Decode every audio file of ``folder`` at ``sample_rate`` / ``channels``, skipping unreadable ones."""
    folder = Path(folder)
    paths = list_audio(folder)
    if not paths:
        raise WavesmithError(f"{what} {folder} holds no audio files ({', '.join(sorted(A.AUDIO_EXTENSIONS)[:6])}...)")
    files, clips, skipped = [], [], []
    cropped = 0
    rates: dict[int, int] = {}
    chans: dict[int, int] = {}
    for p in paths:
        rel = str(p.relative_to(folder))
        try:
            x, rate = A.read(p, max_seconds=MAX_SECONDS)
        except WavesmithError as e:
            skipped.append({"file": rel, "reason": str(e)})
            continue
        if x.shape[-1] == 0:
            skipped.append({"file": rel, "reason": "no samples"})
            continue
        if not np.isfinite(x).all():  # one NaN would make every statistic NaN (as db add, skip the file)
            skipped.append({"file": rel, "reason": "samples are NaN or infinite"})
            continue
        if x.shape[-1] >= MAX_SECONDS * rate:
            cropped += 1
        rates[rate] = rates.get(rate, 0) + 1
        chans[x.shape[0]] = chans.get(x.shape[0], 0) + 1
        files.append(rel)
        clips.append(A.resample(A.to_channels(x, channels), rate, sample_rate))
    if not clips:
        raise WavesmithError(f"no readable audio in {what} {folder}: all {len(paths)} files failed to decode")
    notes = [f"{cropped} file(s) in {what} longer than {MAX_SECONDS:g} s: their first {MAX_SECONDS:g} s are used"] \
        if cropped else []
    for rate, count in sorted(rates.items()):
        if rate != sample_rate:
            notes.append(f"{count} file(s) in {what} at {rate} Hz resampled to {sample_rate} Hz")
    for ch, count in sorted(chans.items()):
        if ch != channels:
            how = "mixed down to mono" if channels == 1 else f"converted to {channels} channels"
            notes.append(f"{count} file(s) in {what} with {ch} channel(s) {how}")
    return Folder(files, clips, skipped, notes)
