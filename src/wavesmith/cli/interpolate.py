"""``wavesmith interpolate``: a morph between two generated sounds (see :mod:`wavesmith.interpolate`)."""

from __future__ import annotations


def register(sub) -> None:
    """Add ``interpolate`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "interpolate",
        help="write a morph between the sounds of two seeds (WaveGAN runs)",
        description="Generate STEPS clips on the path between the latents of SEED_A and SEED_B: the first "
        "and last are the clips 'wavesmith generate --seed' writes for those seeds, the ones between "
        "morph from one to the other. Needs a model with a latent space (--model wavegan).",
    )
    p.add_argument("run", metavar="RUN", help="run directory or checkpoint file")
    p.add_argument("--from", dest="seed_a", type=int, required=True, metavar="SEED_A", help="seed of the first sound")
    p.add_argument("--to", dest="seed_b", type=int, required=True, metavar="SEED_B", help="seed of the last sound")
    p.add_argument("--steps", type=int, default=8, help="clips on the path, both ends included (default: 8)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the numbered files and generated.jsonl")
    p.add_argument("--label", help="class to keep along the path (conditional models; default: SEED_A's)")
    p.add_argument("--to-label", help="class at the end of the path: also morph between two classes")
    p.add_argument(
        "--method",
        choices=("slerp", "linear"),
        default="slerp",
        help="path between the latents: slerp keeps their typical norm (default), linear is a straight line",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="scale of both latents (default: 1)")
    p.add_argument("--format", default="wav", help="wav, flac, ogg, mp3 or aiff (default: wav)")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: the best available)")
    p.add_argument("--no-watermark", action="store_true", help="files without the inaudible watermark")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from wavesmith.interpolate import interpolate

    paths = interpolate(
        args.run,
        args.seed_a,
        args.seed_b,
        args.steps,
        args.out,
        label=args.label,
        to_label=args.to_label,
        method=args.method,
        temperature=args.temperature,
        format=args.format,
        device=args.device,
        watermark=not args.no_watermark,
    )
    for path in paths:
        print(path)
    return 0
