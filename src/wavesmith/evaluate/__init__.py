"""How close is generated audio to the database it learned from? Metrics, calibration, a report.

>>> from wavesmith.evaluate import evaluate
>>> result = evaluate("generated/", db="drums.db", json_path="eval.json", report_path="eval.html")
>>> result["fd_logmel"]["value"], result["fd_logmel"]["real_floor"]

Modules: :mod:`.features` (batched log-mel, loudness, duration, centroid, YIN f0),
:mod:`.classifier` (the log-mel CNN of the classifier metrics), :mod:`.metrics` (the maths),
:mod:`.memorization` (copy detection), :mod:`.core` (all metrics with calibration on arrays),
:mod:`.run` (folders, databases, caching, JSON), :mod:`.report` (the HTML page).
"""

from wavesmith.evaluate.run import evaluate, format_table, quick_metrics

__all__ = ["evaluate", "format_table", "quick_metrics"]
