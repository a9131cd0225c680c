"""Test helper: light copies of a real workspace."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from competition.workspace import Workspace


def light_workspace(src: Path, dst: Path, **config) -> Workspace:
    """A copy of the workspace without the chip images (the web view never reads them)."""
    for folder in ("public", "private", "submissions"):
        (dst / folder).mkdir(parents=True)
    shutil.copy(src / "ships.toml", dst)
    for path in (src / "public").glob("*.csv"):
        shutil.copy(path, dst / "public")
    shutil.copy(src / "private" / "solution.csv", dst / "private")
    ws = Workspace.open(dst)
    return Workspace(dst, replace(ws.config, **config)) if config else ws
