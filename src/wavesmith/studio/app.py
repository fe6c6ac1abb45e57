"""The studio's page: one Gradio tab per job, each a thin face over :mod:`wavesmith.studio.api`.

Handlers only convert between Gradio's values and the API's: a :class:`WavesmithError`
becomes a message in the tab's status line, any other exception a one-line note (its
traceback goes to the server's terminal), and the server keeps serving either way. How
the page is served (offline, inside the root) is :mod:`wavesmith.studio.server`.
"""

from __future__ import annotations

import functools
import html
import io
import json
import os
import sys
import traceback
from pathlib import Path

from wavesmith.errors import WavesmithError
from wavesmith.studio import api
from wavesmith.studio.training import Trainer

PLAYERS = 8  # players and spectrograms shown per job (the download holds every file)


def _image(png: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(png))


def _refusing(others: int):
    """For a handler whose first output is its tab's status line: any exception it raises becomes a
    message there (see :func:`_note`), and its ``others`` other outputs keep what they show."""
    def wrap(fn):
        @functools.wraps(fn)  # Gradio reads the signature (a gr.Progress default asks for a progress bar)
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - every failure is a message in the page; the server goes on
                import gradio as gr

                return _note(e) if others == 0 else (_note(e), *[gr.skip()] * others)
        return handler
    return wrap


def _note(e: Exception) -> str:
    """The status line for a failed request: the user's mistake in words, or a pointer to the server log."""
    if isinstance(e, WavesmithError):
        return f"**Refused:** {e}"
    traceback.print_exception(e, file=sys.stderr)
    return f"**Error:** {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''} " \
           "(a bug in wavesmith; the details are in the server's terminal)"


