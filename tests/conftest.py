"""Settings and fixtures shared by the tests (helpers they share live in sounds.py and toy_model.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def signing_dir(tmp_path_factory):
    """Keep C2PA keys made on first use in the session's temporary folder, never in ~/.config.

    Session-scoped so that module-scoped fixtures which generate files are covered too.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WAVESMITH_CONFIG_DIR", str(tmp_path_factory.getbasetemp() / "wavesmith-config"))
        yield


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine: a second thread only spins against the others."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
