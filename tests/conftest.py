"""Shared fixtures: the real bundled chips and a real workspace built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chips():
    """The 4000 real ShipsNet chips, verified against their checksums."""
    from competition.data import load_bundled

    return load_bundled()


@pytest.fixture(scope="session")
def real_workspace_path(tmp_path_factory) -> Path:
    """A workspace initialised from the bundled real chips (seed 0). Treat as read-only."""
    from competition.create import init_workspace

    root = tmp_path_factory.mktemp("real") / "ws"
    init_workspace(root, seed=0)
    return root


@pytest.fixture
def workspace(real_workspace_path, tmp_path):
    """A private, writable copy of the real workspace."""
    from competition.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(real_workspace_path, root)
    return Workspace.open(root)