def build(root: str | os.PathLike, trainer: Trainer | None = None):
    """The page for ``root`` as a ``gradio.Blocks`` (not launched)."""
    import gradio as gr
    import pandas as pd

    root = Path(root).resolve()
    trainer = trainer or Trainer(root)
    skip = gr.skip

    def slots(n: int):
        """``n`` (player, spectrogram) pairs, hidden until filled."""
        pairs = []
        for i in range(n):
            with gr.Row(visible=False, elem_classes=["clip-slot"]) as row:
                a = gr.Audio(label=f"clip {i}", type="filepath", interactive=False, scale=2)
                im = gr.Image(label="spectrogram", type="pil", interactive=False, scale=3, height=140)
            pairs.append((row, a, im))
        return pairs

    def fill(pairs, clips: list[dict]) -> list:
        """Updates for ``slots``: each clip's file (or (rate, samples)) and spectrogram."""
        out = []
        for i in range(len(pairs)):
            if i < len(clips):
                c = clips[i]
                audio = c["file"] if "file" in c else (c["sample_rate"], c["audio"].T)
                out += [gr.Row(visible=True), gr.Audio(value=audio, label=c.get("title", c.get("name"))),
                        _image(c["spectrogram_png"])]
            else:
                out += [gr.Row(visible=False), None, None]
        return out

    def flat(pairs):
        return [x for pair in pairs for x in pair]

    # Gradio's cached copies of served files older than a day are deleted, hourly
    with gr.Blocks(title="wavesmith studio", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as page:
        gr.Markdown(f"# wavesmith studio\nFiles are read and written under `{root}` only; paths below are "
                    "relative to it. Everything the page makes goes to `studio/` there.", latex_delimiters=[])

        # --- Database -------------------------------------------------------------------------
        with gr.Tab("Database", id="database"):
            with gr.Row():
                dbs = api.find(root, "db")
                db_pick = gr.Dropdown(label="database", choices=dbs, value=dbs[0] if dbs else None, elem_id="db-pick",
                                      allow_custom_value=True)
                db_refresh = gr.Button("Refresh list", scale=0)
            db_status = gr.Markdown(elem_id="db-status", latex_delimiters=[])
            with gr.Row():
                db_counts = gr.Dataframe(label="clips per split, label and speaker", interactive=False)
                db_hist = gr.BarPlot(x="duration", y="clips", title="clip durations", sort=None)
            db_errors = gr.Dataframe(label="skipped inputs and their reasons", interactive=False)
            with gr.Row():
                db_split = gr.Radio(["any", "train", "valid", "test"], value="any", label="split")
                db_listen = gr.Button("Listen to 3 random clips")
            db_slots = slots(3)

        @_refusing(3)
        def db_show(db):
            s = api.database_summary(root, db)
            i = s["info"]
            rows = [["split", k, v] for k, v in i["splits"].items()] + [["label", k, v] for k, v in i["labels"].items()]
            rows += [["speaker", k, v] for k, v in i["speakers"].items()]
            durations = i["duration_histogram"]
            hist = pd.DataFrame({"duration": list(durations), "clips": list(durations.values())})
            errors = pd.DataFrame(s["errors"] or [{"path": "", "reason": "(none)", "time": ""}])
            text = (f"**{db}**: {i['clips']} clips, {i['hours'] * 60:.2f} min of audio at {i['sample_rate']} Hz, "
                    f"{i['channels']} channel(s); {i['errors']} skipped input(s); {i['duplicates']} duplicate(s).")
            return text, pd.DataFrame(rows, columns=["by", "name", "clips"]), hist, errors

        @_refusing(3 * len(db_slots))
        def db_random(db, split):
            clips = api.random_clips(root, db, 3, None if split == "any" else split)
            for c in clips:
                c["title"] = f"#{c['id']} {c['label'] or ''} ({c['split']}, {c['duration']} s, {c['source']})"
            return ["", *fill(db_slots, clips)]

        db_pick.change(db_show, db_pick, [db_status, db_counts, db_hist, db_errors])
        page.load(lambda db: db_show(db) if db else (skip(),) * 4, db_pick, [db_status, db_counts, db_hist, db_errors])
        db_refresh.click(lambda: gr.Dropdown(choices=api.find(root, "db")), None, db_pick)
        db_listen.click(db_random, [db_pick, db_split], [db_status, *flat(db_slots)])

        # --- Generate -------------------------------------------------------------------------
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                choices = api.models(root)
                g_model = gr.Dropdown(label="model (shipped, or a run under the root)", choices=choices,
                                      value=choices[0] if choices else None,
                                      elem_id="g-model",
                                      allow_custom_value=True)
                g_label = gr.Dropdown(elem_id="g-label", label="label", choices=[], allow_custom_value=True)
                g_speaker = gr.Dropdown(label="speaker", choices=[], allow_custom_value=True)
            with gr.Row():
                g_n = gr.Number(label="count", value=4, precision=0, minimum=1, maximum=64, elem_id="g-n")
                # optional figures are text: an empty box means "the model's default", which 0 cannot say
                g_seconds = gr.Textbox(label="seconds", placeholder="the model's default")
                g_seed = gr.Textbox(label="seed", placeholder="random", elem_id="g-seed")
                g_temp = gr.Number(label="temperature", value=1.0, min_width=100)
                g_steps = gr.Textbox(label="diffusion steps", placeholder="the model's", elem_id="g-steps",
                                     min_width=100)
                g_guidance = gr.Textbox(label="guidance", placeholder="the model's", min_width=100)
                g_vocoder = gr.Dropdown(label="vocoder (mel models; empty: the model's)", value="",
                                        choices=["", *api.vocoders()], allow_custom_value=True, elem_id="g-vocoder",
                                        min_width=100)
            g_go = gr.Button("Generate", variant="primary", elem_id="g-go")
            g_status = gr.Markdown(elem_id="g-status", latex_delimiters=[])
            g_slots = slots(PLAYERS)
            g_files = gr.File(label="download: the files and generated.jsonl", file_count="multiple",
                              interactive=False, elem_id="g-files")

        @_refusing(2)
        def g_conditions(model):
            c = api.model_conditions(root, model)
            opts = ", ".join(c["options"]) or "none"
            return (f"{model}: a {c['model']} model at {c['sample_rate']} Hz; sampler options: {opts}",
                    gr.Dropdown(choices=[""] + c["labels"] + (["all"] if c["labels"] else []), value=""),
                    gr.Dropdown(choices=[""] + c["speakers"], value=""))

        @_refusing(1 + 3 * len(g_slots))
        def g_run(model, label, speaker, n, seconds, seed, temp, steps, guidance, vocoder,
                  progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - how Gradio asks for a progress bar
            r = api.generate_clips(root, model, n=n or 1, seconds=_number("seconds", seconds), label=label,
                                   speaker=speaker, seed=_number("seed", seed, int),
                                   temperature=temp if temp is not None else 1.0,
                                   steps=_number("diffusion steps", steps, int),
                                   guidance=_number("guidance", guidance), progress=True, vocoder=vocoder)
            seeds = ", ".join(str(x["seed"]) for x in r["records"][:PLAYERS])
            text = f"wrote {len(r['files'])} file(s) to `{r['folder']}` (seeds {seeds})" + _warnings(r)
            return [text, r["files"] + [r["records_file"]]] + fill(g_slots, r["clips"])

        g_model.change(g_conditions, g_model, [g_status, g_label, g_speaker])
        page.load(lambda m: g_conditions(m) if m else (skip(),) * 3, g_model, [g_status, g_label, g_speaker])
        g_go.click(g_run, [g_model, g_label, g_speaker, g_n, g_seconds, g_seed, g_temp, g_steps, g_guidance,
                           g_vocoder],
                   [g_status, g_files, *flat(g_slots)])

        # --- Voice ----------------------------------------------------------------------------
        with gr.Tab("Voice", id="voice"):
            on = api.voice_available()
            gr.Markdown("Clone a voice from about 15 s of one person speaking (with their consent), then type text "
                        "and hear it in that voice or a speaker of the base model. Without a shipped base speech "
                        "model, train one (model tts) and choose its run as the base." if on else api.VOICE_NEEDS,
                        latex_delimiters=[], elem_id="v-about")
            with gr.Group(visible=on):
                with gr.Row():
                    v_in = gr.Audio(label="about 15 s of the speaker", sources=["upload", "microphone"],
                                    type="filepath")
                    with gr.Column():
                        v_consent = gr.Textbox(label="the speaker's consent, in your words")
                        v_transcript = gr.Textbox(label="what they say (optional)")
                        v_name = gr.Textbox(label="voice name", value="my-voice")
                        bases = api.voice_bases(root) if on else []
                        v_base = gr.Dropdown(label="base speech model", choices=bases, allow_custom_value=True,
                                             value=bases[0] if bases else None)
                v_clone = gr.Button("Clone")
                with gr.Row():
                    v_text = gr.Textbox(label="text to say", lines=3, scale=3, elem_id="v-text")
                    with gr.Column():
                        v_voice = gr.Dropdown(label="voice: a cloned voice, or a speaker of the base model",
                                              choices=api.voices(root) if on else [], allow_custom_value=True,
                                              elem_id="v-voice")
                        v_speed = gr.Slider(0.25, 4, value=1, step=0.05, label="speed")
                        v_pitch = gr.Slider(-12, 12, value=0, step=0.5, label="pitch (semitones)")
                        v_vocoder = gr.Dropdown(label="vocoder (empty: the base model's)", value="",
                                                choices=["", *api.vocoders()], allow_custom_value=True,
                                                elem_id="v-vocoder")
                v_say = gr.Button("Say", elem_id="v-say")
            v_status = gr.Markdown(latex_delimiters=[], elem_id="v-status")
            v_slots = slots(PLAYERS if on else 0)

        @_refusing(1)
        def v_do_clone(path, consent, transcript, name, base):
            r = api.voice_clone(root, path, consent, name, base=base, transcript=transcript)
            how = f"fine-tuned {r['steps']} steps" if r.get("fine_tuned") else "speaker encoder only"
            return (f"cloned `{r['voice']}` from {r.get('speech_seconds', 0):.1f} s of speech ({how})",
                    gr.Dropdown(choices=api.voices(root), value=r["voice"]))

        @_refusing(3 * len(v_slots))
        def v_do_say(text, which, base, speed, pitch, vocoder):
            r = api.voice_say(root, text, which, base=base, speed=speed, pitch=pitch, vocoder=vocoder)
            return [f"wrote {len(r['files'])} file(s) to `{r['folder']}`", *fill(v_slots, r["clips"])]

        v_clone.click(v_do_clone, [v_in, v_consent, v_transcript, v_name, v_base], [v_status, v_voice])
        v_say.click(v_do_say, [v_text, v_voice, v_base, v_speed, v_pitch, v_vocoder], [v_status, *flat(v_slots)])

        # --- Transform ------------------------------------------------------------------------
        with gr.Tab("Transform", id="transform"):
            t_in = gr.Audio(label="a clip to transform", sources=["upload", "microphone"], type="filepath",
                            elem_id="t-in")
            with gr.Row():
                with gr.Column():
                    gr.Markdown("**Pitch** (WORLD; no training): move the pitch and keep the timbre, or the formants "
                                "and keep the pitch.", latex_delimiters=[])
                    t_semi = gr.Slider(-24, 24, value=0, step=0.5, label="semitones")
                    t_form = gr.Slider(-12, 12, value=0, step=0.5, label="formants (semitones)")
                    t_tracker = gr.Radio(["dio-yin", "harvest", "dio", "yin"], value="dio-yin", label="f0 tracker")
                    t_pitch = gr.Button("Shift pitch")
                with gr.Column():
                    gr.Markdown("**Timbre** (a DDSP run): play the clip's melody with the timbre the run learned.",
                                latex_delimiters=[])
                    timbres = api.timbres(root)
                    t_run = gr.Dropdown(label="timbre (shipped, or a DDSP run)", choices=timbres,
                                        value=timbres[0] if timbres else None, allow_custom_value=True)
                    t_tsemi = gr.Slider(-24, 24, value=0, step=1, label="transpose (semitones)")
                    t_loud = gr.Slider(-40, 40, value=0, step=1, label="loudness (dB)")
                    t_label = gr.Textbox(label="timbre label (runs trained on several)")
                    t_transfer = gr.Button("Transfer timbre", elem_id="t-transfer")
            t_status = gr.Markdown(elem_id="t-status", latex_delimiters=[])
            t_slots = slots(1)
            t_files = gr.File(label="download", file_count="multiple", interactive=False)

        def t_done(r):
            files = r["files"] + [r["records_file"]]
            return [f"wrote `{r['folder']}`" + _warnings(r), files] + fill(t_slots, r["clips"])

        @_refusing(1 + 3 * len(t_slots))
        def t_do_pitch(path, semi, form, tracker):
            return t_done(api.pitch_upload(root, path, semi, form, tracker))

        @_refusing(1 + 3 * len(t_slots))
        def t_do_transfer(path, run, semi, loud, label):
            return t_done(api.transfer_upload(root, run, path, semi, loud, label))

        t_pitch.click(t_do_pitch, [t_in, t_semi, t_form, t_tracker], [t_status, t_files, *flat(t_slots)])
        t_transfer.click(t_do_transfer, [t_in, t_run, t_tsemi, t_loud, t_label], [t_status, t_files, *flat(t_slots)])

        # --- Train ----------------------------------------------------------------------------
        with gr.Tab("Train", id="train"):
            from wavesmith import models as M

            with gr.Row():
                r_db = gr.Dropdown(label="database", choices=dbs, value=dbs[0] if dbs else None, elem_id="r-db",
                                   allow_custom_value=True)
                r_model = gr.Dropdown(label="model", choices=M.names(), value="mel-diffusion", elem_id="r-model")
                r_run = gr.Dropdown(label="run folder (a new one, or a run to resume or watch)", value=None,
                                    choices=api.find(root, "run"), allow_custom_value=True, elem_id="r-run")
            with gr.Row():
                r_steps = gr.Textbox(label="steps", placeholder="the config's", elem_id="r-steps")
                r_init = gr.Dropdown(label="fine-tune from (optional)", choices=[""] + api.models(root), value="",
                                     allow_custom_value=True)
                r_sets = gr.Textbox(label="settings, key=value a line (train --set)", lines=2, elem_id="r-sets")
                r_resume = gr.Checkbox(label="resume the run")
            with gr.Row():
                r_start = gr.Button("Start", variant="primary", elem_id="r-start")
                r_stop = gr.Button("Stop (saves a checkpoint, like Ctrl+C)", variant="stop", elem_id="r-stop")
            r_status = gr.Markdown(elem_id="r-status", latex_delimiters=[])
            r_progress = gr.Markdown(latex_delimiters=[], elem_id="r-progress")
            r_curve = gr.LinePlot(x="step", y="value", color="series", title="losses", height=260)
            with gr.Row():
                r_preview = gr.Audio(label="latest preview", type="filepath", interactive=False)
                r_preview_png = gr.Image(label="its spectrogram", type="filepath", interactive=False, height=140)
            r_log = gr.Textbox(label="output of the run", lines=6, max_lines=12, interactive=False)
            r_timer = gr.Timer(2.0)

        @_refusing(0)
        def r_do_start(db, model, run, steps, init, sets, resume):
            lines = [s.strip() for s in (sets or "").splitlines() if s.strip()]
            return trainer.start(db, run, model=None if resume else model, steps=_number("steps", steps, int),
                                 resume=resume, init=init or None, sets=lines)

        r_do_stop = _refusing(0)(trainer.stop)

        def r_watch(run):
            try:
                s = trainer.status(run) if run else None
            except Exception:  # noqa: BLE001 - no such run (yet): the next tick looks again
                s = None
            if s is None:
                return (skip(),) * 5
            total = f"/{s['steps']}" if s["steps"] else ""
            figs = ", ".join(f"{k} {v:.4g}" for k, v in s["figures"].items()
                             if isinstance(v, float) and k not in ("lr_factor",))
            eta = f", about {s['eta_s']} s left" if s["eta_s"] is not None else ""
            text = f"**{s['state']}**: step {s['step']}{total}{eta}" + (f" ({figs})" if figs else "")
            rows = [{"step": m["step"], "value": v, "series": f"{m['kind']} {k}"} for m in s["metrics"]
                    if m.get("kind") in ("train", "valid") for k, v in m.items() if k.endswith("loss")
                    and isinstance(v, (int, float))]
            curve = pd.DataFrame(rows, columns=["step", "value", "series"])
            return text, curve, s["preview"], s["preview_png"], "\n".join(s["log"][-40:])

        r_start.click(r_do_start, [r_db, r_model, r_run, r_steps, r_init, r_sets, r_resume], r_status)
        r_stop.click(r_do_stop, r_run, r_status)
        r_timer.tick(r_watch, r_run, [r_progress, r_curve, r_preview, r_preview_png, r_log], show_progress="hidden")

        # --- Evaluate -------------------------------------------------------------------------
        with gr.Tab("Evaluate", id="evaluate"):
            with gr.Row():
                e_folder = gr.Dropdown(label="folder of generated files", choices=api.find(root, "generated"),
                                       allow_custom_value=True)
                e_db = gr.Dropdown(label="database", choices=dbs, value=dbs[0] if dbs else None,
                                   allow_custom_value=True)
                e_split = gr.Radio(["test", "valid", "train"], value="test", label="compare with split")
                e_seconds = gr.Number(value=0, minimum=0, label="only the real clips' first seconds (0: whole clips)",
                                      info="like with like for models that make the first seconds of one-shots")
                e_refresh = gr.Button("Refresh lists", scale=0)
            e_go = gr.Button("Evaluate", variant="primary", elem_id="e-go")
            e_status = gr.Markdown(elem_id="e-status", latex_delimiters=[])
            e_report = gr.HTML()

        @_refusing(1)
        def e_run(folder, db, split, seconds, progress=gr.Progress()):  # noqa: B008 - Gradio's progress bar
            r = api.evaluate_folder(root, folder, db, split, log=lambda m: progress(None, desc=m),
                                    reference_seconds=seconds or None)
            frame = ('<iframe title="evaluation report" style="width:100%;height:900px;border:1px solid #ccc" '
                     f'sandbox="allow-same-origin" srcdoc="{html.escape(r["html"], quote=True)}"></iframe>')
            return f"report in `{r['folder']}`\n```\n{r['table']}\n```", frame

        e_refresh.click(lambda: (gr.Dropdown(choices=api.find(root, "generated")),
                                 gr.Dropdown(choices=api.find(root, "db"))), None, [e_folder, e_db])
        e_go.click(e_run, [e_folder, e_db, e_split, e_seconds], [e_status, e_report])

        # --- Detect ---------------------------------------------------------------------------
        with gr.Tab("Detect", id="detect"):
            d_in = gr.File(elem_id="d-in", label="any audio file", file_types=["audio"], type="filepath")
            d_status = gr.Markdown(elem_id="d-status", latex_delimiters=[])
            d_json = gr.Code(label="wavesmith detect --json", language="json", interactive=False)

        @_refusing(1)
        def d_run(path):
            r = api.detect_upload(path)
            return "\n\n".join(r["words"]), json.dumps({k: v for k, v in r.items() if k != "words"}, indent=1)

        d_in.change(d_run, d_in, [d_status, d_json])
    return page


def _number(name: str, text: str | None, kind=float):
    """An optional figure typed in a text box: None when empty, else a number or a one-line refusal."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise WavesmithError(f"{name} must be {'a whole number' if kind is int else 'a number'}, not {text!r}") \
            from None


def _warnings(r: dict) -> str:
    """The warnings the CLI prints for written files (a mark too weak to verify), from their records."""
    notes = [f"- {rec['file']}: {rec['watermark_reason']}" for rec in r["records"] if rec.get("watermark_reason")]
    return "\n\n**Warnings:**\n" + "\n".join(notes) if notes else ""
