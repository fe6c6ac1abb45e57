"""The text front end of speech synthesis: sentences, pauses and phonemes, through espeak-ng.

Text becomes phonemes by calling the ``espeak-ng`` program (Debian package ``espeak-ng``;
it is called, never linked), one language at a time, with its rules for numbers, dates and
common abbreviations. espeak-ng drops punctuation from its phoneme output, so pauses are
kept here: the text is cut into clauses at punctuation, each clause is phonemized, and
a pause token (``,`` ``.`` ``?`` ``!``) joins them.

Phonemes are IPA characters. A token is one character (a stress mark, a length mark and
a combining diacritic are tokens of their own), so the symbol table :data:`SYMBOLS` is
fixed and a model's embedding does not depend on the data it saw first: any language
espeak-ng speaks maps onto it. A character outside it becomes :data:`UNKNOWN`.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata

from wavesmith.errors import WavesmithError

PAD, UNKNOWN, SPACE = "<pad>", "<unk>", " "
PAUSES = (",", ".", "?", "!")
# Punctuation that ends a clause, and the pause it becomes.
_CLAUSE_END = {",": ",", ";": ",", ":": ",", "\u2014": ",", "\u2013": ",", "(": ",", ")": ",", ".": ".",
               "\u2026": ".", "!": "!", "?": "?", "\u00bf": ",", "\u00a1": ",", "\u3002": ".", "\uff0c": ","}


def _symbols() -> tuple[str, ...]:
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    chars += [chr(c) for c in range(0x00E0, 0x0100)]  # Latin-1 letters (æ, ç, ð, ø, ...)
    chars += [chr(c) for c in range(0x0100, 0x0180)]  # Latin Extended-A (ħ, ŋ, œ, ...)
    chars += [chr(c) for c in range(0x0250, 0x0300)]  # IPA extensions and spacing modifiers (ˈ ˌ ː ...)
    chars += [chr(c) for c in range(0x0300, 0x0370)]  # combining diacritics (nasal ~, syllabic, ...)
    chars += list("βθχ\u1d7b\u1d4a")  # Greek letters IPA uses, and two modifier letters espeak-ng writes
    return (PAD, UNKNOWN, SPACE, *PAUSES, *sorted(set(chars) - {SPACE}))


SYMBOLS: tuple[str, ...] = _symbols()
SYMBOL_ID = {s: i for i, s in enumerate(SYMBOLS)}

# Abbreviations after which a full stop does not end a clause (espeak-ng expands them).
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "prof", "jr", "sr", "vs", "etc", "e.g", "i.e", "mt",
                  "mme", "mlle", "sra", "hr", "fr", "nr", "z.b", "bzw", "ca"}
_CLAUSE_RE = re.compile(r"([,;:!?.\u2026\u2014\u2013()\u00bf\u00a1\u3002\uff0c]+)(?=\s|$)")
_SENTENCE_RE = re.compile(r"(?<=[.!?\u2026\u3002])[\"'\u201d\u00bb)]*\s+")


def espeak_program() -> str:
    """The ``espeak-ng`` executable; a :class:`WavesmithError` saying how to install it if absent."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise WavesmithError("speech needs the espeak-ng program for phonemes: install it "
                             "(Debian/Ubuntu: apt-get install espeak-ng)")
    return exe


