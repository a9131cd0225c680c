"""Shared fixtures: the real bundled chips, one real workspace built from them, cheap writable copies.

The 4000 bundled chips are read and checked once per session; tests that only read a workspace
use ``real_workspace_path`` in place, tests that write get ``workspace``, a copy of the small
files whose image folders link to the shared ones (see tests/workspaces.py).
"""

from __future__ import annotations

import os

# Idle OpenMP threads (xgboost, scikit-learn) sleep instead of spinning: on a machine whose cores
# are busy, spinning threads burnt 10 times the CPU of the work itself. Set before any library
# loads OpenMP; subprocesses inherit it. Results do not change.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _bundled_chips_read_once():
    """``load_bundled()`` reads the bundled chips from disk the first time, then returns copies.

    Reading and checking 4000 PNGs costs seconds, and ``ships init``, ``ships demo``, the ship
    finder's test bed and several fixtures each ask for them. Each call still gets arrays of
    its own, so no test can change the chips another one sees. Modules that import the name
    later get the patched one; importing them here would cost every session pandas' import.
    """
    import competition.data

    read_from_disk = competition.data.load_bundled
    cache = []

    def load_bundled():
        if not cache:
            cache.append(read_from_disk())
        return dataclasses.replace(cache[0], **{f.name: getattr(cache[0], f.name).copy()
                                                for f in dataclasses.fields(cache[0])})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(competition.data, "load_bundled", load_bundled)
        for name in ("competition.create", "ships.data"):  # imported already: `from ... import`
            if name in sys.modules and hasattr(sys.modules[name], "load_bundled"):
                patch.setattr(sys.modules[name], "load_bundled", load_bundled)
        yield


@pytest.fixture(scope="session")
def chips():
    """The 4000 real ShipsNet chips, verified against their checksums."""
    from competition.data import load_bundled

    return load_bundled()


@pytest.fixture(scope="session")
def real_workspace_path(tmp_path_factory, chips) -> Path:
    """A workspace initialised from the bundled real chips (seed 0). Treat as read-only."""
    from competition.create import init_workspace

    root = tmp_path_factory.mktemp("real") / "ws"
    init_workspace(root, chips=chips, seed=0)
    return root


@pytest.fixture
def workspace(real_workspace_path, tmp_path):
    """A private, writable copy of the real workspace (its chip images are shared, read-only)."""
    from workspaces import copy_workspace  # tests/workspaces.py

    return copy_workspace(real_workspace_path, tmp_path / "ws")
