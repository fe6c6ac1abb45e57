"""One self-contained HTML page: the metric table, spectrograms and players, histograms, copies.

Everything is embedded (PNG and WAV as base64 data URIs, histograms as inline SVG, CSS in
the page), so the file can be mailed, archived or opened without network access.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from wavesmith.evaluate.core import CALIBRATION, METRICS
from wavesmith.files import write_text
from wavesmith.plot import spectrogram_png

MAX_EXAMPLES = 6  # clips per side in the listening table
MAX_COPIES = 8
MAX_SECONDS = 4.0  # embedded audio is cut to this, to keep the page small

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child,td.meaning{text-align:left}td.ex{text-align:center;vertical-align:top}
img{display:block;max-width:100%;image-rendering:pixelated;margin:4px auto}audio{width:260px}
.hist{display:inline-block;margin:0 1em 1em 0}.small{color:#666;font-size:90%}
"""


def _png_uri(clip: np.ndarray, sample_rate: int) -> str:
    return "data:image/png;base64," + base64.b64encode(spectrogram_png(clip, sample_rate, height=96)).decode()


def _wav_uri(clip: np.ndarray, sample_rate: int) -> str:
    x = np.asarray(clip, dtype=np.float32)[..., : int(MAX_SECONDS * sample_rate)]
    buf = io.BytesIO()
    sf.write(buf, np.clip(x.T, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()


def _example(name: str, clip: np.ndarray, sample_rate: int) -> str:
    return (f'<td class="ex"><div class="small">{html.escape(name)}</div>'
            f'<img alt="spectrogram of {html.escape(name)}" src="{_png_uri(clip, sample_rate)}">'
            f'<audio controls preload="auto" src="{_wav_uri(clip, sample_rate)}"></audio></td>')


def fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def histogram_svg(title: str, series: dict[str, np.ndarray], marker: float | None = None,
                  width: int = 360, height: int = 180, bins: int = 30) -> str:
    """Overlaid step histograms (densities) of a few 1-D samples, as an inline SVG element."""
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    clean = {k: np.asarray(v, dtype=np.float64)[np.isfinite(v)] for k, v in series.items()}
    allv = np.concatenate([v for v in clean.values() if len(v)] or [np.zeros(1)])
    lo, hi = float(allv.min()), float(allv.max())
    if marker is not None:
        lo, hi = min(lo, marker), max(hi, marker)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    dens = {k: (np.histogram(v, edges)[0] / max(len(v), 1)) for k, v in clean.items()}
    top = max([d.max() for d in dens.values()] + [1e-9])
    pad_l, pad_b, pad_t = 8, 28, 22
    w, h = width - 2 * pad_l, height - pad_b - pad_t

    def sx(x):
        return pad_l + (x - lo) / (hi - lo) * w

    def sy(y):
        return pad_t + h - y / top * h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{pad_l}" y="14" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#888"/>']
    for i, (k, d) in enumerate(dens.items()):
        pts = [(sx(edges[0]), sy(0))]
        for j, y in enumerate(d):
            pts += [(sx(edges[j]), sy(y)), (sx(edges[j + 1]), sy(y))]
        pts.append((sx(edges[-1]), sy(0)))
        c = colours[i % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        parts.append(f'<text x="{width - 130}" y="{pad_t + 12 + 14 * i}" font-size="11" fill="{c}">'
                     f"{html.escape(k)} (n={len(clean[k])})</text>")
    if marker is not None:
        parts.append(f'<line x1="{sx(marker):.1f}" y1="{pad_t}" x2="{sx(marker):.1f}" y2="{pad_t + h}" '
                     'stroke="#d62728" stroke-dasharray="4,3"/>')
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="11">{lo:.3g}</text>'
                 f'<text x="{pad_l + w}" y="{height - 8}" font-size="11" text-anchor="end">{hi:.3g}</text></svg>')
    return '<div class="hist">' + "".join(parts) + "</div>"


def render(result: dict, arrays: dict, gen, real) -> str:
    """The report page as a string (see :func:`write_report`)."""
    sr = result["sample_rate"]
    against = result.get("database") or result.get("reference")
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>wavesmith evaluation</title>",
           f"<style>{CSS}</style></head><body><h1>wavesmith evaluation</h1>",
           f"<p><b>{result['n_generated']}</b> clips from <code>{html.escape(result['generated_dir'])}</code> "
           f"against <code>{html.escape(str(against))}</code>"
           + (f", split <b>{html.escape(result['split'])}</b>" if result.get("split") else "")
           + f" ({result['n_reference']} reference clips; real floor from {html.escape(result['floor_source'])},"
           f" {result['n_floor']} clips; {sr} Hz).</p>"]
    clf = result.get("classifier") or {}
    if clf.get("available"):
        acc = clf.get("test_accuracy")
        out.append(f"<p>Classifier: {len(clf['labels'])} labels, test accuracy "
                   f"{'&ndash;' if acc is None else f'{acc:.3f}'}{' (cached)' if clf.get('cached') else ''}.</p>")
    elif clf.get("reason"):
        out.append(f"<p class='small'>No classifier metrics: {html.escape(clf['reason'])}.</p>")
    for n in result.get("notes", []):
        out.append(f"<p class='small'>Note: {html.escape(n)}</p>")
    out.append("<h2>Metrics</h2><table><tr><th>metric</th><th>meaning</th><th>value</th><th>real floor</th>"
               "<th>noise</th><th>silence</th><th>better</th></tr>")
    for name in METRICS:
        if name in result:
            r = result[name]
            cells = "".join(f"<td>{fmt(r.get(k))}</td>" for k in ("value", *CALIBRATION))
            meaning = html.escape(r["meaning"])
            out.append(f"<tr><td>{name}</td><td class='meaning'>{meaning}</td>{cells}<td>{r['better']}</td></tr>")
    out.append("</table>")
    per_label = (result.get("classifier_accuracy") or {}).get("per_label")
    if per_label:
        out.append("<h2>Classifier accuracy per requested label</h2><table><tr><th>label</th><th>clips</th>"
                   "<th>accuracy</th><th>real floor</th><th>most often taken for</th></tr>")
        for name, r in per_label.items():
            taken = "&ndash;" if r["taken_for"] is None else \
                f"{html.escape(r['taken_for'])} ({r['taken_for_share']:.0%})"
            out.append(f"<tr><td>{html.escape(name)}</td><td>{r['n']}</td><td>{fmt(r['value'])}</td>"
                       f"<td>{fmt(r['real_floor'])}</td><td>{taken}</td></tr>")
        out.append("</table>")

    feats, ref = arrays["features"], arrays["reference"]
    g, fl = feats["value"], feats["real_floor"]
    out.append("<h2>Distributions</h2>")
    for title, attr in (("loudness (dBFS)", "loudness"), ("non-silent duration (s)", "duration"),
                        ("spectral centroid (Hz)", "centroid"), ("f0 of pitched clips (Hz)", "f0")):
        out.append(histogram_svg(title, {"generated": getattr(g, attr), "reference": getattr(ref, attr),
                                         "real floor": getattr(fl, attr)}))
    mem = result["memorization"]
    out.append(histogram_svg("nearest-training distance (dashed: copy threshold)",
                             {"generated": arrays["distances"], "held-out real": arrays["held_out_distances"]},
                             marker=mem["threshold"]))

    out.append("<h2>Listen</h2><table><tr><th>generated</th><th>real (reference)</th></tr>")
    n_ex = min(MAX_EXAMPLES, max(len(gen.clips), len(real.reference)))
    gi = np.linspace(0, len(gen.clips) - 1, min(n_ex, len(gen.clips))).astype(int)
    ri = np.linspace(0, len(real.reference) - 1, min(n_ex, len(real.reference))).astype(int)
    for k in range(n_ex):
        left = _example(gen.files[gi[k]], gen.clips[gi[k]], sr) if k < len(gi) else "<td></td>"
        right = _example(f"reference #{ri[k]}", real.reference[ri[k]], sr) if k < len(ri) else "<td></td>"
        out.append(f"<tr>{left}{right}</tr>")
    out.append("</table>")

    out.append(f"<h2>Likely copies of training clips ({len(mem['flagged'])})</h2>")
    if mem["copies"]:
        out.append("<table><tr><th>generated</th><th>nearest training clip</th></tr>")
        index = {f: i for i, f in enumerate(gen.files)}
        for c in mem["copies"][:MAX_COPIES]:
            j = c["nearest_index"]
            label = f"{c['file']} (distance {c['distance']:.3g})"
            out.append(f"<tr>{_example(label, gen.clips[index[c['file']]], sr)}"
                       f"{_example(real.train_names[j], real.train[j], sr)}</tr>")
        out.append("</table>")
        if len(mem["copies"]) > MAX_COPIES:
            out.append(f"<p class='small'>and {len(mem['copies']) - MAX_COPIES} more (see the JSON).</p>")
    else:
        out.append("<p>None: no generated clip is closer to a training clip than real held-out clips come.</p>")
    if result.get("skipped"):
        out.append("<h2>Skipped files</h2><ul>" + "".join(
            f"<li>{html.escape(s['file'])}: {html.escape(s['reason'])}</li>" for s in result["skipped"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(path, result: dict, arrays: dict, gen, real) -> Path:
    """Write the report atomically (a reader never sees half a page)."""
    return write_text(path, render(result, arrays, gen, real))
