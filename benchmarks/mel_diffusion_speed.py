"""How fast does a mel-diffusion model make audio, vocoder included?

    python benchmarks/mel_diffusion_speed.py --json [--model drums] [--batch 16] [--seconds 1] [--repeats 3]
                                                   [--vocoder NAME|RUN]

Times ``model.sample`` for a batch of one-second clips with the model's defaults (25
DPM-Solver++ steps, guidance as one batched call, the universal HiFi-GAN V1 decoding on
its CPU path, :mod:`wavesmith.vocoder`; ``--vocoder`` decodes with another vocoder, such as
a distilled-vocoder run), split into the diffusion part and the vocoder, and
reports medians in multiples of real time. In the same run, interleaved, it times a plain
reference for the same clips: the textbook pipeline (DDPM ancestral sampling over 200
steps, the conditional and unconditional predictions as two calls, the vocoder one clip
at a time under ``no_grad``, 1-D and fp32), and prints the ratio (``generate_vs_reference``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from wavesmith import diffusion as D
from wavesmith import vocoder as V
from wavesmith.generate import load_model


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="drums", help="shipped model name or run folder (default drums)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--vocoder", help="decode with this vocoder (a shipped name or a vocoder run; default: the "
                    "model's own); the textbook reference keeps the model's own")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_model(args.model, "cpu")
    voc = V.load(args.vocoder or model.config.vocoder)
    reference_voc = V.load(model.config.vocoder)
    n = args.batch
    labels = torch.arange(n) % max(1, len(model.info.labels)) if model.info.labels else None
    conditions = {"label": labels} if labels is not None else None
    audio_s = n * args.seconds

    def ours_diffusion():
        return model.sample_frames(n, conditions, seed=0)

    def reference():
        def denoise(x, t, conditioned):
            return model.denoise(x, t, labels if conditioned else None)

        def two_calls(x, t):
            cond, uncond = denoise(x, t, True), denoise(x, t, False)
            return uncond + model.config.guidance * (cond - uncond)

        with torch.no_grad():
            mel = D.sample(two_calls, (n, model.spec.n_mels, model.frames), model.schedule, steps=200, sampler="ddpm",
                           prediction=model.config.prediction, generator=torch.Generator().manual_seed(0))
            mel = mel * model.config.mel_scale + model.config.mel_mean
            for i in range(n):
                reference_voc.generator(mel[i:i + 1])

    mel = ours_diffusion()
    diffusion_t, vocoder_t, total_t, reference_t = [], [], [], []
    for _ in range(args.repeats):
        diffusion_t.append(_time(ours_diffusion))
        vocoder_t.append(_time(lambda: voc(mel)))
        total_t.append(_time(lambda: model.sample(n, args.seconds, conditions, seed=0, vocoder=args.vocoder)))
        reference_t.append(_time(reference))
    window = model.max_seconds * n  # the diffusion and the vocoder make whole windows
    med = statistics.median
    result = {
        "model": meta["path"], "vocoder": voc.name, "batch": n, "seconds": args.seconds,
        "threads": torch.get_num_threads(),
        "sample_steps": model.config.sample_steps, "window_seconds": round(model.max_seconds, 3),
        "generate_x_realtime": round(audio_s / med(total_t), 2),
        "generate_window_x_realtime": round(window / med(total_t), 2),
        "diffusion_x_realtime": round(window / med(diffusion_t), 2),
        "vocoder_x_realtime": round(window / med(vocoder_t), 2),
        "reference_x_realtime": round(audio_s / med(reference_t), 2),
        "generate_vs_reference": round(med(reference_t) / med(total_t), 2),
        "seconds_generate": [round(t, 3) for t in total_t], "seconds_reference": [round(t, 3) for t in reference_t],
    }
    print(json.dumps(result, indent=2) if args.json else result)


if __name__ == "__main__":
    main()
