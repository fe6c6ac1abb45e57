"""The text front end: clauses and pauses, sentences, tokens, and espeak-ng phonemes."""

import shutil

import pytest

from wavesmith import text as T
from wavesmith.errors import WavesmithError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")


def test_clauses_keep_the_pause_each_punctuation_mark_asks_for():
    assert T.clauses("Mr. Smith, hello... and: ok?!") == [("Mr. Smith", ","), ("hello", "."), ("and", ","),
                                                          ("ok", "!")]
    assert T.clauses("Really? no") == [("Really", "?"), ("no", ".")]
    assert T.clauses("") == [] and T.clauses("!!") == []


def test_sentences_do_not_end_at_abbreviations():
    assert T.sentences("Hello there. Dr. Who is here! Is it? yes\n\nNew para") == [
        "Hello there.", "Dr. Who is here!", "Is it?", "yes", "New para"]


def test_tokens_are_characters_of_the_fixed_table():
    toks = T.tokens("bɔ̃ʒˈuʁ  ʒə-")
    assert "-" not in toks and toks[-1] != " "
    assert "\u0303" in toks  # the nasal tilde is a token of its own
    ids = T.encode(toks + ["\u4e00"])
    assert ids[-1] == T.SYMBOL_ID[T.UNKNOWN] and all(0 < i < len(T.SYMBOLS) for i in ids)
    assert len(set(T.SYMBOLS)) == len(T.SYMBOLS)


@needs_espeak
def test_phonemize_spells_out_numbers_and_keeps_pauses():
    p = T.phonemize("I have 42 apples, really?", "en-us")
    text = "".join(p)
    assert "," in p and p[-1] == "?"
    assert "fˈɔːɹɾi" in text or "fˈoːɹɾi" in text  # "forty"
    assert T.phonemize("...", "en-us") == []
    fr = "".join(T.phonemize("Bonjour", "fr-fr"))
    assert "ʒ" in fr


@needs_espeak
def test_unknown_language_lists_the_supported_ones():
    with pytest.raises(WavesmithError, match="unsupported language 'xx'.*en-us"):
        T.check_language("xx")
    with pytest.raises(WavesmithError, match="supported languages: en-us, fr-fr"):
        T.check_language("de", ["en-us", "fr-fr"])
