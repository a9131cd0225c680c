"""Chip files one at a time: their names, checksums and decoding, the size limits of a set of them,
and the all-or-nothing writing of a chip folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from competition.chip_json import check_scene_id
from competition.errors import DataError
from competition.limits import DEFAULT_LIMITS, ReadLimits, format_bytes, open_image, read_file

__all__ = [
    "CHIP_NAME_RE",
    "parse_chip_name",
    "decode_png",
    "read_checksums",
    "verify_checksums",
    "check_chip_sizes",
    "staged_folder",
]

CHIP_NAME_RE = re.compile(
    r"^(?P<label>[01])__(?P<scene>[0-9A-Za-z_]+?)__(?P<lon>-?\d+(?:\.\d+)?)_(?P<lat>-?\d+(?:\.\d+)?)\.png$"
)
_BYTES_PER_CHECKSUM_LINE = 256


def parse_chip_name(name: str) -> tuple[int, str, float, float]:
    """Split ``{label}__{scene id}__{lon}_{lat}.png`` into its parts.

    Raises
    ------
    DataError
        If the name does not follow that pattern, or its scene id cannot be used (see
        :func:`competition.chip_json.check_scene_id`).
    """
    m = CHIP_NAME_RE.match(name)
    if m is None:
        raise DataError(
            f"{name}: not a ShipsNet chip name; expected '{{label}}__{{scene id}}__{{lon}}_{{lat}}.png', "
            "e.g. '1__20180708_180909_0f47__-118.2254_33.7388.png'"
        )
    return int(m["label"]), check_scene_id(m["scene"], name), float(m["lon"]), float(m["lat"])




def decode_png(data: bytes, where: str) -> np.ndarray:
    """Decode one chip's image bytes to an 80x80x3 uint8 array; the size is checked from the header first.

    Raises
    ------
    DataError
        If the bytes are not an image, the header says another size than 80x80 (nothing is
        decoded then), or the body is damaged.
    """
    expected = "an 80x80 RGB chip (replace the file with the original chip)"
    with open_image(io.BytesIO(data), where, expected) as im:
        if im.size != (80, 80):
            raise DataError(f"{where}: image is {im.size[0]}x{im.size[1]} pixels; expected an 80x80 RGB chip")
        try:
            arr = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{where}: not a readable image ({exc}); expected {expected}") from exc
    return arr




def read_checksums(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> dict[str, str]:
    """Read a ``sha256sum`` file into ``{file name: hex digest}`` (at most 256 bytes per chip of ``limits``)."""
    raw = read_file(Path(path), _BYTES_PER_CHECKSUM_LINE * limits.max_chips, str(path), "a checksum file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); expected '<sha256>  <file name>' lines") from exc
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}: line {lineno}: expected '<sha256>  <file name>', got {line[:80]!r}")
        out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def verify_checksums(folder: Path, checksums: dict[str, str], blobs: dict[str, bytes]) -> None:
    """Check every chip named in ``checksums`` is present in ``blobs`` with that digest.

    Raises
    ------
    DataError
        Naming each missing or corrupted file (at most five, with the count).
    """
    missing = sorted(set(checksums) - set(blobs))
    bad = sorted(n for n, b in blobs.items() if n in checksums and hashlib.sha256(b).hexdigest() != checksums[n])
    problems = []
    if missing:
        problems.append(f"{len(missing)} chip(s) missing, e.g. {_examples(missing)}")
    if bad:
        problems.append(f"{len(bad)} chip(s) corrupted (SHA-256 differs from the checksum file), e.g. {_examples(bad)}")
    if problems:
        raise DataError(f"{folder}: " + "; ".join(problems) + "; restore them from a fresh copy of the data")




def check_chip_sizes(files: list[tuple[str, int]], where: str, limits: ReadLimits) -> None:
    """Refuse chip files, given as ``(name, size)``, whose count, single sizes or total size pass ``limits``.

    Called before anything is read (sizes from disk or from a zip's headers).
    """
    if len(files) > limits.max_chips:
        raise DataError(f"{where}: holds {len(files)} chip files, more than the limit of {limits.max_chips}; "
                        "ShipsNet has 4000, so check that this is the data you meant")
    big = [f"{name!r} ({format_bytes(size)})" for name, size in files if size > limits.max_file_bytes]
    if big:
        raise DataError(f"{where}: {len(big)} chip file(s) larger than the limit of {format_bytes(limits.max_file_bytes)}, "
                        f"e.g. {', '.join(big[:5])}; expected 80x80 PNG chips of about 15 kB")
    total = sum(size for _, size in files)
    if total > limits.max_bytes:
        raise DataError(f"{where}: chip files of {format_bytes(total)} in all, more than the limit of "
                        f"{format_bytes(limits.max_bytes)}; ShipsNet's 4000 chips take about 60 MB")




def _examples(items: list[str], k: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


@contextmanager
def staged_folder(folder: Path) -> Iterator[tuple[Path, Path]]:
    """Write a folder and its ``FOLDER.sha256`` file beside it all at once, or not at all.

    Yields ``(folder, checksums)`` paths inside a temporary folder beside ``folder`` (same file
    system); when the block ends without error, the checksum file and then the folder are moved
    into place, so that ``folder`` appears only once complete.  On any error, interruption
    included, the temporary folder and every parent folder made here are removed.

    Raises
    ------
    DataError
        If ``folder`` already exists.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        raise DataError(f"{folder}: already exists; choose another folder or remove it")
    made = [p for p in (folder.parent, *folder.parent.parents) if not p.exists()]
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    sums = folder.parent / f"{folder.name}.sha256"
    moved = False
    try:
        yield staging / folder.name, staging / sums.name
        os.replace(staging / sums.name, sums)
        moved = True
        os.rename(staging / folder.name, folder)
    except BaseException:
        if moved:
            sums.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        for parent in made:  # deepest first
            _remove_empty(parent)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
