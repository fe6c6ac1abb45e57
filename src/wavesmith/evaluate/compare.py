"""Several evaluations on one page: their metrics side by side, then each full report.

``wavesmith demo`` uses it to show a shipped model before and after fine-tuning against
the same held-out clips. Each report stays self-contained; this page embeds them whole
(``iframe srcdoc``), so it is one file that needs nothing else.
"""

from __future__ import annotations

import html
from pathlib import Path

from wavesmith.evaluate.core import CALIBRATION, METRICS
from wavesmith.evaluate.report import CSS, fmt
from wavesmith.files import write_text


def render(runs: dict[str, tuple[dict, str | Path]]) -> str:
    """The page for ``{name: (evaluate result, its HTML report file)}``, in that order."""
    names = list(runs)
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>wavesmith: side by side</title>",
           f"<style>{CSS} .side{{display:flex;gap:12px}} .side iframe{{flex:1;height:1400px;border:1px solid #ccc}}"
           "</style></head><body><h1>wavesmith: side by side</h1>"]
    first = runs[names[0]][0]
    against = first.get("database") or first.get("reference")
    out.append(f"<p>Each against <code>{html.escape(str(against))}</code>"
               + (f", split <b>{html.escape(first['split'])}</b>" if first.get("split") else "") + ".</p>")
    out.append("<table><tr><th>metric</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
               + "".join(f"<th>{k}</th>" for k in CALIBRATION) + "<th>better</th></tr>")
    for metric in METRICS:
        if not all(metric in r for r, _ in runs.values()):
            continue
        values = "".join(f"<td>{fmt(runs[n][0][metric].get('value'))}</td>" for n in names)
        calibration = "".join(f"<td>{fmt(first[metric].get(k))}</td>" for k in CALIBRATION)
        out.append(f"<tr><td>{metric}</td>{values}{calibration}<td>{first[metric]['better']}</td></tr>")
    out.append("</table><h2>The reports</h2><div class='side'>")
    for name in names:
        page = Path(runs[name][1]).read_text(encoding="utf-8")
        out.append(f"<iframe title='{html.escape(name)}' srcdoc=\"{html.escape(page, quote=True)}\"></iframe>")
    out.append("</div></body></html>")
    return "\n".join(out)


def write_comparison(path: str | Path, runs: dict[str, tuple[dict, str | Path]]) -> Path:
    """Write :func:`render`'s page atomically."""
    return write_text(path, render(runs))
