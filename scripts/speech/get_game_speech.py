#!/usr/bin/env python3
"""Extract English dialogue (speech clip + the line it says + who says it) from freeware games in Debian.

  usage: get_game_speech.py DEST        (needs apt-get and dpkg; a re-run replaces this game's part of DEST)

Why: the text-to-speech base model's English is 27 minutes, nearly all one voice (issue 14). Debian
ships the CD ("talkie") editions of two adventure games whose resource files hold their whole voiced
script, line by line, in many voices.

What it does:
  1. `apt-cache policy` to check the package is known, `apt-get download` and `dpkg -x` into a temporary
     folder (apt is the only network used).
  2. flight-of-the-amazon-queen (FOTAQ, Debian's queen.1c, ScummVM's compressed talkie build):
     reads the resource table, then for every conversation file (*.DOG) and for Joe's stock responses
     and object descriptions (QUEEN2.JAS) rebuilds the name of the speech file each spoken segment
     plays, and keeps the pairs whose speech file exists. Speech files are MP3 (11025 Hz mono); they
     are decoded and written as 16-bit WAV at their own rate (no resampling).
  3. Writes DEST/<game>/<speaker>/<id>.wav, adds this game's rows to DEST/metadata.csv
     (path,label,speaker,text,language; earlier rows of the same label are replaced, other rows kept),
     copies each package's copyright file to DEST/licenses/<package>.copyright and adds a section
     to DEST/LICENSES.md.
Not extracted (yet): FOTAQ's cutaway scenes (*.CUT, about 1,800 clips: their speaker is an object
number that needs QUEEN.JAS's object tables), and beneath-a-steel-sky (see LIMITS in the report).

Format facts (from reading ScummVM's engine as documentation; no code is taken from it):
  queen.1c  "QTBL", version string (6 bytes), 2 flag bytes, compression byte (1 = MP3), entry count
            (u16 BE), then entries of name (12 bytes, NUL padded), bundle (u8), offset, size (u32 BE).
  *.DOG     20-byte "AmBk" header, then big-endian int16: levels, unique key, talk key, Joe's line
            count, the person's line count, 3 x (game state, test value, item), then u16 offsets of
            the person's lines, the cutaway name and the 'talked to before' pair. Joe's lines start at
            32 + 96 * levels. A line list holds records of (u16, int16 id, u8 length, text padded to a
            multiple of 4 from the length byte); the 'before' pair is two strings padded to 2.
  speech    a line's voice file is "%2d%4x" % (talk key, id) + "P" (person) or "J" (Joe), with spaces
            as zeros, plus one hex digit: the 1-based segment number. A line is cut into segments at
            each "*" + two-character command ("*XY" is followed by 11 more characters); commands
            "GD"/"GM" make no segment. The opening line of Joe is "SSSS", the pair "XXXX".
  QUEEN2.JAS lines, CR LF separated: object descriptions, names, rooms, 12 verbs, 40 Joe responses...
            Joe response k speaks "JOE%04d" % k, object description k speaks "JOE%04d" % (k + 40).
"""
from __future__ import annotations

import csv
import glob
import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

GAMES = {"fotaq": "flight-of-the-amazon-queen", "bass": "beneath-a-steel-sky"}
# The talkie cast of Flight of the Amazon Queen speaks with American accents (a 1940s pulp adventure:
# Joe King, an American pilot, Faye Russell, a Hollywood star); espeak-ng's voice for that is en-us.
FOTAQ_LANGUAGE = "en-us"
# Conversation files whose name is not the character's (the rest: the name less its trailing digits),
# named from what the character says in them (MAN1 and MAN2 are two different men).
DOG_SPEAKER = {"AND": "anderson", "PRIN": "princess", "SHOWERAM": "amazon-engineer", "SEC": "secretary",
               "TAM": "mary-lou", "JIM": "jimmy", "DEATH": "charon", "MAN1": "man", "MAN2": "ernie"}
# The guard dog's conversation is barking; the parrot's squawks are dropped by clean().
NOT_SPEECH = {"dog"}
DOG_HEADER = 20
JOE_RESPONSES = 40
VERBS = ["open", "close", "move"]  # the first verbs of QUEEN2.JAS, to find where the verb block starts


class GameDataError(Exception):
    """The package's files are not laid out as this script expects."""


# ---------------------------------------------------------------- pure parsers (tested)
def parse_queen_table(head: bytes) -> tuple[int, dict[str, tuple[int, int]]]:
    """(compression, {name: (offset, size)}) from the start of a ScummVM-compressed queen.1c."""
    if head[:4] != b"QTBL":
        raise GameDataError("queen.1c does not start with QTBL: not the compressed talkie build")
    compression = head[12]
    (count,) = struct.unpack(">H", head[13:15])
    table, pos = {}, 15
    for _ in range(count):
        name = head[pos:pos + 12].split(b"\0")[0].decode("ascii")
        offset, size = struct.unpack(">II", head[pos + 13:pos + 21])
        table[name] = (offset, size)
        pos += 21
    return compression, table


