"""``wavesmith models`` (the shipped models) and ``wavesmith vocode`` (resynthesis through a vocoder)."""

from __future__ import annotations

import json


def register(sub) -> None:
    """Add ``models`` and ``vocode`` to the ``wavesmith`` parser."""
    p = sub.add_parser("models", help="list the models and vocoders that ship with wavesmith",
                       description="The trained models inside the package (use a name with `wavesmith generate`) "
                       "and the vocoders (`--vocoder NAME` of vocode, generate and say).")
    p.add_argument("--json", action="store_true", help="print every model's card as JSON")
    p.set_defaults(func=_models)

    p = sub.add_parser("vocode", help="resynthesize audio files through a vocoder (analysis, then synthesis)",
                       description="Turn each file into log-mel frames and back through a vocoder: the best any "
                       "mel-domain model decoding through it can sound. Outputs keep each source's rate and "
                       "length (mono) and are marked and signed like every output.")
    p.add_argument("files", metavar="AUDIO", nargs="+", help="audio files to resynthesize")
    p.add_argument("--out", required=True, help="output folder (must not already hold generated files)")
    p.add_argument("--vocoder", default=None,
                   help="a shipped vocoder (listed by `wavesmith models`: universal, the default, or lj) or "
                   "a hifigan or distilled-vocoder run folder or checkpoint")
    p.add_argument("--format", default="wav", choices=["wav", "flac", "ogg"], help="file format (default wav)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.set_defaults(func=_vocode)


def _models(args) -> int:
    from wavesmith import shipped
    from wavesmith import vocoder as V

    cards = [shipped.card(n) for n in shipped.names()]
    vocoders = [{"name": n, "licence": s.licence, "about": s.about} for n, s in V.SHIPPED.items()]
    if args.json:
        print(json.dumps({"models": cards, "vocoders": vocoders}, indent=2))
        return 0
    print("models (wavesmith generate NAME ...; voices: wavesmith say; timbres: wavesmith transfer):")
    for c in cards:
        if c["model"] == "ddsp":  # a timbre: `transfer NAME AUDIO...` plays a melody with it
            print(f"  {c['name']:<12} {c['model']}, {c.get('summary', '')} (wavesmith transfer {c['name']} AUDIO...)")
        elif c.get("speakers"):  # a voice model: `say` speaks in its speakers' voices
            print(f"  {c['name']:<12} {c['model']}, {c.get('summary', '')} speakers: {len(c['speakers'])}, "
                  f"languages: {', '.join(c.get('languages', []))}")
        else:
            labels = ", ".join(c.get("labels", [])) or "none"
            print(f"  {c['name']:<12} {c['model']}, {c.get('summary', '')} labels: {labels}")
        for credit in c.get("credits", []):  # some recordings' licences ask that users see their authors
            print(f"  {'':<12} credit: {credit}")
    if not cards:
        print("  (none)")
    print("vocoders (--vocoder NAME of vocode, and of generate and say for mel-domain models):")
    for v in vocoders:
        print(f"  {v['name']:<12} {v['about']} ({v['licence']})")
    return 0


def _vocode(args) -> int:
    from wavesmith import vocoder as V
    from wavesmith.vocode import vocode

    paths = vocode(args.files, args.out, vocoder=args.vocoder or V.DEFAULT, format=args.format, device=args.device)
    print(f"wrote {len(paths)} files to {args.out} (described in {args.out}/generated.jsonl)")
    return 0
