"""``wavesmith train`` and ``wavesmith generate``: parse, call the engine or generate, print."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from wavesmith.errors import WavesmithError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")


def parse_duration(text: str) -> float:
    """``2h``, ``90m``, ``1h30m``, ``45s`` or plain seconds, as seconds."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or _DURATION.sub("", text.strip().lower()).strip():
        raise WavesmithError(f"--time takes a duration like 2h, 90m, 1h30m or 45s, not {text!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
    seconds = sum(float(v) * scale[u] for v, u in parts)
    if seconds <= 0:
        raise WavesmithError(f"--time must be longer than 0, not {text!r}")
    return seconds


def register(sub) -> None:
    """Add ``train`` and ``generate`` to the ``wavesmith`` parser."""
    p = sub.add_parser(
        "train", help="train a model on a clip database",
        description="Train a model on a clip database into a run folder (config.toml, checkpoints, metrics.jsonl, "
        "previews). Under torchrun (torchrun --nproc_per_node=K -m wavesmith train DB --model M --run-dir R ...) every "
        "process trains on its share of the batches and rank 0 writes.",
    )
    p.add_argument("db", help="clip database folder (wavesmith db create)")
    p.add_argument("--model", help="model name (wavenet, wavegan) or package.module:Class; optional with --resume")
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="run folder to create (or to continue with --resume); write --run-dir under torchrun, "
                   "whose own parser takes --run for its --run-path")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file with [model] and [train] tables")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field (model.KEY, train.KEY or a bare KEY); repeatable")
    p.add_argument("--steps", type=int, help="total steps of the run (a resumed run continues up to N)")
    p.add_argument("--time", help="stop this invocation after a duration (2h, 90m, 45s), saving a checkpoint")
    p.add_argument("--resume", action="store_true", help="continue the run in --run from its newest checkpoint")
    p.add_argument("--init", metavar="RUN_OR_MODEL",
                   help="fine-tune: start a new run from the weights and model config of a run, checkpoint or "
                   "shipped model (labels matched by name; --model may be left out)")
    p.add_argument("--device", help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, help="seed of the run (train.seed)")
    p.add_argument("--batch-size", type=int, help="clips per batch and process (train.batch_size)")
    p.add_argument("--workers", type=int, help="data loader workers per process (train.workers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_train)

    g = sub.add_parser(
        "generate", help="generate marked audio files from a trained run",
        description="Sample a run's (EMA) model into numbered files plus generated.jsonl; every file carries a "
        "watermark, and C2PA Content Credentials where the format allows (wav, flac; not ogg), unless --no-watermark. "
        "A run folder gives its best.pt (lowest validation loss of the EMA weights; the newest checkpoint when the "
        "run has no best.pt); --checkpoint last gives its newest checkpoint.",
    )
    g.add_argument("run", metavar="RUN_OR_MODEL",
                   help="run folder (its best.pt, see --checkpoint), checkpoint file, or a shipped model's name "
                   "(see `wavesmith models`; an existing folder or file of that name wins)")
    g.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="which checkpoint of a run folder: best (best.pt, the default) or last (the newest)")
    g.add_argument("-n", type=int, default=16, help="number of files (default 16)")
    g.add_argument("--seconds", type=float, default=None,
                   help="length of each file (default 2, or the model's longest clip if shorter)")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--label", help="class label to generate (one of the model's labels); several as kick,snare "
                   "or 'all' take turns, one file each")
    g.add_argument("--speaker", help="speaker to generate (one of the database's speakers)")
    g.add_argument("--seed", type=int, help="seed (random when omitted; recorded either way)")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature (default 1); 0 takes the most likely value at each step (wavenet)")
    g.add_argument("--batch-size", type=int, help="files per model call (default 1: each file its own seed)")
    g.add_argument("--format", default="wav", choices=["wav", "flac", "ogg"], help="file format (default wav)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--prompt", metavar="FILE", help="audio to continue (models that support prompts)")
    g.add_argument("--mel-from", metavar="FILE", help="audio whose mel spectrogram drives a vocoder model")
    g.add_argument("--steps", type=int, help="diffusion models: sampling steps (default: the model's, at most 25)")
    g.add_argument("--guidance", type=float,
                   help="diffusion models: classifier-free guidance scale >= 0 (1 = plain conditional; default: the "
                   "model's, 4 for new mel-diffusion runs, applied at the noise levels of its guidance_logsnr)")
    g.add_argument("--sampler", choices=["dpm++", "ddim", "ddpm"], help="diffusion models: sampler (default dpm++)")
    g.add_argument("--vocoder", metavar="NAME|RUN",
                   help="mel-domain models: decode with this vocoder instead of the model's own (a shipped name "
                   "from `wavesmith models`, or a hifigan / distilled-vocoder run)")
    g.add_argument("--trim", action=argparse.BooleanOptionalAction, default=None,
                   help="cut each file where its sound has died away (default: on for one-shot models such as "
                   "drums; a watermarked file keeps at least 1 s, a shorter clip padded with silence to carry "
                   "the mark)")
    g.add_argument("--no-watermark", action="store_true", help="write files without a watermark (recorded; warned)")
    g.add_argument("--plugin", action="append", default=[], metavar="MODULE:CLASS",
                   help="trust and import this plug-in model, when the checkpoint names it (a checkpoint alone "
                   "never makes wavesmith import code); repeatable")
    g.add_argument("--json", action="store_true", help="print the list of files as JSON")
    g.set_defaults(func=_generate)


def _train(args: argparse.Namespace) -> int:
    from wavesmith.train import train

    sets = list(args.sets)
    for flag, key in (("steps", "steps"), ("seed", "seed"), ("batch_size", "batch_size"), ("workers", "workers")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"train.{key}={value}")
    if args.compile:
        sets.append("train.compile=true")
    summary = train(
        args.db, args.model, args.run, config_file=args.config, sets=sets,
        time_limit=parse_duration(args.time) if args.time else None, resume=args.resume, device=args.device,
        progress=not args.no_progress and sys.stderr.isatty(), init=args.init,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['model']}: step {summary['step']}/{summary['steps_total']} ({summary['stopped']}) "
              f"in {summary['seconds']} s on {summary['device']} x{summary['processes']}")
        if summary["checkpoint"]:
            print(f"checkpoint: {summary['checkpoint']}")
        if summary["best_valid_loss"] is not None:
            print(f"best validation loss: {summary['best_valid_loss']:.5g}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from wavesmith import models
    from wavesmith.generate import generate

    for name in args.plugin:
        if ":" not in name:
            raise WavesmithError(f"--plugin takes MODULE:CLASS, not {name!r}")
        models.register(name, name)

    paths = generate(
        args.run, args.out, n=args.n, seconds=args.seconds, label=args.label, speaker=args.speaker, seed=args.seed,
        temperature=args.temperature, batch_size=args.batch_size, format=args.format, device=args.device,
        prompt=args.prompt, mel_from=args.mel_from, watermark=not args.no_watermark, checkpoint=args.checkpoint,
        options={"steps": args.steps, "guidance": args.guidance, "sampler": args.sampler,
                 "vocoder": args.vocoder}, trim=args.trim,
    )
    if args.json:
        print(json.dumps([str(p) for p in paths]))
    else:
        print(f"wrote {len(paths)} files to {args.out} (described in {args.out}/generated.jsonl)")
    return 0
