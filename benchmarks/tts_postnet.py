"""Does a tts model's diffusion post-net make its speech clearer and more natural, or less?

    pip install -e '.[bench]'
    python benchmarks/tts_postnet.py --json --base RUN_OR_CHECKPOINT [--temperatures 0,0.5,1]
        [--speakers asterisk-allison,fotaq-joe,fotaq-lola] [--sentences 4]

The base model's own English speakers say the first ``--sentences`` English test sentences
(benchmarks/data/sentences_en.txt) with the post-net left out, and then through it at each
``--temperature`` (the scale of its starting noise; 1 is the model's distribution, 0 its
deterministic path), the same seed and the same decoded frames each time. Each file is judged
as `voice_clone.py` judges clones: Whisper tiny.en's word error rate and DNSMOS OVRL
(judges.py). The global-variance post-filter (the model's ``variance_scale``) applies after
the post-net, as when speaking. Prints the mean of each per setting, and per speaker.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judges as J  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="tts run folder, checkpoint or shipped model with a post-net")
    ap.add_argument("--temperatures", default="0,1", help="comma-separated post-net temperatures (default 0,1)")
    ap.add_argument("--speakers", default="asterisk-allison,fotaq-joe,fotaq-lola")
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args(argv)
    from wavesmith.generate import load_model

    model, meta = load_model(args.base, "cpu")
    if getattr(model, "postnet", None) is None:
        sys.exit(f"{args.base} has no post-net (a tts model trained with postnet_channels > 0)")
    lines = (HERE / "data" / "sentences_en.txt").read_text().splitlines()
    texts = [t for t in lines if t.strip()][: args.sentences]
    settings = [("none", None)] + [(f"t{float(t):g}", float(t)) for t in args.temperatures.split(",")]
    rate = model.info.sample_rate
    result: dict = {"base": str(args.base), "step": meta["step"], "sentences": len(texts), "seed": args.seed,
                    "postnet_steps": model.config.postnet_steps, "variance_scale": model.config.variance_scale,
                    "settings": {}}
    for name, temperature in settings:
        per: dict[str, dict[str, float]] = {}
        for speaker in args.speakers.split(","):
            s = model.table_vector(model.info.speakers.index(speaker))
            wers, mos = [], []
            for text in texts:
                if temperature is not None:
                    model.config.postnet_temperature = temperature
                torch.manual_seed(args.seed)
                mel = model.synthesize([text], "en-us", s, postnet=temperature is not None)
                wave = model.to_wave(mel)[0].numpy()
                wers.append(J.wer(text, J.transcribe(wave, rate)))
                mos.append(J.dnsmos(wave, rate)["ovrl"])
            per[speaker] = {"wer": round(float(np.mean(wers)), 4), "dnsmos_ovrl": round(float(np.mean(mos)), 3)}
            if not args.json:
                print(name, speaker, per[speaker], file=sys.stderr, flush=True)
        result["settings"][name] = {
            "wer": round(float(np.mean([v["wer"] for v in per.values()])), 4),
            "dnsmos_ovrl": round(float(np.mean([v["dnsmos_ovrl"] for v in per.values()])), 3), "speakers": per}
    print(json.dumps(result, indent=None if args.json else 2))
    return result


if __name__ == "__main__":
    main()
