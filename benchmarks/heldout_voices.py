"""Fetch recorded speech of voices that no wavesmith training set contains, for the cloning benchmark.

    python benchmarks/heldout_voices.py DEST      (a re-run skips the sources already done)

Everything comes from Debian packages (``apt-get download`` + ``dpkg -x``; ffmpeg decodes Ogg,
G.722 and GSM to WAV). ``shared/tools/get-speech`` builds the training corpus and never fetches
fillets-ng-data-cs, asterisk-core-sounds-fr* or ktuberling-data; the other packages here are
not in it either. Keep all of them out of every training set.

  source       package(s)                               voices                                 text
  fillets-cs   fillets-ng-data(-cs)                     the two Czech fish                     from the Lua dialogue
  asterisk-fr  asterisk-core-sounds-fr(-g722)           June Wallack, Canadian French, 16 kHz  core-sounds-fr.txt
  armelle      asterisk-prompt-fr-armelle               Armelle Desjardins, French, 8 kHz GSM  none
  es-co        asterisk-prompt-es-co                    July E. Jimenez, Colombian Spanish, 8k none
  ktuberling   ktuberling-data                          one voice per language, single words   none
  hedgewars    hedgewars-data                           English character voices, exclamations none

Writes DEST/<speaker>/*.wav (each file at its source's rate), DEST/metadata.csv
(``path,speaker,text,language,seconds``; text is empty where the package has no transcript; the
file names of ktuberling and hedgewars say what is meant, not what is said, so they are not
used), DEST/LICENSES.md and DEST/licenses/<package>.copyright. Speakers with under
``MIN_SECONDS`` of speech are left out: the benchmark needs 15 s of references and a test set.
Hedgewars' Robot voice (processed) and its grunts and laughs are left out. Its packs name no
actors, and some may share one: Resemblyzer puts Default, Surfer and Singer about as close to
each other as to themselves, so read their identification figures with that in mind. The same
caution for KTuberling and KLettres (training): one translator may have recorded both.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MIN_SECONDS = 35.0
KTUBERLING_LANGS = {"en": "en-us", "fr": "fr-fr", "da": "da", "ru": "ru", "lt": "lt", "uk": "uk", "ca": "ca"}
# The two fish speak most of the game; the minor characters have a minute or less each, some are
# processed (robot dog, parrot, statue) and lines without a font in the English script have no speaker.
FILLETS_VOICES = ("small-fish", "big-fish")
HEDGEWARS_EN = ["British", "Classic", "Default", "Default_uk", "HillBilly", "Mobster", "Pirate", "Singer", "Surfer"]
HEDGEWARS_NOT_WORDS = re.compile(r"^(Ooff|Ow|Jump|Laugh|Hmm|Nooo|Firepunch|Yoohoo)\d*$")
LICENCES = {  # source: (licence, attribution), from the copyright files inside the packages
    "fillets-cs": ("GPL-2", "Fish Fillets NG: Ivo and Pavel Danihelka, ALTAR interactive; Czech voices"),
    "asterisk-fr": ("CC-BY-SA-3.0", "Recorded by June Wallack; Digium, Inc."),
    "armelle": ("BSD-style (keep the copyright notice)", "Voice: Armelle Desjardins; (C) 2006 Michel Gutierrez"),
    "es-co": ("GPL-2", "Avatar Ltda. / July E. Jimenez"),
    "ktuberling": ("GPL-2+", "KTuberling: KDE contributors and its translators"),
    "hedgewars": ("GFDL-1.3", "Hedgewars voices (C) 2004-2006 Andrey Korotaev and the Hedgewars project"),
}


def fetch(pkgs: list[str], work: Path, dest: Path) -> dict[str, str]:
    """Download and unpack ``pkgs`` into work/x; copies each copyright file; returns {package: version}."""
    subprocess.run(["apt-get", "download", "-qq", *pkgs], cwd=work, check=True, capture_output=True)
    got = {}
    for deb in sorted(work.glob("*.deb")):
        fields = ["dpkg-deb", "-W", "--showformat=${Package} ${Version}", str(deb)]
        name, version = subprocess.run(fields, capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["dpkg", "-x", str(deb), str(work / "x")], check=True)
        deb.unlink()
        got[name] = version
        copyright = work / "x/usr/share/doc" / name / "copyright"
        if copyright.exists():
            (dest / "licenses").mkdir(parents=True, exist_ok=True)
            shutil.copy(copyright, dest / "licenses" / f"{name}.copyright")
    return got


def to_wav(pairs: list[tuple[Path, Path, str | None]]) -> None:
    """Decode (src, dst, input format or None) to 16-bit WAV at the source's rate, 64 files per ffmpeg call."""
    for i in range(0, len(pairs), 64):
        ins, outs = [], []
        for k, (src, dst, fmt) in enumerate(pairs[i:i + 64]):
            dst.parent.mkdir(parents=True, exist_ok=True)
            ins += (["-f", fmt] if fmt else []) + ["-i", str(src)]
            outs += ["-map", str(k), "-ac", "1", "-c:a", "pcm_s16le"] + (["-ar", "16000"] if fmt == "g722" else [])
            outs.append(str(dst))
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *ins, *outs], check=True, stdin=subprocess.DEVNULL)


