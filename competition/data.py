"""Reading ShipsNet chips: the bundled copy, Kaggle's PNG folder, ``shipsnet.json`` and zips.

This is the only module that knows the layouts Kaggle distributes.  Every
reader returns a :class:`Chips` with the pixels as a ``(n, 80, 80, 3)`` uint8
array, sorted by original file name so that the same chips always come in the
same order whatever the layout they were read from.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from competition.chip_files import (
    CHIP_NAME_RE,
    check_chip_sizes,
    decode_png,
    parse_chip_name,
    read_checksums,
    staged_folder,
    verify_checksums,
)
from competition.chip_json import load_json_doc, parse_chip_doc
from competition.errors import DataError, ParameterError
from competition.limits import DEFAULT_LIMITS, ReadLimits, read_file, read_member

__all__ = [
    "CHIP_SHAPE",
    "Chips",
    "bundled_data_dir",
    "ReadLimits",
    "DEFAULT_LIMITS",
    "load_bundled",
    "load_chips",
    "read_folder",
    "read_json",
    "read_zip",
    "read_checksums",
    "verify_checksums",
    "parse_chip_name",
    "make_groups",
    "write_folder",
    "decode_png",
    "summarize_chips",
    "check_chips",
]

CHIP_SHAPE = (80, 80, 3)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


@dataclass(frozen=True)
class Chips:
    """A set of labelled chips.

    Attributes
    ----------
    X : ndarray of shape (n, 80, 80, 3), uint8
    y : ndarray of shape (n,), int64 (1 ship, 0 no ship)
    scene_id : ndarray of shape (n,), str
    lon, lat : ndarray of shape (n,), float64
    name : ndarray of shape (n,), str; the original Kaggle file name
    """

    X: np.ndarray
    y: np.ndarray
    scene_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    name: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def data_hash(self) -> str:
        """SHA-256 over names, labels and pixels, in name order (layout-independent)."""
        h = hashlib.sha256()
        for i in range(len(self)):
            h.update(f"{self.name[i]}\0{int(self.y[i])}\0".encode())
            h.update(self.X[i].tobytes())
        return h.hexdigest()


def check_chips(X, name: str = "X") -> np.ndarray:
    """Check a raw chip array: uint8 of shape ``(n, 80, 80, 3)`` with n >= 1.

    Raises
    ------
    ParameterError
        Naming the shape and dtype found and those expected.
    """
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1:] != CHIP_SHAPE or X.dtype != np.uint8 or len(X) == 0:
        raise ParameterError(
            f"{name} has shape {X.shape} and dtype {X.dtype}; expected (n, 80, 80, 3) uint8 "
            "(raw RGB chips, as Workspace.load_train().X)"
        )
    return X


def bundled_data_dir() -> Path:
    """Folder of the 4000 real chips shipped with the package."""
    return Path(__file__).parent / "data" / "shipsnet"


def make_groups(scene_id: np.ndarray, group_by: str = "date") -> np.ndarray:
    """Group label of each chip: the acquisition day (``date``) or the ``scene`` id."""
    if group_by == "date":
        return np.array([s[:8] for s in scene_id], dtype=object)
    if group_by == "scene":
        return np.asarray(scene_id, dtype=object)
    raise DataError(f"group_by={group_by!r} is invalid; expected 'date' or 'scene'")


def read_folder(folder: Path, checksums: Path | None = None, *, limits: ReadLimits = DEFAULT_LIMITS) -> Chips:
    """Read a folder of ShipsNet PNG chips (Kaggle's ``shipsnet/`` layout).

    Parameters
    ----------
    folder : path
        Folder holding ``{label}__{scene}__{lon}_{lat}.png`` files.
    checksums : path, optional
        A ``sha256sum`` file; when given, every chip is verified against it.
    limits : ReadLimits
        Number of chips and bytes read; every size is checked before any file is read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected a folder of ShipsNet .png chips")
    try:
        files = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.suffix == ".png")
    except OSError as exc:
        raise DataError(f"{folder}: cannot be listed ({exc.strerror or exc}); check the path and its permissions") from exc
    if not files:
        raise DataError(f"{folder}: holds no .png chips; expected files named '{{label}}__{{scene}}__{{lon}}_{{lat}}.png'")
    check_chip_sizes(files, str(folder), limits)
    blobs = {name: read_file(folder / name, limits.max_file_bytes, f"{folder}/{name}", "one chip file") for name, _ in files}
    if checksums is not None:
        verify_checksums(folder, read_checksums(checksums, limits), blobs)
    return _chips_from_blobs(blobs, str(folder))


