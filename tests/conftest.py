"""Settings shared by every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def signing_dir(tmp_path_factory):
    """Keep C2PA keys made on first use in the session's temporary folder, never in ~/.config.

    Session-scoped so that module-scoped fixtures which generate files are covered too.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAVESMITH_CONFIG_DIR", str(tmp_path_factory.getbasetemp() / "wavesmith-config"))
        yield