def fillets_cs(work: Path, dest: Path):
    got = fetch(["fillets-ng-data", "fillets-ng-data-cs"], work, dest)
    base = work / "x/usr/share/games/fillets-ng"
    rows, todo = [], []
    for level in sorted(base.glob("sound/*/cs")):
        name = level.parent.name
        en, cs = (base / "script" / name / f"dialogs_{lang}.lua" for lang in ("en", "cs"))
        if not (en.exists() and cs.exists()):
            continue
        en, cs = (p.read_text(encoding="utf-8", errors="replace") for p in (en, cs))
        font = dict(re.findall(r'dialogId\(\s*"([^"]+)"\s*,\s*"([^"]*)"', en))  # the font says who speaks
        said = dict(re.findall(r'dialogId\(\s*"([^"]+)"[^\n]*\)\s*dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)', cs))
        for src in sorted(level.glob("*.ogg")):
            text = " ".join(re.sub(r"\\(.)", lambda m: " " if m[1] in "nt" else m[1], said.get(src.stem, "")).split())
            who = font.get(src.stem, "")
            who = {"font_small": "small-fish", "font_big": "big-fish"}.get(who, who[5:] or "unknown")
            if who not in FILLETS_VOICES:
                continue
            if "%" in text:  # a placeholder filled in at run time
                text = ""
            spk = f"fillets-cs-{who}"
            todo.append((src, dest / spk / f"{name}-{src.stem}.wav", None))
            rows.append([todo[-1][1], spk, text, "cs"])
    return got, rows, todo


