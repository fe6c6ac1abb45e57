"""The game-speech extractor's parsers, on small inputs built here (no Debian package needed)."""
import importlib.util
import struct
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "speech" / "get_game_speech.py"
_spec = importlib.util.spec_from_file_location("get_game_speech", _PATH)
gs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gs)


def _pstr(text: str, align: int, start: int) -> bytes:
    """A length-prefixed string as the game stores it, padded so the next field lands on `align`
    (an empty one is the length byte alone, unpadded)."""
    raw = bytes([len(text)]) + text.encode("latin-1")
    if not text:
        return raw
    end = start + len(raw)
    return raw + b"\0" * ((-end) % align)


def test_queen_table_reads_names_offsets_and_sizes():
    entries = [("020001P2.SB", 100, 7), ("BUD1.DOG", 107, 40)]
    head = b"QTBL" + b"CEM10\0" + b"\0\0" + bytes([1]) + struct.pack(">H", len(entries))
    for name, offset, size in entries:
        head += name.encode().ljust(12, b"\0") + bytes([1]) + struct.pack(">II", offset, size)
    compression, table = gs.parse_queen_table(head)
    assert compression == 1
    assert table == {"020001P2.SB": (100, 7), "BUD1.DOG": (107, 40)}


def test_queen_table_refuses_the_uncompressed_build():
    with pytest.raises(gs.GameDataError):
        gs.parse_queen_table(b"\0" * 32)


def test_segments_are_numbered_by_command_including_empty_and_grab_ones():
    line = "Hello Joe...*02*01I'm Bud,*GDand my friend*XY00(237,112)Skip.*FRBye"
    # the text before a grab command (*GD, *GM) is not spoken, but its number is used up
    assert gs.speech_segments(line) == [
        (1, "Hello Joe..."), (2, ""), (4, "and my friend"), (5, "Skip."), (6, "Bye")]


def _dog(key: int, joe: list[tuple[int, str]], person: list[tuple[int, str]], before: tuple[str, str]) -> bytes:
    """A one-level conversation file with the given lines (record 0 of each list included)."""
    levels = 1
    joe_at = 32 + levels * 96

    def lines(items, at):
        out = b""
        for ident, text in items:
            out += b"\0\0" + struct.pack(">h", ident)
            out += _pstr(text, 4, at + len(out))
        return out

    joe_block = lines(joe, joe_at)
    person_at = joe_at + len(joe_block)
    person_block = lines(person, person_at)
    before_at = person_at + len(person_block)
    first = _pstr(before[0], 2, before_at)
    before_block = first + _pstr(before[1], 2, before_at + len(first))
    header = struct.pack(">5h", levels, 7, key, len(joe) - 1, len(person) - 1) + b"\0" * 12
    header += struct.pack(">3H", person_at, 0, before_at) + b"\0" * 4
    body = header + b"\0" * (levels * 96) + joe_block + person_block + before_block
    return b"AmBk" + b"\0" * 16 + body


def test_dog_lines_name_voice_files_by_talk_key_id_and_side():
    dog = _dog(8, joe=[(0, "Hi, I'm Joe King.*03"), (9, "Bye.*03"), (0xB4, "Why?")],
               person=[(0, ""), (1, "Hello Joe...*02I'm Bud,")], before=("*02Hi Joe.", "Hello."))
    got = {prefix: (text, by_joe) for prefix, text, by_joe in gs.dog_lines(dog)}
    assert got["08SSSSJ"] == ("Hi, I'm Joe King.*03", True)
    assert got["080009J"] == ("Bye.*03", True)
    assert got["0800B4J"] == ("Why?", True)
    assert got["080001P"] == ("Hello Joe...*02I'm Bud,", False)
    assert got["08XXXXP"] == ("*02Hi Joe.", False)
    assert got["08XXXXJ"] == ("Hello.", True)
    assert "080000P" not in got  # record 0 of the person's list is never spoken


def test_jas_joe_lines_number_descriptions_after_the_responses():
    descriptions = ["It's closed*02", "Neat"]
    verbs = ["open", "close", "move", "----", "give", "use", "pick up", "talk to", "look at", "walk to",
             "on", "to"]
    responses = [f"response {k}" for k in range(1, 41)]
    jas = "\r\n".join(descriptions + ["a name", "a room"] + verbs + responses + ["more"]).encode()
    got = dict(gs.jas_joe_lines(jas))
    assert got["JOE0041"] == "It's closed*02" and got["JOE0042"] == "Neat"
    assert got["JOE0001"] == "response 1" and got["JOE0040"] == "response 40"


@pytest.mark.parametrize("raw, said", [
    ("  We gotta  find a way ", "We gotta find a way"),
    ("Treatment^_.", "Treatment."),
    ("WE DO NOT HAVE A TELEPHONE!", "WE DO NOT HAVE A TELEPHONE!"),
    ("GSRH", ""), ("C", ""), ("SQUAWK!", ""), ("<koff>", ""), ("@@ I think I'm in love @@", ""), ("...", ""),
])
def test_clean_keeps_speech_and_drops_spellings_noises_and_songs(raw, said):
    assert gs.clean(raw) == said


def test_dog_speaker_names_the_character_not_the_file():
    assert gs.dog_speaker("BUD2.DOG") == "bud"
    assert gs.dog_speaker("TAM3.DOG") == "mary-lou"
    assert gs.dog_speaker("MAN2.DOG") == "ernie" and gs.dog_speaker("MAN1.DOG") == "man"
