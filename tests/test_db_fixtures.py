"""The test sounds of ``sounds.py`` cover what the ingest tests need."""

from __future__ import annotations

import soundfile as sf

from sounds import FORMATS, RATES, make_corpus


def test_make_corpus_covers_every_format_rate_and_channel_count(tmp_path):
    paths = make_corpus(tmp_path, n=40)
    infos = [sf.info(str(p)) for p in paths]
    assert {p.suffix for p in paths} == {"." + f[0] for f in FORMATS}
    assert {i.samplerate for i in infos} == set(RATES)
    assert {i.channels for i in infos} == {1, 2}