def asterisk_fr(work: Path, dest: Path):
    got = fetch(["asterisk-core-sounds-fr", "asterisk-core-sounds-fr-g722"], work, dest)
    doc = next(work.glob("x/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt*"))
    root = next(work.glob("x/usr/share/asterisk/sounds/fr_CA*"))
    rows, todo, seen = [], [], set()
    for line in (gzip.open if doc.suffix == ".gz" else open)(doc, "rt", encoding="utf-8-sig", errors="replace"):
        name, sep, text = (s.strip() for s in line.partition(":"))
        src = root / f"{name}.g722"
        if not sep or name.startswith(";") or name in seen or not src.exists():
            continue
        seen.add(name)
        text = " ".join(re.sub(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>", " ", text).split())  # stage directions out
        if text and not re.search(r"silence|beep|tone", name):
            todo.append((src, dest / "asterisk-fr-june" / f"{name.replace('/', '-')}.wav", "g722"))
            rows.append([todo[-1][1], "asterisk-fr-june", text, "fr"])
    return got, rows, todo


def asterisk_prompts(package: str, folder: str, speaker: str, language: str):
    def build(work: Path, dest: Path):
        got = fetch([package], work, dest)
        rows, todo = [], []
        for src in sorted(work.glob(f"x/usr/share/asterisk/sounds/{folder}/**/*.gsm")):
            if re.search(r"silence|beep|tone", src.stem):
                continue
            rel = src.relative_to(work / f"x/usr/share/asterisk/sounds/{folder}").with_suffix(".wav")
            todo.append((src, dest / speaker / str(rel).replace("/", "-"), "gsm"))
            rows.append([todo[-1][1], speaker, "", language])
        return got, rows, todo
    return build


def ktuberling(work: Path, dest: Path):
    got = fetch(["ktuberling-data"], work, dest)
    rows, todo = [], []
    for lang, espeak in KTUBERLING_LANGS.items():
        for src in sorted(work.glob(f"x/usr/share/ktuberling/sounds/{lang}/*.ogg")):
            todo.append((src, dest / f"ktuberling-{lang}" / f"{src.stem}.wav", None))
            rows.append([todo[-1][1], f"ktuberling-{lang}", "", espeak])
    return got, rows, todo


def hedgewars(work: Path, dest: Path):
    got = fetch(["hedgewars-data"], work, dest)
    rows, todo = [], []
    for pack in HEDGEWARS_EN:
        speaker = f"hedgewars-{pack.lower().replace('_', '-')}"
        for src in sorted(work.glob(f"x/usr/share/games/hedgewars/Data/Sounds/voices/{pack}/*.ogg")):
            if not HEDGEWARS_NOT_WORDS.match(src.stem):
                todo.append((src, dest / speaker / f"{src.stem}.wav", None))
                rows.append([todo[-1][1], speaker, "", "en-us" if pack != "British" else "en-gb"])
    return got, rows, todo


SOURCES = {
    "fillets-cs": fillets_cs,
    "asterisk-fr": asterisk_fr,
    "armelle": asterisk_prompts("asterisk-prompt-fr-armelle", "fr", "asterisk-fr-armelle", "fr"),
    "es-co": asterisk_prompts("asterisk-prompt-es-co", "es", "asterisk-es-co-july", "es-419"),
    "ktuberling": ktuberling,
    "hedgewars": hedgewars,
}


def seconds(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, build in SOURCES.items():
        done = dest / f".{name}.done.json"
        if done.exists():
            print(f"{name}: already done")
            continue
        print(f"{name}: fetching", flush=True)
        with tempfile.TemporaryDirectory() as work:
            got, rows, todo = build(Path(work), dest)
            to_wav(todo)
        rows = [[str(r[0].relative_to(dest)), *r[1:], round(seconds(r[0]), 3)] for r in rows]
        done.write_text(json.dumps({"packages": got, "rows": rows}, ensure_ascii=False), encoding="utf-8")
        print(f"{name}: {len(rows)} clips")
    rows, packages = [], []
    for name in SOURCES:
        state = json.loads((dest / f".{name}.done.json").read_text(encoding="utf-8"))
        rows += [r for r in state["rows"] if r[-1] >= 0.2]  # a few files hold no audio
        packages += [(name, p, v, *LICENCES[name]) for p, v in state["packages"].items()]
    total: dict[str, float] = {}
    for r in rows:
        total[r[1]] = total.get(r[1], 0.0) + r[-1]
    keep = {s for s, t in total.items() if t >= MIN_SECONDS}
    with open(dest / "metadata.csv.part", "w", newline="", encoding="utf-8") as f:
        header = ["path", "speaker", "text", "language", "seconds"]
        csv.writer(f).writerows([header] + [r for r in rows if r[1] in keep])
    Path(dest / "metadata.csv.part").replace(dest / "metadata.csv")
    with open(dest / "LICENSES.md", "w", encoding="utf-8") as f:
        f.write("# Licences of the held-out recordings\n\nFor evaluation only; keep them out of every training set. "
                "The full copyright file of each package is in licenses/.\n\n"
                "| source | package | version | licence | attribution |\n|---|---|---|---|---|\n")
        f.writelines(f"| {' | '.join(p)} |\n" for p in packages)
    for s in sorted(total):
        texted = sum(1 for r in rows if r[1] == s and r[2])
        print(f"{s:28} {total[s]:7.1f} s  {texted:4d} with text  {'' if s in keep else '(too short, left out)'}")
    print(f"done: {dest} ({len(keep)} speakers)")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