@functools.lru_cache(maxsize=1)
def espeak_languages() -> tuple[str, ...]:
    """Voice names espeak-ng knows (``en-us``, ``fr-fr``, ...), sorted."""
    out = subprocess.run([espeak_program(), "--voices"], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            names.add(parts[1])
    return tuple(sorted(names))


def check_language(language: str, supported: tuple[str, ...] | list[str] | None = None) -> str:
    """``language`` if espeak-ng (and, when given, ``supported``) knows it; else one line listing them."""
    known = tuple(supported) if supported else espeak_languages()
    if language not in known:
        raise WavesmithError(f"unsupported language {language!r}; supported languages: {', '.join(known)}")
    return language


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (one file each for ``say``); blank lines also end a sentence."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        parts = _SENTENCE_RE.split(para)
        merged: list[str] = []
        for part in parts:  # glue a piece back when its predecessor ended in an abbreviation
            if merged and _ends_in_abbreviation(merged[-1]):
                merged[-1] += " " + part
            else:
                merged.append(part)
        out += [s.strip() for s in merged if s.strip()]
    return out


def _ends_in_abbreviation(chunk: str) -> bool:
    words = chunk.rstrip(".").split()
    if not words or not chunk.endswith("."):
        return False
    last = words[-1].lower().strip("\"'(")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def clauses(text: str) -> list[tuple[str, str]]:
    """``text`` as ``(clause, pause)`` pairs; the pause is one of :data:`PAUSES` (``.`` at the end)."""
    pieces = _CLAUSE_RE.split(" ".join(text.split()))
    out: list[tuple[str, str]] = []
    words = ""
    for i in range(0, len(pieces), 2):
        words = f"{words} {pieces[i].strip()}".strip()
        punct = pieces[i + 1] if i + 1 < len(pieces) else ""
        if not punct:
            break  # the words after the last punctuation: kept below
        if punct.startswith(".") and len(punct) == 1 and _ends_in_abbreviation(words + "."):
            words += "."
            continue
        pause = _pause(punct)
        if words:
            out.append((words, pause))
        elif out and pause != ",":
            out[-1] = (out[-1][0], pause)
        words = ""
    if words:
        out.append((words, "."))
    return out


def _pause(punct: str) -> str:
    for ch in reversed(punct):  # "?!" and "..." end with the mark that counts
        if ch in _CLAUSE_END:
            return _CLAUSE_END[ch]
    return ","


def tokens(ipa: str) -> list[str]:
    """IPA text as tokens of :data:`SYMBOLS` (one character each; spaces become word breaks)."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", ipa.lower()):
        if ch.isspace():
            if out and out[-1] != SPACE:
                out.append(SPACE)
        elif ch in SYMBOL_ID:
            out.append(ch)
        elif unicodedata.category(ch).startswith("P") or ch in "-_|=":
            continue  # espeak-ng's own linking marks
        else:
            out.append(UNKNOWN)
    while out and out[-1] == SPACE:
        out.pop()
    return out


def _espeak(lines: list[str], language: str) -> list[str]:
    """IPA of each of ``lines`` (one clause each), or of the clauses espeak-ng itself found."""
    text = "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    r = subprocess.run([espeak_program(), "-q", "--ipa", "-v", language, "-b", "1"], input=text.encode("utf-8"),
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise WavesmithError(f"espeak-ng failed on language {language!r}: {r.stderr.decode(errors='replace').strip()}")
    return [line.strip() for line in r.stdout.decode("utf-8", errors="replace").splitlines() if line.strip()]


def phonemize(text: str, language: str) -> list[str]:
    """``text`` in ``language`` (an espeak-ng voice) as phoneme tokens with pause tokens between clauses.

    An empty list means nothing speakable. The language is not checked here (see
    :func:`check_language`); espeak-ng's failure on an unknown one is a :class:`WavesmithError`.
    """
    parts = clauses(text)
    if not parts:
        return []
    ipa = _espeak([c for c, _ in parts], language)
    if len(ipa) != len(parts):  # espeak-ng cut a clause itself: phonemize each alone
        ipa = [" ".join(_espeak([c], language)) for c, _ in parts]
    out: list[str] = []
    for (_, pause), said in zip(parts, ipa, strict=True):
        t = tokens(said)
        if t:
            out += t + [pause]
    return out


def encode(phonemes: list[str]) -> list[int]:
    """Token ids of ``phonemes`` (unknown tokens map to :data:`UNKNOWN`'s id)."""
    unk = SYMBOL_ID[UNKNOWN]
    return [SYMBOL_ID.get(p, unk) for p in phonemes]
