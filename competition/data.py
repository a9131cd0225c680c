"""Reading ShipsNet chips: the bundled copy, Kaggle's PNG folder, ``shipsnet.json`` and zips.

This is the only module that knows the layouts Kaggle distributes.  Every
reader returns a :class:`Chips` with the pixels as a ``(n, 80, 80, 3)`` uint8
array, sorted by original file name so that the same chips always come in the
same order whatever the layout they were read from.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from competition.errors import DataError, ParameterError

__all__ = [
    "CHIP_SHAPE",
    "Chips",
    "bundled_data_dir",
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
_NAME_RE = re.compile(r"^(?P<label>[01])__(?P<scene>[0-9A-Za-z_]+?)__(?P<lon>-?\d+(?:\.\d+)?)_(?P<lat>-?\d+(?:\.\d+)?)\.png$")
_JSON_KEYS = ("data", "labels", "locations", "scene_ids")


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


def parse_chip_name(name: str) -> tuple[int, str, float, float]:
    """Split ``{label}__{scene id}__{lon}_{lat}.png`` into its parts.

    Raises
    ------
    DataError
        If the name does not follow that pattern.
    """
    m = _NAME_RE.match(name)
    if m is None:
        raise DataError(
            f"{name}: not a ShipsNet chip name; expected '{{label}}__{{scene id}}__{{lon}}_{{lat}}.png', "
            "e.g. '1__20180708_180909_0f47__-118.2254_33.7388.png'"
        )
    return int(m["label"]), m["scene"], float(m["lon"]), float(m["lat"])


def make_groups(scene_id: np.ndarray, group_by: str = "date") -> np.ndarray:
    """Group label of each chip: the acquisition day (``date``) or the ``scene`` id."""
    if group_by == "date":
        return np.array([s[:8] for s in scene_id], dtype=object)
    if group_by == "scene":
        return np.asarray(scene_id, dtype=object)
    raise DataError(f"group_by={group_by!r} is invalid; expected 'date' or 'scene'")


def decode_png(data: bytes, where: str) -> np.ndarray:
    """Decode one chip's image bytes (any format Pillow reads) to an 80x80x3 uint8 array."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}); replace the file with the original chip") from exc
    if arr.shape != CHIP_SHAPE:
        raise DataError(f"{where}: image is {arr.shape[1]}x{arr.shape[0]} pixels; expected an 80x80 RGB chip")
    return arr


def read_checksums(path: Path) -> dict[str, str]:
    """Read a ``sha256sum`` file into ``{file name: hex digest}``."""
    out = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
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


def read_folder(folder: Path, checksums: Path | None = None) -> Chips:
    """Read a folder of ShipsNet PNG chips (Kaggle's ``shipsnet/`` layout).

    Parameters
    ----------
    folder : path
        Folder holding ``{label}__{scene}__{lon}_{lat}.png`` files.
    checksums : path, optional
        A ``sha256sum`` file; when given, every chip is verified against it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; expected a folder of ShipsNet .png chips")
    blobs = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".png"}
    if not blobs:
        raise DataError(f"{folder}: holds no .png chips; expected files named '{{label}}__{{scene}}__{{lon}}_{{lat}}.png'")
    if checksums is not None:
        verify_checksums(folder, read_checksums(checksums), blobs)
    return _chips_from_blobs(blobs, str(folder))


def _chips_from_blobs(blobs: dict[str, bytes], where: str) -> Chips:
    names = sorted(blobs)
    meta = [parse_chip_name(n) for n in names]
    X = np.stack([decode_png(blobs[n], f"{where}/{n}") for n in names])
    return Chips(
        X=X,
        y=np.array([m[0] for m in meta], dtype=np.int64),
        scene_id=np.array([m[1] for m in meta], dtype=object),
        lon=np.array([m[2] for m in meta]),
        lat=np.array([m[3] for m in meta]),
        name=np.array(names, dtype=object),
    )


def _chips_from_json(doc: object, where: str) -> Chips:
    if not isinstance(doc, dict) or any(k not in doc for k in _JSON_KEYS):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{where}: expected a JSON object with keys {list(_JSON_KEYS)}, got {found}")
    n = len(doc["labels"])
    lengths = {k: len(doc[k]) for k in _JSON_KEYS}
    if set(lengths.values()) != {n}:
        raise DataError(f"{where}: keys have different lengths {lengths}; expected one entry per chip in each")
    try:
        flat = np.asarray(doc["data"], dtype=np.int64)
        locations = np.asarray(doc["locations"], dtype=float)
        y = np.asarray(doc["labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: 'data', 'labels' and 'locations' must be numeric arrays ({exc})") from exc
    if flat.shape != (n, 19200):
        raise DataError(f"{where}: 'data' has shape {flat.shape}; expected ({n}, 19200): 6400 red, 6400 green, 6400 blue")
    if flat.min(initial=0) < 0 or flat.max(initial=0) > 255 or not np.isin(y, [0, 1]).all():
        raise DataError(f"{where}: pixels must be in 0..255 and labels 0 or 1")
    if locations.shape != (n, 2):
        raise DataError(f"{where}: 'locations' has shape {locations.shape}; expected ({n}, 2) as [lon, lat]")
    X = flat.astype(np.uint8).reshape(n, 3, 80, 80).transpose(0, 2, 3, 1)
    scenes = np.array([str(s) for s in doc["scene_ids"]], dtype=object)
    names = np.array(
        [f"{y[i]}__{scenes[i]}__{float(locations[i, 0])!r}_{float(locations[i, 1])!r}.png" for i in range(n)], dtype=object
    )
    order = np.argsort(names, kind="stable")
    return Chips(np.ascontiguousarray(X[order]), y[order], scenes[order], locations[order, 0], locations[order, 1], names[order])


def read_json(path: Path) -> Chips:
    """Read Kaggle's ``shipsnet.json`` (keys data, labels, locations, scene_ids)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc}); expected Kaggle's shipsnet.json") from exc
    return _chips_from_json(doc, str(path))


def read_zip(path: Path) -> Chips:
    """Read a zip holding either ``shipsnet.json`` or a folder of PNG chips."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            jsons = [m for m in members if m.filename.endswith(".json")]
            pngs = {Path(m.filename).name: m for m in members if _NAME_RE.match(Path(m.filename).name)}
            if pngs:
                return _chips_from_blobs({n: zf.read(m) for n, m in pngs.items()}, f"{path}")
            if jsons:
                return _chips_from_json(json.loads(zf.read(jsons[0])), f"{path}:{jsons[0].filename}")
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip file ({exc})") from exc
    raise DataError(f"{path}: the zip holds neither shipsnet.json nor ShipsNet .png chips")


def load_chips(path: Path) -> Chips:
    """Read chips from any supported layout: a PNG folder, ``shipsnet.json`` or a zip."""
    path = Path(path)
    if path.is_dir():
        sums = path.parent / f"{path.name}.sha256"
        return read_folder(path, sums if sums.is_file() else None)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; expected a folder of chips, shipsnet.json or a zip")
    if zipfile.is_zipfile(path):
        return read_zip(path)
    return read_json(path)


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
    """Write chips as Kaggle's PNG folder plus a ``sha256sum`` file beside it."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    lines = []
    for i, name in enumerate(chips.name):
        buf = io.BytesIO()
        Image.fromarray(chips.X[i]).save(buf, format="PNG")
        (folder / name).write_bytes(buf.getvalue())
        lines.append(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {name}")
    (folder.parent / f"{folder.name}.sha256").write_text("\n".join(lines) + "\n")


def _examples(items: list[str], k: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")