def _chips_from_blobs(blobs: dict[str, bytes], where: str) -> Chips:
    names = sorted(blobs)
    meta, bad = [], []
    for n in names:
        try:
            meta.append(parse_chip_name(n))
        except DataError as exc:
            bad.append(str(exc))
    if bad:
        more = f"\n... and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError("\n".join(f"{where}/{line}" for line in bad[:5]) + more)
    X = np.stack([decode_png(blobs[n], f"{where}/{n}") for n in names])
    return Chips(
        X=X,
        y=np.array([m[0] for m in meta], dtype=np.int64),
        scene_id=np.array([m[1] for m in meta], dtype=object),
        lon=np.array([m[2] for m in meta]),
        lat=np.array([m[3] for m in meta]),
        name=np.array(names, dtype=object),
    )


def _chips_from_json(doc: object, where: str, limits: ReadLimits) -> Chips:
    X, y, scenes, lon, lat = parse_chip_doc(doc, where, limits.max_chips)
    names = np.array([f"{y[i]}__{scenes[i]}__{float(lon[i])!r}_{float(lat[i])!r}.png" for i in range(len(y))],
                     dtype=object)
    first: dict[str, int] = {}
    copies = [f"rows {first[n]} and {i} ({n!r})" for i, n in enumerate(names) if first.setdefault(n, i) != i]
    if copies:
        raise DataError(f"{where}: {len(copies)} row(s) repeat the label, scene id and location of an earlier row: "
                        f"{'; '.join(copies[:5])}; expected one row per chip (remove the copies)")
    order = np.argsort(names, kind="stable")
    return Chips(np.ascontiguousarray(X[order]), y[order], scenes[order], lon[order], lat[order], names[order])


def _decode_text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text ({exc}); expected Kaggle's shipsnet.json") from exc


def read_json(path: Path, *, limits: ReadLimits = DEFAULT_LIMITS) -> Chips:
    """Read Kaggle's ``shipsnet.json`` (keys data, labels, locations, scene_ids).

    The file's size is checked against ``limits.max_bytes`` before it is read, its structure
    before it is parsed, and every row after (see :mod:`competition.chip_json`).
    """
    path = Path(path)
    doc = load_json_doc(_decode_text(read_file(path, limits.max_bytes, str(path), "shipsnet.json"), str(path)), str(path))
    return _chips_from_json(doc, str(path), limits)


