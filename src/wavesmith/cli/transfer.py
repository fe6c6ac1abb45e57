"""``wavesmith transfer``: play recordings' melodies with a DDSP run's timbre (see :mod:`wavesmith.transfer`)."""

from __future__ import annotations


def register(sub) -> None:
    """Add ``transfer`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "transfer",
        help="play the melody of audio files with the timbre a DDSP run learned",
        description="Track each file's f0 and loudness and play them with the synthesizer a DDSP run learned "
        "(wavesmith train DB --model ddsp): hum a tune and hear it in the run's timbre. Silence and unpitched "
        "noise are refused; a polyphonic input (a chord, a mix) is played as the one pitch the tracker follows, "
        "with a warning. Outputs are "
        "numbered, watermarked, C2PA-signed files in DIR, recorded in DIR/generated.jsonl with their source.",
    )
    p.add_argument("run", metavar="RUN", help="run directory or checkpoint file of a ddsp model")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files whose melody is played")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the numbered files and generated.jsonl")
    p.add_argument("--semitones", type=float, default=0.0, help="transpose the melody, -24..24 (default: 0)")
    p.add_argument("--loudness-db", type=float, default=0.0, help="add to the loudness contour, dB (default: 0)")
    p.add_argument("--label", help="timbre to play, for a run trained on labelled clips")
    p.add_argument("--tracker", default="dio-yin", choices=("harvest", "dio-yin", "dio", "yin"),
                   help="f0 tracker of the input: dio-yin (default) is as accurate as harvest on instrument notes "
                   "and about 12x faster; harvest follows speech more closely")
    p.add_argument("--format", default="wav", help="wav, flac, ogg, mp3 or aiff (default: wav)")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: the best available)")
    p.add_argument("--no-watermark", action="store_true", help="files without the inaudible watermark")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.transfer import TransferSettings, transfer

    settings = TransferSettings(semitones=args.semitones, loudness_db=args.loudness_db, label=args.label,
                                tracker=args.tracker)
    for path in transfer(args.run, args.audio, args.out, settings, format=args.format, device=args.device,
                         watermark=not args.no_watermark):
        print(path)
    return 0
