"""Test helpers: cheap writable copies of the session's real workspace.

A workspace holds 4000 chip images (50 MB in 4000 files); copying them for every test wrote
gigabytes per run. No test writes an image, so a copy links the two image folders to the
shared read-only workspace and copies only the small files (tables, config, store).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from competition.workspace import Workspace

__all__ = ["IMAGE_FOLDERS", "copy_workspace", "csv_bytes", "light_workspace"]

IMAGE_FOLDERS = ("train", "test")  # under public/


def copy_workspace(src: Path, dst: Path, *, images: bool = True) -> Workspace:
    """A writable copy of the workspace at ``src``; its image folders are links to ``src``'s (or absent)."""
    src, dst = Path(src), Path(dst)

    def skip_images(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n in IMAGE_FOLDERS] if Path(folder) == src / "public" else []

    shutil.copytree(src, dst, ignore=skip_images)
    if images:
        for name in IMAGE_FOLDERS:
            (dst / "public" / name).symlink_to((src / "public" / name).resolve(), target_is_directory=True)
    return Workspace.open(dst)


def light_workspace(src: Path, dst: Path, **config) -> Workspace:
    """A copy of the workspace without the chip images (the web view never reads them)."""
    ws = copy_workspace(src, dst, images=False)
    return Workspace(dst, replace(ws.config, **config)) if config else ws


def csv_bytes(ws, seed: int) -> bytes:
    """A valid submission for ``ws``'s test ids: random predictions drawn with ``seed`` (distinct files)."""
    ids = ws.test_ids()
    proba = np.random.default_rng(seed).random(len(ids))
    return ("id,ship\n" + "".join(f"{i},{p:.6f}\n" for i, p in zip(ids, proba))).encode()
