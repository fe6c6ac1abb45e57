"""tts: multi-speaker, multilingual text to speech that predicts log-mel frames for a vocoder.

A non-autoregressive acoustic model of the FastSpeech 2 family (Ren et al., 2021) whose
phoneme durations are learned inside training by monotonic alignment search, as in
Glow-TTS (Kim et al., 2020), so no external aligner is needed:

- **Encoder.** Phoneme tokens (:mod:`wavesmith.text`) plus a language embedding, through
  convolution blocks and self-attention, shifted by the speaker vector.
- **Alignment.** A projection of the encoder gives each phoneme a mean log-mel frame. MAS
  finds the monotonic path through (phoneme, frame) that makes the real frames most likely
  under unit-variance Gaussians at those means; the path's run lengths are the durations.
  The means are trained by that likelihood (the "prior" loss), which sharpens the path.
- **Variance adaptor.** Predictors of each phoneme's log duration, pitch (mean log f0 of its
  voiced frames, from WORLD's DIO stored once per clip) and energy; the true pitch and
  energy are embedded during training, the predicted ones when speaking. ``speed`` divides
  durations and ``pitch`` shifts voiced phonemes by semitones.
- **Decoder.** The phoneme states repeated by their durations, through dilated convolution
  blocks with the speaker vector as FiLM, add a residual to the aligned means.
- **Post-net** (optional, ``postnet_channels`` > 0). The decoder is trained by an L1 loss,
  whose best guess is a smoothed average of what a voice might do. A small diffusion model
  at the frame rate learns the rest: the residual between the real frames and the decoded
  ones, conditioned on the decoded frames, sampled in ``postnet_steps`` DPM-Solver++ steps
  from :mod:`wavesmith.diffusion` (the refiner idea of DiffSinger's shallow diffusion and
  Grad-TTS's decoder, Liu et al. 2022, Popov et al. 2021, as a residual). It sees no
  speaker vector, so it refines a cloned voice as it does a trained one.
  ``postnet_only`` trains it alone on a trained model's frames (every other weight frozen,
  in eval mode). Tried on the shipped model for 5,000 CPU steps it made speech harder to
  understand (README, Figures), so the shipped model has none: the option is for larger,
  longer runs.
- **Speakers.** A vector per training speaker (a table) and a speaker encoder that makes the
  same kind of vector from any recording's log-mel frames below 4 kHz (so a telephone
  recording's bandwidth does not pass for its speaker's identity). Training uses one or the
  other at random and pulls the encoder's vector towards the table's, so both live in one
  space; cloning starts from the encoder's vector of the new voice (:mod:`wavesmith.voice`).

Clips recorded at a low rate (8 kHz telephone prompts) teach who speaks without teaching
the model to muffle everything: every loss ignores mel bands above the clip's original
Nyquist frequency (``orig_rate`` in the batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wavesmith import diffusion as D
from wavesmith import melspec as M
from wavesmith import text as TX
from wavesmith.analysis import FeatureSpec
from wavesmith.errors import WavesmithError
from wavesmith.models.base import Batch, DataInfo, OneLossModel, rows_by_name
from wavesmith.models.mel_diffusion import timestep_embedding

LOW_BAND_HZ = 3800.0  # the speaker encoder and energy look only below this (0.95 x an 8 kHz recording's Nyquist)
LF0_REF = 55.0  # pitch targets are octaves above this (0 means unvoiced)
VARIANCE_SCALE = 1.3  # the default of Config.variance_scale
POSTNET_SCALE = 1.0  # the post-net models (real - decoded) / this (natural-log units: about unit scale)
POSTNET_SCHEDULE = D.Schedule()  # cosine, log-SNR clipped to [-15, 15]


@dataclass
class Config:
    """tts hyper-parameters; the defaults are sized to train on a CPU core."""

    channels: int = 192  # encoder width
    encoder_convs: int = 3  # convolution blocks in the encoder
    encoder_attention: int = 2  # self-attention layers after them
    decoder_channels: int = 192  # decoder width
    decoder_dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)  # one convolution block per entry
    speaker_dim: int = 128  # size of a speaker vector
    dropout: float = 0.1
    max_seconds: float = 12.0  # longest training clip (longer ones are cut, shorter ones padded)
    lr: float = 1e-3  # Adam learning rate
    p_table: float = 0.5  # share of training examples conditioned on the speaker table (else the encoder)
    vocoder: str = "universal"  # shipped vocoder name, or a hifigan run folder / checkpoint
    # Synthesis only: each band's deviation from its mean over the utterance is scaled by this, a
    # global-variance post-filter (Toda et al., 2007). The decoder, trained by an L1 loss, predicts
    # smoother frames than speech; 1 leaves them so. 1.3 by measurement: the likeness of the base
    # model's own voices peaked at 1.6 (benchmarks/voice_ceiling.py), but held-out clones lost
    # identification there, and at 1.3 gained likeness, clearer words and DNSMOS (README, Figures).
    variance_scale: float = VARIANCE_SCALE
    postnet_channels: int = 0  # width of the diffusion post-net (0: none)
    postnet_dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)  # one convolution block per entry
    postnet_steps: int = 8  # DPM-Solver++ steps when speaking (0: speak without the post-net)
    postnet_temperature: float = 1.0  # scale of the post-net's starting noise (0: deterministic)
    postnet_frames: int = 256  # training crop per utterance (the post-net sees a few seconds at a time)
    postnet_only: bool = False  # train only the post-net; the rest stays as loaded (fine-tune with --init)

    def validate(self) -> None:
        if self.channels < 16 or self.channels % 8 or self.decoder_channels < 16 or self.decoder_channels % 8:
            raise WavesmithError("tts channels and decoder_channels must be multiples of 8, at least 16")
        if self.encoder_convs < 1 or not self.decoder_dilations or min(self.decoder_dilations) < 1:
            raise WavesmithError("tts needs encoder_convs >= 1 and decoder_dilations >= 1")
        if not (0 < self.max_seconds <= 60 and 0 <= self.dropout < 1 and 0 <= self.p_table <= 1):
            raise WavesmithError("tts needs max_seconds in (0, 60], dropout in [0, 1), p_table in [0, 1]")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise WavesmithError("tts needs lr > 0")
        if not (math.isfinite(self.variance_scale) and 0.5 <= self.variance_scale <= 3):
            raise WavesmithError("tts needs variance_scale in [0.5, 3]")
        if self.postnet_channels < 0 or self.postnet_channels % 8 or (self.postnet_channels and (
                not self.postnet_dilations or min(self.postnet_dilations) < 1)):
            raise WavesmithError("tts postnet_channels must be 0 (none) or a multiple of 8 with postnet_dilations >= 1")
        if not (0 <= self.postnet_steps <= 200 and self.postnet_frames >= 16
                and math.isfinite(self.postnet_temperature) and 0 <= self.postnet_temperature <= 2):
            raise WavesmithError("tts needs postnet_steps in [0, 200], postnet_frames >= 16 and "
                                 "postnet_temperature in [0, 2]")
        if self.postnet_only and not self.postnet_channels:
            raise WavesmithError("postnet_only trains the post-net: set postnet_channels too (e.g. 128)")


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of ``(B, C, T)``."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """Residual ``x + conv(gelu(norm(x)))``, optionally modulated (FiLM) by a condition vector."""

    def __init__(self, c: int, kernel: int = 5, dilation: int = 1, cond: int = 0, dropout: float = 0.1):
        super().__init__()
        self.norm = ChannelNorm(c)
        self.conv = nn.Conv1d(c, c, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.film = nn.Linear(cond, 2 * c) if cond else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        y = self.norm(x)
        if self.film is not None:
            scale, shift = self.film(s)[:, :, None].chunk(2, dim=1)
            y = y * (1 + scale) + shift
        y = self.drop(F.gelu(self.conv(y * mask)))
        return x + y * mask


class Predictor(nn.Module):
    """One number per position (log duration, pitch or energy) from the encoder's states."""

    def __init__(self, c: int, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList([ConvBlock(c, 3, dropout=dropout) for _ in range(2)])
        self.out = nn.Conv1d(c, 1, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            h = b(h, mask)
        return self.out(h)[:, 0] * mask[:, 0]


class SpeakerEncoder(nn.Module):
    """A speaker vector from log-mel frames ``(B, bands, T)`` (the bands below 4 kHz), masked mean and std."""

    def __init__(self, bands: int, dim: int, c: int = 128):
        super().__init__()
        self.inp = nn.Conv1d(bands, c, 3, padding=1)
        self.blocks = nn.ModuleList([ConvBlock(c, 3, d, dropout=0.0) for d in (1, 2, 4)])
        self.out = nn.Linear(2 * c, dim)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.inp(mel) * mask
        for b in self.blocks:
            h = b(h, mask)
        n = mask.sum(-1).clamp(min=1)
        mean = h.sum(-1) / n
        std = ((h - mean[:, :, None]) ** 2 * mask).sum(-1).div(n).clamp(min=1e-6).sqrt()
        return self.out(torch.cat([mean, std], dim=1))


class PostNet(nn.Module):
    """The v-prediction ``(B, n_mels, T)`` of a noisy residual ``x``, given the decoded frames and times ``(B,)``."""

    def __init__(self, n_mels: int, c: int, dilations: tuple[int, ...], temb: int = 64):
        super().__init__()
        self.temb = temb
        self.time = nn.Sequential(nn.Linear(temb, 2 * temb), nn.GELU(), nn.Linear(2 * temb, temb))
        self.inp = nn.Conv1d(2 * n_mels, c, 1)
        self.blocks = nn.ModuleList([ConvBlock(c, 5, d, cond=temb, dropout=0.0) for d in dilations])
        self.out = nn.Conv1d(c, n_mels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, decoded: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.time(timestep_embedding(t, self.temb))
        h = self.inp(torch.cat([x, _normalise(decoded)], dim=1)) * mask
        for b in self.blocks:
            h = b(h, mask, e)
        return self.out(h) * mask


def monotonic_alignment(logp: np.ndarray, n_tokens: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
    """Durations ``(B, N)`` of the most likely monotonic path through ``logp`` ``(B, N, T)``.

    Every token gets at least one frame and tokens keep their order (Glow-TTS's monotonic
    alignment search, by dynamic programming over frames). Item ``b`` uses its first
    ``n_tokens[b]`` rows and ``n_frames[b]`` columns; it needs ``n_frames >= n_tokens``.
    """
    B, N, T = logp.shape
    neg = np.float32(-1e9)
    q = np.full((B, N, T), neg, dtype=np.float32)
    valid_tok = np.arange(N)[None, :] < n_tokens[:, None]
    lp = np.where(valid_tok[:, :, None], logp, neg).astype(np.float32)
    q[:, 0, 0] = lp[:, 0, 0]
    for t in range(1, T):
        prev = q[:, :, t - 1]
        shifted = np.concatenate([np.full((B, 1), neg, np.float32), prev[:, :-1]], axis=1)
        q[:, :, t] = lp[:, :, t] + np.maximum(prev, shifted)
    durations = np.zeros((B, N), dtype=np.int64)
    idx = np.maximum(n_tokens - 1, 0).astype(np.int64)
    rows = np.arange(B)
    for t in range(T - 1, -1, -1):
        live = t < n_frames
        durations[rows[live], idx[live]] += 1
        if t == 0:
            break
        i = idx
        stay = q[rows, i, t - 1]
        move = np.where(i > 0, q[rows, np.maximum(i - 1, 0), t - 1], neg)
        step = live & (i > 0) & ((i >= t) | (move > stay))
        idx = np.where(step, i - 1, i)
    return durations


def expand(h: torch.Tensor, durations: torch.Tensor, frames: int) -> torch.Tensor:
    """States ``h`` ``(B, C, N)`` repeated by ``durations`` ``(B, N)`` into ``(B, C, frames)`` (zero past the end)."""
    ends = durations.cumsum(1)  # (B, N)
    t = torch.arange(frames, device=h.device)
    index = (t[None, :, None] >= ends[:, None, :]).sum(-1)  # token of each frame (N past the end)
    valid = index < durations.shape[1]
    index = index.clamp(max=h.shape[2] - 1)
    out = torch.gather(h, 2, index[:, None, :].expand(-1, h.shape[1], -1))
    return out * valid[:, None, :].to(h.dtype)


def token_means(values: torch.Tensor, weights: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """Weighted mean of frame ``values`` ``(B, T)`` over each token's frames ``(B, N)`` (0 where no weight)."""
    B, T = values.shape
    ends = durations.cumsum(1)
    t = torch.arange(T, device=values.device)
    index = (t[None, :, None] >= ends[:, None, :]).sum(-1).clamp(max=durations.shape[1])  # (B, T)
    total = torch.zeros(B, durations.shape[1] + 1, device=values.device).scatter_add_(1, index, values * weights)
    count = torch.zeros(B, durations.shape[1] + 1, device=values.device).scatter_add_(1, index, weights)
    return (total / count.clamp(min=1e-6))[:, :-1]


class TTS(OneLossModel):
    """Text to log-mel frames in any training speaker's voice (or a cloned one), decoded by a vocoder."""

    name = "tts"
    Config = Config
    sample_options = frozenset({"speed", "pitch", "vocoder"})

    def __init__(self, config: Config, info: DataInfo):
        super().__init__(config, info)
        config.validate()
        if info.channels != 1:
            raise WavesmithError("tts models mono audio; create the database with --channels 1")
        self.spec = M.HIFIGAN
        c, cd, sd = config.channels, config.decoder_channels, config.speaker_dim
        centres = _band_centres(self.spec)
        self.register_buffer("centres", torch.tensor(centres, dtype=torch.float32), persistent=False)
        self.low_bands = int((centres < LOW_BAND_HZ).sum())
        languages = getattr(info, "languages", ()) or ()
        self.embed = nn.Embedding(len(TX.SYMBOLS), c, padding_idx=0)
        self.language_embed = nn.Embedding(len(languages) + 1, c)  # last row: unknown language
        self.encoder_convs = nn.ModuleList([ConvBlock(c, 5, dropout=config.dropout)
                                            for _ in range(config.encoder_convs)])
        self.attention = nn.ModuleList([
            nn.TransformerEncoderLayer(c, 2, 2 * c, config.dropout, batch_first=True, norm_first=True)
            for _ in range(config.encoder_attention)])
        self.speaker_table = nn.Embedding(len(info.speakers) + 1, sd)  # last row: unknown speaker
        nn.init.normal_(self.speaker_table.weight, std=0.3)
        self.speaker_encoder = SpeakerEncoder(self.low_bands, sd)
        self.speaker_proj = nn.Linear(sd, c)
        self.mean_proj = nn.Conv1d(c, self.spec.n_mels, 1)
        self.duration = Predictor(c, config.dropout)
        self.pitch = Predictor(c, config.dropout)
        self.energy = Predictor(c, config.dropout)
        self.pitch_embed = nn.Conv1d(1, c, 3, padding=1)
        self.energy_embed = nn.Conv1d(1, c, 3, padding=1)
        self.decoder_in = nn.Conv1d(c, cd, 1)
        self.decoder = nn.ModuleList([ConvBlock(cd, 5, d, cond=sd, dropout=config.dropout)
                                      for d in config.decoder_dilations])
        self.decoder_out = nn.Conv1d(cd, self.spec.n_mels, 1)
        nn.init.zeros_(self.decoder_out.weight)
        nn.init.zeros_(self.decoder_out.bias)
        self.postnet = (PostNet(self.spec.n_mels, config.postnet_channels, tuple(config.postnet_dilations))
                        if config.postnet_channels else None)

    # --- what it takes --------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(getattr(self.info, "languages", ()) or ())

    @property
    def default_language(self) -> str:
        """The language text is read in when none is named: US English if the model speaks it, else its first."""
        if not self.languages or "en-us" in self.languages:
            return "en-us"
        return self.languages[0]

    @property
    def accepts(self) -> frozenset[str]:
        return frozenset({"text", "language", "speaker", "speaker_vector"})

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({"text"})

    @property
    def crop_samples(self) -> int:
        return math.ceil(self.config.max_seconds * self.info.sample_rate)

    @property
    def random_crops(self) -> bool:
        return False  # an utterance must keep its start to match its transcript

    @property
    def features(self) -> FeatureSpec:
        # DIO: about 100 times faster than Harvest here, and pitch per phoneme is an average anyway.
        return FeatureSpec(frame_rate=max(1, round(self.info.sample_rate / self.spec.hop)), tracker="dio")

    def adapt_weights(self, weights: dict[str, torch.Tensor], trained_on: DataInfo) -> dict[str, torch.Tensor]:
        """Speaker and language rows matched by name; new ones start from the "unknown" row."""
        pairs = (("speaker_table.weight", trained_on.speakers, self.info.speakers),
                 ("language_embed.weight", tuple(getattr(trained_on, "languages", ()) or ()), self.languages))
        for key, old, new in pairs:
            weights[key] = rows_by_name(weights.pop(key, None), old, new, getattr(self, key.split(".")[0]).weight)
        if not any(k.startswith("postnet.") for k in weights):  # a model without one: the post-net starts fresh
            weights.update({k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith("postnet.")})
        return weights

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = self.postnet.parameters() if self.config.postnet_only else self.parameters()
        return {"model": torch.optim.Adam(params, lr=self.config.lr)}

    def train(self, mode: bool = True):
        """``postnet_only``: everything but the post-net stays in eval mode (no dropout), as when speaking."""
        super().train(mode)
        if mode and self.config.postnet_only:
            for name, child in self.named_children():
                if name != "postnet":
                    child.eval()
        return self

    # --- pieces ---------------------------------------------------------------------------

    def language_id(self, language: str | None) -> int:
        """Row of ``language`` in the language table; unknown languages list the known ones.

        A bare language (``fr``) names the model's one variety of it (``fr-fr``), if it has one.
        """
        if language is None:
            return len(self.languages)
        if self.languages and language not in self.languages:  # "fr" for the model's only French, "fr-fr"
            same = [name for name in self.languages if name.split("-")[0] == language.split("-")[0]]
            if len(same) == 1 and "-" not in language:
                return self.languages.index(same[0])
        TX.check_language(language, self.languages or None)
        return self.languages.index(language) if self.languages else 0

    def phoneme_ids(self, texts: list[str], languages: list[str]) -> list[list[int]]:
        """Token ids of each text (phonemized in its language), memoized across steps."""
        cache = self.__dict__.setdefault("_phoneme_cache", {})
        out = []
        for text, lang in zip(texts, languages, strict=True):
            key = (text, lang)
            if key not in cache:
                cache[key] = TX.encode(TX.phonemize(text, lang)) if text.strip() else []
            out.append(cache[key])
        return out

    def mel_frames(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel frames ``(B, n_mels, T)`` of audio ``(B, 1, S)`` at the database rate, and frames per item."""
        x = audio[:, 0, : max(1, int(lengths.max()))]  # no frames for the padding past the longest clip
        x = M.to_rate(x, self.info.sample_rate, self.spec.sample_rate)
        mel = M.log_mel(x, self.spec)
        frames = torch.clamp((lengths.float() * self.spec.sample_rate / self.info.sample_rate / self.spec.hop).long(),
                             min=1, max=mel.shape[-1])
        return mel, frames

    def speaker_vector(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The speaker encoder's vector ``(B, speaker_dim)`` of log-mel frames ``(B, n_mels, T)``."""
        mask = (torch.arange(mel.shape[-1], device=mel.device)[None] < frames[:, None]).float()[:, None]
        return self.speaker_encoder(_normalise(mel[:, : self.low_bands]) * mask, mask)

    def encode(self, ids: torch.Tensor, tok_mask: torch.Tensor, language: torch.Tensor,
               s: torch.Tensor) -> torch.Tensor:
        """Phoneme states ``(B, C, N)`` of token ids ``(B, N)``, shifted by speaker vectors ``s``."""
        h = (self.embed(ids) + self.language_embed(language)[:, None]).transpose(1, 2) * tok_mask
        for b in self.encoder_convs:
            h = b(h, tok_mask)
        pad = tok_mask[:, 0] == 0
        x = h.transpose(1, 2)
        for layer in self.attention:
            x = layer(x, src_key_padding_mask=pad)
        h = x.transpose(1, 2).masked_fill(pad[:, None], 0.0)
        return (h + self.speaker_proj(s)[:, :, None]) * tok_mask

    def decode(self, h: torch.Tensor, durations: torch.Tensor, frames: int, pitch: torch.Tensor,
               energy: torch.Tensor, tok_mask: torch.Tensor, s: torch.Tensor,
               frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel frames ``(B, n_mels, frames)`` from phoneme states and their durations, pitch, energy."""
        means = expand(self.mean_proj(h), durations, frames)
        v = h + (self.pitch_embed(pitch[:, None]) + self.energy_embed(energy[:, None])) * tok_mask
        x = self.decoder_in(expand(v, durations, frames))
        for b in self.decoder:
            x = b(x, frame_mask, s)
        return means + self.decoder_out(x) * frame_mask, means

    # --- training -------------------------------------------------------------------------

    def _batch_tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        names = self.languages
        lang_ids = batch.get("language")
        if lang_ids is None:
            lang_ids = torch.full((len(batch["text"]),), -1, dtype=torch.long)
        lang_ids = lang_ids.long().cpu()
        langs = [names[i] if 0 <= i < len(names) else "en-us" for i in lang_ids.tolist()]
        seqs = self.phoneme_ids(list(batch["text"]), langs)
        n = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        ids = torch.zeros(len(seqs), max(1, int(n.max())), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        lang_ids = torch.where(lang_ids < 0, torch.full_like(lang_ids, len(names)), lang_ids)
        return ids.to(self.device), n.to(self.device), lang_ids.to(self.device)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.losses(batch, generator, parts=self._training_parts)["loss"]

    def adaptation_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters a cloned voice adapts besides its speaker vector: the decoder's FiLM
        layers and output projection (a small share of the model; see :mod:`wavesmith.voice`)."""
        return {n: p for n, p in self.named_parameters()
                if (n.startswith("decoder.") and ".film." in n) or n.startswith("decoder_out.")}

    def losses(self, batch: Batch, generator: torch.Generator | None = None,
               speaker_vector: torch.Tensor | None = None, parts: str = "all") -> dict[str, torch.Tensor]:
        """Every loss term of a batch (``loss`` is their sum).

        ``speaker_vector`` ``(1 or B, speaker_dim)`` replaces the table and encoder vectors
        (cloning adapts it); the speaker-consistency term is then zero. ``parts``: ``all``;
        ``base`` (no post-net term); or ``postnet`` (the base's terms without gradients, for
        reporting, and ``loss`` is the post-net's alone).
        """
        if parts not in ("all", "base", "postnet"):
            raise ValueError(f"parts must be all, base or postnet, not {parts!r}")
        if parts == "postnet":
            with torch.no_grad():
                out = self._base_losses(batch, generator, speaker_vector)
        else:
            out = self._base_losses(batch, generator, speaker_vector)
        if "decoded" not in out:  # nothing to learn from in this batch
            return {"loss": out["loss"]}
        decoded, mel, m = out.pop("decoded"), out.pop("mel"), out.pop("mask")
        if self.postnet is not None and parts != "base":
            out["postnet"] = self._postnet_loss(decoded.detach(), mel, m, generator)
            out["loss"] = out["postnet"] if parts == "postnet" else out["loss"] + out["postnet"]
        return out

    def _postnet_loss(self, decoded: torch.Tensor, mel: torch.Tensor, m: torch.Tensor,
                      generator: torch.Generator | None) -> torch.Tensor:
        """Diffusion loss of the post-net on the residual ``(mel - decoded) / POSTNET_SCALE``, in crops."""
        lengths = m[:, 0].sum(-1).long()  # frames of each item (the lowest band is never masked)
        width = min(self.config.postnet_frames, max(1, int(lengths.max())))
        starts = [int(torch.randint(0, max(1, int(n) - width + 1), (1,), generator=generator)) for n in lengths]
        crop = lambda x: torch.stack([x[i, :, a: a + width] for i, a in enumerate(starts)])  # noqa: E731
        dec, target, mask = crop(decoded), crop((mel - decoded) / POSTNET_SCALE), crop(m)
        frame_mask = mask.amax(1, keepdim=True)
        return D.training_loss(lambda x, t: self.postnet(x, dec, t, frame_mask), target * mask, POSTNET_SCHEDULE,
                               "v", mask=mask, generator=generator)

    def _base_losses(self, batch: Batch, generator: torch.Generator | None,
                     speaker_vector: torch.Tensor | None) -> dict[str, torch.Tensor]:
        ids, n_tok, language = self._batch_tokens(batch)
        mel, n_frames = self.mel_frames(batch["audio"], batch["length"])
        # Keep items with text and at least as many frames as tokens (MAS needs that).
        keep = (n_tok > 0) & (n_frames >= n_tok)
        if not bool(keep.any()):
            return {"loss": sum(p.sum() * 0 for p in self.parameters())}
        idx = keep.nonzero()[:, 0]
        ids, n_tok, language, mel, n_frames = ids[idx], n_tok[idx], language[idx], mel[idx], n_frames[idx]
        T, N = int(n_frames.max()), int(n_tok.max())
        mel, ids = mel[..., :T], ids[:, :N]
        B = len(idx)
        frame_mask = (torch.arange(T, device=mel.device)[None] < n_frames[:, None]).float()[:, None]
        tok_mask = (torch.arange(N, device=mel.device)[None] < n_tok[:, None]).float()[:, None]
        rate = batch.get("orig_rate")
        nyquist = (rate[idx].float() / 2 if rate is not None else torch.full((B,), 1e9)).to(mel.device)
        band_mask = (self.centres[None] < 0.95 * nyquist[:, None]).float()[:, :, None]  # (B, n_mels, 1)
        m = band_mask * frame_mask  # (B, n_mels, T)

        speaker = batch["speaker"][idx].long().to(mel.device)
        known = speaker >= 0
        table = self.speaker_table(torch.where(known, speaker, torch.full_like(speaker, len(self.info.speakers))))
        enc = self.speaker_vector(mel, n_frames)
        u = torch.rand(B, generator=generator).to(mel.device)
        use_table = known & (u < self.config.p_table)
        s = torch.where(use_table[:, None], table, enc)
        if speaker_vector is not None:
            s = speaker_vector.to(mel.device).expand(B, -1)
            known = torch.zeros_like(known)
        h = self.encode(ids, tok_mask, language, s)

        means = self.mean_proj(h)  # (B, n_mels, N)
        with torch.no_grad():
            ym = mel * m
            logp = -0.5 * ((ym * mel).sum(1)[:, None, :] - 2 * means.transpose(1, 2) @ ym
                           + ((means**2)[:, :, :, None] * band_mask[:, :, None, :]).sum(1))
            durations = torch.from_numpy(monotonic_alignment(logp.float().cpu().numpy(), n_tok.cpu().numpy(),
                                                             n_frames.cpu().numpy())).to(mel.device)
        durations = durations * tok_mask[:, 0].long()

        # Pitch per token: mean octave above LF0_REF over its voiced frames (0: unvoiced).
        f0 = self._frame_f0(batch, idx, T, mel.device)
        voiced = (f0 > 0).float() * frame_mask[:, 0]
        lf0 = torch.log2(f0.clamp(min=1.0) / LF0_REF).clamp(min=0.0)
        tok_voiced = token_means(voiced, frame_mask[:, 0], durations)
        pitch_t = token_means(lf0, voiced, durations) * (tok_voiced > 0.5).float()
        energy_frames = _frame_energy(mel, self.low_bands)
        energy_t = token_means(energy_frames, frame_mask[:, 0], durations) * tok_mask[:, 0]

        out, aligned = self.decode(h, durations, T, pitch_t, energy_t, tok_mask, s, frame_mask)
        denom = m.sum().clamp(min=1)
        mel_l1 = ((out - mel).abs() * m).sum() / denom
        prior = 0.5 * (((aligned - mel) ** 2) * m).sum() / denom
        tok = tok_mask[:, 0]
        ntok = tok.sum().clamp(min=1)
        hd = h.detach()
        dur_l = (((self.duration(hd, tok_mask) - torch.log1p(durations.float())) ** 2) * tok).sum() / ntok
        pitch_l = (((self.pitch(hd, tok_mask) - pitch_t) ** 2) * tok).sum() / ntok
        energy_l = (((self.energy(hd, tok_mask) - energy_t) ** 2) * tok).sum() / ntok
        spk_l = ((enc - table.detach()) ** 2).mean(1)[known].sum() / known.sum().clamp(min=1)
        total = mel_l1 + prior + dur_l + pitch_l + energy_l + 0.1 * spk_l
        return {"loss": total, "mel_l1": mel_l1, "prior": prior, "duration": dur_l, "pitch": pitch_l,
                "energy": energy_l, "speaker": spk_l, "decoded": out, "mel": mel, "mask": m}

    @property
    def _training_parts(self) -> str:
        return "postnet" if self.config.postnet_only else "all"

    def train_step(self, next_batch, update, step: int) -> dict[str, float]:
        parts = self.losses(next_batch(), parts=self._training_parts)
        update("model", parts["loss"])
        return {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def validation_loss(self, batch: Batch) -> dict[str, float]:
        parts = self.losses(batch, generator=torch.Generator(device="cpu").manual_seed(0), parts=self._training_parts)
        return {k: float(v) for k, v in parts.items()}

    def _frame_f0(self, batch: Batch, idx: torch.Tensor, T: int, device) -> torch.Tensor:
        """f0 ``(B, T)`` in Hz at each mel frame's centre, from the stored contour (0: unvoiced or none)."""
        f0 = batch.get("f0")
        if f0 is None:
            return torch.zeros(len(idx), T, device=device)
        f0 = f0[idx.to(f0.device)].float().to(device)
        hop = self.info.sample_rate // self.features.frame_rate
        centres = (torch.arange(T, device=device) + 0.5) * self.spec.hop / self.spec.sample_rate
        where = torch.round(centres * self.info.sample_rate / hop).long().clamp(max=f0.shape[1] - 1)
        return f0[:, where]

    # --- speaking -------------------------------------------------------------------------

    @torch.no_grad()
    def synthesize(self, texts: list[str], language: str | None, s: torch.Tensor, speed: float = 1.0,
                   pitch: float = 0.0, postnet: bool = True) -> list[torch.Tensor]:
        """Log-mel frames ``(n_mels, T_i)`` of each text, spoken by speaker vectors ``s`` ``(1 or B, speaker_dim)``.

        ``speed`` above 1 speaks faster; ``pitch`` shifts voiced phonemes by semitones;
        ``postnet`` False leaves out the post-net of a model that has one.
        """
        if not (math.isfinite(speed) and 0.25 <= speed <= 4):
            raise WavesmithError(f"speed must be between 0.25 and 4, not {speed}")
        if not (math.isfinite(pitch) and abs(pitch) <= 24):
            raise WavesmithError(f"pitch must be between -24 and 24 semitones, not {pitch}")
        lang_row = self.language_id(language or self.default_language)
        lang_name = language or self.default_language
        seqs = self.phoneme_ids(texts, [lang_name] * len(texts))
        for text, seq in zip(texts, seqs, strict=True):
            if not seq:
                raise WavesmithError(f"nothing speakable in {text!r}")
        B, N = len(seqs), max(len(q) for q in seqs)
        dev = self.device
        ids = torch.zeros(B, N, dtype=torch.long, device=dev)
        for i, q in enumerate(seqs):
            ids[i, : len(q)] = torch.tensor(q, device=dev)
        n_tok = torch.tensor([len(q) for q in seqs], device=dev)
        tok_mask = (torch.arange(N, device=dev)[None] < n_tok[:, None]).float()[:, None]
        s = s.to(dev).expand(B, -1) if s.shape[0] == 1 else s.to(dev)
        language_ids = torch.full((B,), lang_row, dtype=torch.long, device=dev)
        h = self.encode(ids, tok_mask, language_ids, s)
        logd = self.duration(h, tok_mask)
        durations = torch.clamp(torch.round(torch.expm1(logd.clamp(min=0)) / speed), min=1).long()
        durations = durations * tok_mask[:, 0].long()
        p = self.pitch(h, tok_mask)
        p = torch.where(p > 0.5, p + pitch / 12.0, p)
        e = self.energy(h, tok_mask)
        frames = durations.sum(1)
        T = int(frames.max())
        frame_mask = (torch.arange(T, device=dev)[None] < frames[:, None]).float()[:, None]
        mel, _ = self.decode(h, durations, T, p, e, tok_mask, s, frame_mask)
        if self.postnet is not None and postnet and self.config.postnet_steps > 0:
            mel = self.refine(mel, frame_mask)
        return [self._sharpen(mel[i, :, : int(frames[i])]) for i in range(B)]

    @torch.no_grad()
    def refine(self, decoded: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Decoded frames ``(B, n_mels, T)`` plus a residual drawn from the post-net (torch's global RNG),
        starting from noise scaled by ``postnet_temperature``."""
        noise = self.config.postnet_temperature * torch.randn(decoded.shape, device=decoded.device)
        residual = D.sample(lambda x, t: self.postnet(x, decoded, t, frame_mask), tuple(decoded.shape),
                            POSTNET_SCHEDULE, steps=self.config.postnet_steps, sampler="dpm++", prediction="v",
                            device=decoded.device, noise=noise)
        return decoded + residual * POSTNET_SCALE * frame_mask

    def _sharpen(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel`` ``(n_mels, T)`` with each band's deviation from its mean scaled by ``variance_scale``."""
        mean = mel.mean(-1, keepdim=True)
        return mean + self.config.variance_scale * (mel - mean)

    def table_vector(self, speaker: int | None) -> torch.Tensor:
        """The speaker table's vector ``(1, speaker_dim)`` of a training speaker (None: the unknown row)."""
        row = len(self.info.speakers) if speaker is None or speaker < 0 else int(speaker)
        return self.speaker_table.weight[row : row + 1].detach()

    @torch.no_grad()
    def to_wave(self, mels: list[torch.Tensor], vocoder: str | None = None) -> list[torch.Tensor]:
        """Waveforms ``(samples,)`` at the database's rate of log-mel frames, through ``vocoder``.

        ``vocoder``: a shipped vocoder's name or a vocoder run (default: the config's).
        """
        from wavesmith import vocoder as V

        voc = V.load(vocoder or self.config.vocoder, self.device)
        out = []
        for mel in mels:
            wave = voc(mel[None])[0]
            out.append(M.to_rate(wave, self.spec.sample_rate, self.info.sample_rate).reshape(-1))
        return out

    @torch.no_grad()
    def sample(self, n: int, seconds: float, conditions: dict[str, Any] | None = None, seed: int | None = None,
               temperature: float = 1.0, **options: Any) -> torch.Tensor:
        """``n`` utterances of ``conditions["text"]`` (a list of n strings): ``(n, 1, samples)``, zero-padded.

        ``conditions`` may also hold ``language`` (a name, or ids ``(n,)`` into the model's
        languages), ``speaker`` (ids ``(n,)``) or ``speaker_vector`` ``(n, speaker_dim)``; each
        utterance is cut at ``seconds``. ``options``: ``speed``, ``pitch`` (semitones) and
        ``vocoder`` (see :meth:`to_wave`).
        """
        conditions = conditions or {}
        texts = conditions.get("text")
        if not texts:
            raise WavesmithError("tts speaks text: give the text to say (see `wavesmith say`)")
        texts = [texts[i % len(texts)] for i in range(n)]
        lang = conditions.get("language")
        if isinstance(lang, torch.Tensor):
            langs = [self.languages[int(i)] if 0 <= int(i) < len(self.languages) else None for i in lang.tolist()]
        else:
            langs = [lang] * n
        if "speaker_vector" in conditions:
            s = conditions["speaker_vector"]
        else:
            spk = conditions.get("speaker")
            rows = [None] * n if spk is None else [int(i) for i in spk.tolist()]
            s = torch.cat([self.table_vector(r) for r in rows])
        mels = []
        for i in range(n):  # one at a time: each text in its own language
            mels += self.synthesize([texts[i]], langs[i], s[i : i + 1], options.get("speed", 1.0),
                                    options.get("pitch", 0.0))
        waves = self.to_wave(mels, options.get("vocoder"))
        limit = max(1, round(seconds * self.info.sample_rate))
        length = min(limit, max(w.shape[0] for w in waves))
        out = torch.zeros(n, 1, length, device=self.device)
        for i, w in enumerate(waves):
            out[i, 0, : min(length, w.shape[0])] = w[:length]
        return out


def _band_centres(spec: M.MelSpec) -> np.ndarray:
    """Centre frequency in Hz of each mel band of ``spec``."""
    fb = M.filters(spec).numpy()
    freqs = np.linspace(0, spec.sample_rate / 2, fb.shape[1])
    return (fb * freqs[None]).sum(1) / np.maximum(fb.sum(1), 1e-9)


def _normalise(mel: torch.Tensor) -> torch.Tensor:
    return (mel + 5.0) / 2.5


def _frame_energy(mel: torch.Tensor, bands: int) -> torch.Tensor:
    """Energy of each frame ``(B, T)``: the mean log-mel of the bands below 4 kHz, roughly in [-1, 1]."""
    return _normalise(mel[:, :bands]).mean(1)