def read_zip(path: Path, *, limits: ReadLimits = DEFAULT_LIMITS) -> Chips:
    """Read a zip holding either ``shipsnet.json`` or a folder of PNG chips.

    Members are decompressed one at a time, each only after its declared size passed
    ``limits``, and never past the limit whatever the zip header says.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable zip file ({exc}); it may be truncated or damaged: "
                        "download it again") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        pngs = {Path(m.filename).name: m for m in members if CHIP_NAME_RE.match(Path(m.filename).name)}
        if pngs:
            check_chip_sizes([(m.filename, m.file_size) for m in pngs.values()], str(path), limits)
            blobs = {n: read_member(zf, m, limits.max_file_bytes, f"{path}:{m.filename}", "one chip file")
                     for n, m in pngs.items()}
            return _chips_from_blobs(blobs, f"{path}")
        jsons = [m for m in members if m.filename.endswith(".json")]
        if jsons:
            where = f"{path}:{jsons[0].filename}"
            text = _decode_text(read_member(zf, jsons[0], limits.max_bytes, where, "shipsnet.json"), where)
            doc = load_json_doc(text, where)
            del text  # the document is parsed: free its text before converting the rows
            return _chips_from_json(doc, where, limits)
    raise DataError(f"{path}: the zip holds neither shipsnet.json nor ShipsNet .png chips")


def load_chips(path: Path, *, limits: ReadLimits = DEFAULT_LIMITS) -> Chips:
    """Read chips from any supported layout: a PNG folder, ``shipsnet.json`` or a zip (told by content).

    Raises
    ------
    DataError
        If the path is missing or not a regular file or folder, or the data is unreadable,
        inconsistent or larger than ``limits``.
    """
    path = Path(path)
    if path.is_dir():
        sums = path.parent / f"{path.name}.sha256"
        return read_folder(path, sums if sums.is_file() else None, limits=limits)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; expected a folder of chips, shipsnet.json or a zip")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; expected a folder of chips, shipsnet.json or a zip")
    with path.open("rb") as fh:
        is_zip = fh.read(4) in _ZIP_MAGIC
    if is_zip or path.suffix.lower() == ".zip":
        return read_zip(path, limits=limits)
    return read_json(path, limits=limits)


def load_bundled() -> Chips:
    """The 4000 real ShipsNet chips shipped with the package, verified against their checksums."""
    folder = bundled_data_dir()
    return read_folder(folder, folder.parent / "shipsnet.sha256")


def summarize_chips(chips: Chips, group_by: str = "date") -> dict:
    """Counts by label, region, year and group, as a JSON-able dict."""
    import pandas as pd

    df = pd.DataFrame({
        "y": chips.y,
        "region": np.where(chips.lon < -121, "San Francisco Bay", "San Pedro Bay"),
        "year": [s[:4] for s in chips.scene_id],
        "group": make_groups(chips.scene_id, group_by),
    })

    def counts(frame: pd.DataFrame) -> dict:
        ship = int(frame["y"].sum())
        return {"ship": ship, "no_ship": len(frame) - ship, "total": len(frame)}

    per_group = df.groupby("group")["y"].agg(["size", "min", "max"])
    return {
        "n_chips": len(df),
        "data_sha256": chips.data_hash(),
        "all": counts(df),
        "by_region": {k: counts(g) for k, g in df.groupby("region")},
        "by_year": {k: counts(g) for k, g in df.groupby("year")},
        "n_scenes": int(len(set(chips.scene_id))),
        "groups": {
            "group_by": group_by,
            "n_groups": int(len(per_group)),
            "largest": int(per_group["size"].max()),
            "mixed": int((per_group["min"] != per_group["max"]).sum()),
        },
    }


def write_folder(chips: Chips, folder: Path) -> None:
    """Write chips as Kaggle's PNG folder plus a ``sha256sum`` file beside it, all or nothing.

    Everything is written into a temporary folder beside ``folder`` and moved into place once
    complete (see :func:`competition.chip_files.staged_folder`): a failure leaves no ``folder``.

    Raises
    ------
    DataError
        If ``folder`` exists, or a chip name is not a ShipsNet chip name or is repeated
        (checked before anything is written).
    """
    from PIL import Image

    check_chips(chips.X, "chips.X")
    names = [str(n) for n in chips.name]
    for name in names:
        parse_chip_name(name)
    if len(set(names)) != len(names):
        raise DataError(f"{folder}: chip names repeat ({len(names) - len(set(names))} copies); expected one file per chip")
    with staged_folder(Path(folder)) as (staging, sums):
        staging.mkdir()
        lines = []
        for i, name in enumerate(names):
            buf = io.BytesIO()
            Image.fromarray(chips.X[i]).save(buf, format="PNG")
            (staging / name).write_bytes(buf.getvalue())
            lines.append(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {name}")
        sums.write_text("\n".join(lines) + "\n")
