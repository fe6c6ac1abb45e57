"""``wavesmith serve``: a local browser page over the same Python API as the CLI.

:mod:`.paths` keeps every path under the root folder; :mod:`.api` is what each tab does,
as plain functions; :mod:`.training` runs, watches and stops training in the background;
:mod:`.app` is the Gradio page and :mod:`.server` serves it (the only modules that import Gradio).
"""
