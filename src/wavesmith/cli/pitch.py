"""``wavesmith pitch``: move pitch keeping timbre, or formants keeping pitch (see :mod:`wavesmith.pitch`)."""

from __future__ import annotations


def register(sub) -> None:
    """Add ``pitch`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "pitch",
        help="change the pitch of audio files keeping timbre and duration, or shift their formants",
        description="Split each file into excitation (f0) and spectral envelope with the WORLD vocoder, move "
        "one, and resynthesise: --semitones changes the pitch and keeps the timbre and the duration; "
        "--formants stretches the envelope (a smaller or larger voice) and keeps the pitch. One pitch is "
        "followed: a chord or a mix is processed with a one-line warning. Outputs are "
        "numbered, watermarked, C2PA-signed files in DIR, each recorded in DIR/generated.jsonl with its "
        "source file and the settings.",
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files to process")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the numbered files and generated.jsonl")
    p.add_argument("--semitones", type=float, default=0.0, help="pitch change, -24..24 (default: 0)")
    p.add_argument("--formants", type=float, default=0.0,
                   help="formant shift in semitones, -12..12; positive sounds smaller (default: 0)")
    p.add_argument("--tracker", default="dio-yin", choices=("harvest", "dio-yin", "dio", "yin"),
                   help="f0 tracker: dio-yin (default) shifts at about 20x real time, as accurately as harvest on "
                   "instrument notes; harvest is 4x slower and follows speech more closely")
    p.add_argument("--format", default="wav", help="wav, flac, ogg, mp3 or aiff (default: wav)")
    p.add_argument("--no-watermark", action="store_true", help="files without the inaudible watermark")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.pitch import PitchSettings, pitch_files

    settings = PitchSettings(semitones=args.semitones, formants=args.formants, tracker=args.tracker)
    for path in pitch_files(args.audio, args.out, settings, format=args.format, watermark=not args.no_watermark):
        print(path)
    return 0