def speech_segments(line: str) -> list[tuple[int, str]]:
    """[(voice file digit, text)] of a line cut at its "*XX" speech commands."""
    out, start, i, index = [], 0, 0, 0
    while i < len(line):
        if line[i] != "*":
            i += 1
            continue
        seg, command = line[start:i], line[i + 1:i + 3]
        i += 3 + (11 if command == "XY" else 0)
        if command not in ("GD", "GM"):  # grab commands only move Joe: no segment is spoken
            out.append((index + 1, seg))
        index += 1
        start = i
    if start < len(line):
        out.append((index + 1, line[start:]))
    return out


def _pstring(data: bytes, pos: int, align: int) -> tuple[str, int]:
    n = data[pos]
    text = data[pos + 1:pos + 1 + n].decode("latin-1")
    pos += 1
    return text, ((pos + n + align - 1) & ~(align - 1)) if n else pos


def _line_list(data: bytes, pos: int, count: int) -> list[tuple[int, str]]:
    out = []
    for _ in range(count + 1):  # record 0 is Joe's opening line (or the person's unused one)
        (ident,) = struct.unpack(">h", data[pos + 2:pos + 4])
        text, pos = _pstring(data, pos + 4, 4)
        out.append((ident, text))
    return out


def dog_lines(dog: bytes) -> list[tuple[str, str, bool]]:
    """[(voice file prefix, line, said by Joe)] of one conversation file (*.DOG, header included)."""
    if dog[:4] != b"AmBk":
        raise GameDataError("a .DOG file lacks its AmBk header")
    d = dog[DOG_HEADER:]
    levels, _, key, joe_max, person_max = struct.unpack(">5h", d[:10])
    person_at, _, before_at = struct.unpack(">3H", d[22:28])
    joe = _line_list(d, 32 + abs(levels) * 96, joe_max)
    person = _line_list(d, person_at, person_max)
    person_before, pos = _pstring(d, before_at, 2)
    joe_before, _ = _pstring(d, pos, 2)
    out = [(f"{key:2d}SSSSJ", joe[0][1], True), (f"{key:2d}XXXXP", person_before, False),
           (f"{key:2d}XXXXJ", joe_before, True)]
    out += [(f"{key:2d}{i:4x}J", t, True) for i, t in joe[1:] if i > 0]
    out += [(f"{key:2d}{i:4x}P", t, False) for i, t in person if i > 0]
    return [(p.replace(" ", "0").upper(), t, j) for p, t, j in out]


def jas_joe_lines(jas2: bytes) -> list[tuple[str, str]]:
    """[(voice file prefix, line)] of Joe's responses and object descriptions in QUEEN2.JAS."""
    lines = jas2.decode("latin-1").split("\r\n")
    verbs = next((i for i in range(len(lines)) if lines[i:i + 3] == VERBS), None)
    if verbs is None:
        raise GameDataError("QUEEN2.JAS: verb list not found")
    out = [(f"JOE{k + JOE_RESPONSES:04d}", t) for k, t in enumerate(lines[:verbs], 1)]
    out += [(f"JOE{k:04d}", t) for k, t in enumerate(lines[verbs + 12:verbs + 12 + JOE_RESPONSES], 1)]
    return out


def clean(text: str) -> str:
    """A segment as it is said, or "" for one that is not plain speech with a readable transcript.

    Dropped: sung lines (between "@@"), noises in angle brackets ("<koff>"), and one-word lines in
    capitals, which in this game are spelled-out letters ("C", "GSRH") or animal cries ("SQUAWK!").
    The game font's trademark sign "^_" is removed.
    """
    text = re.sub(r"\s+", " ", text.replace("^_", "")).strip()
    if "@@" in text or "<" in text or not re.search(r"[A-Za-z]", text):
        return ""
    if not re.search(r"[a-z]", text) and len(text.split()) == 1:
        return ""
    return text


def dog_speaker(dog_name: str) -> str:
    """The character that a conversation file's person lines belong to."""
    stem = dog_name.rsplit(".", 1)[0]
    if stem in DOG_SPEAKER:
        return DOG_SPEAKER[stem]
    stem = re.sub(r"\d+$", "", stem)
    return DOG_SPEAKER.get(stem, stem.lower())


# ---------------------------------------------------------------- packages
def fetch(package: str, work: Path) -> Path:
    """Unpack the package into work/x and return that folder (apt is the only network used)."""
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    if not re.search(r"Candidate: (?!\(none\))", policy):
        sys.exit(f"error: apt does not know {package} (run apt-get update first)")
    subprocess.run(["apt-get", "download", "-qq", package], cwd=work, check=True)
    for deb in glob.glob(str(work / f"{package}_*.deb")):
        subprocess.run(["dpkg", "-x", deb, str(work / "x")], check=True)
        os.remove(deb)
    return work / "x"


def package_version(deb_root: Path, package: str) -> str:
    """The Debian version of an unpacked package, from the top of its changelog."""
    log = deb_root / "usr/share/doc" / package / "changelog.Debian.gz"
    first = gzip.open(log, "rt", encoding="utf-8").readline()
    return re.search(r"\(([^)]+)\)", first).group(1)


# ---------------------------------------------------------------- FOTAQ
def extract_fotaq(root: Path, dest: Path) -> list[list]:
    """Write FOTAQ's voiced lines under dest/fotaq/ and return their metadata rows (+ seconds)."""
    import soundfile as sf

    data_file = root / "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
    with open(data_file, "rb") as f:
        head = f.read(15)
        (count,) = struct.unpack(">H", head[13:15])
        compression, table = parse_queen_table(head + f.read(21 * count))
        if compression != 1:
            raise GameDataError(f"queen.1c speech compression {compression}, expected 1 (MP3)")

        def read(name: str) -> bytes:
            offset, size = table[name]
            f.seek(offset)
            return f.read(size)

        wanted = {}  # voice file -> (speaker, text); the first claim wins
        for name in sorted(n for n in table if n.endswith(".DOG")):
            for prefix, line, by_joe in dog_lines(read(name)):
                for digit, seg in speech_segments(line):
                    wanted.setdefault(f"{prefix}{digit:X}.SB", ("joe" if by_joe else dog_speaker(name), seg))
        for prefix, line in jas_joe_lines(read("QUEEN2.JAS")):
            for digit, seg in speech_segments(line):
                wanted.setdefault(f"{prefix}{digit:X}.SB", ("joe", seg))

        rows = []
        for voice in sorted(wanted):
            speaker, text = wanted[voice][0], clean(wanted[voice][1])
            if voice not in table or not text or speaker in NOT_SPEECH:
                continue
            audio, rate = sf.read(io.BytesIO(read(voice)), dtype="int16")
            if audio.ndim > 1:
                audio = audio[:, 0]
            rel = Path("fotaq") / speaker / f"{voice[:-3].lower()}.wav"
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(dest / rel, audio, rate, subtype="PCM_16")
            rows.append([rel.as_posix(), "fotaq", f"fotaq-{speaker}", text, FOTAQ_LANGUAGE, len(audio) / rate])
    return rows


# ---------------------------------------------------------------- outputs
def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def merge_metadata(dest: Path, label: str, rows: list[list]) -> None:
    """Replace this label's rows in dest/metadata.csv (creating it), keeping every other row."""
    path = dest / "metadata.csv"
    old = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as f:
            old = [r for r in csv.reader(f)][1:]
    keep = [r for r in old if r[1] != label]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [["path", "label", "speaker", "text", "language"]] + keep + [r[:5] for r in rows])
    write_atomic(path, buf.getvalue())


def merge_licences(dest: Path, label: str, package: str, version: str, root: Path, summary: str) -> None:
    """Copy the package's copyright file and put this game's section in dest/LICENSES.md."""
    lic = dest / "licenses" / f"{package}.copyright"
    lic.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "usr/share/doc" / package / "copyright", lic)
    path = dest / "LICENSES.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Licences of the recordings\n"
    begin, end = f"<!-- {label} -->", f"<!-- /{label} -->"
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end) + "\n?", "", text, flags=re.S)
    section = (f"{begin}\n## {label}: Debian package {package} {version}\n\n{summary}\n\n"
               f"Full terms: licenses/{package}.copyright\n{end}\n")
    write_atomic(path, text.rstrip("\n") + "\n\n" + section)


FOTAQ_LICENCE = (
    "Game content (C) John Passfield and Steven Stamatiadis; released as freeware through ScummVM. "
    "The licence allows free redistribution and modification (modified versions must say so "
    "prominently), in aggregate collections too; no fee for the game itself; the readme and copyright "
    "notices must stay with it. Each clip here is an unmodified decoding of the game's MP3 speech.")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__)
        return 2
    dest = Path(argv[0]).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="game-speech-") as tmp:
        package = GAMES["fotaq"]
        root = fetch(package, Path(tmp))
        shutil.rmtree(dest / "fotaq", ignore_errors=True)
        rows = extract_fotaq(root, dest)
        merge_metadata(dest, "fotaq", rows)
        merge_licences(dest, "fotaq", package, package_version(root, package), root, FOTAQ_LICENCE)
    hours = sum(r[5] for r in rows) / 3600
    speakers: dict[str, int] = {}
    for r in rows:
        speakers[r[2]] = speakers.get(r[2], 0) + 1
    print(f"fotaq: {len(rows)} clips, {hours:.2f} h, {len(speakers)} speakers")
    for s, n in sorted(speakers.items(), key=lambda x: -x[1]):
        print(f"  {s:28} {n:5d}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GameDataError as e:
        sys.exit(f"error: {e}")
