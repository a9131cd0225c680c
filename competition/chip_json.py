"""Kaggle's ``shipsnet.json``: its structure bounded before parsing, every row checked after.

The document is one object with four lists of one entry per chip: ``data`` (19200 ints in
0..255: 6400 red, 6400 green, 6400 blue, row-major), ``labels`` (0 or 1), ``locations``
(``[lon, lat]``) and ``scene_ids`` (PlanetScope scene ids, which begin with the acquisition
date ``YYYYMMDD``).  Nothing is coerced: a label of 0.7, a pixel of 300 or 2.5 and a scene id
that cannot be part of a file name are errors naming the row, never silently rounded.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

import numpy as np

from competition.errors import DataError

__all__ = ["JSON_KEYS", "ROW_LENGTH", "check_scene_id", "scene_id_problem", "load_json_doc", "parse_chip_doc"]

JSON_KEYS = ("data", "labels", "locations", "scene_ids")
ROW_LENGTH = 19200
_MIN_ROW_CHARS = 2 * ROW_LENGTH - 1  # '0,0,...,0': the shortest text of one row of 'data'
_SCENE_RE = re.compile(r"^(?P<date>\d{8})(?:_[0-9A-Za-z]+)*$")
_DECIMAL_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_SCENE_ID_FORM = ("expected the acquisition date YYYYMMDD then '_'-separated letters and digits, "
                  "e.g. '20180708_180909_0f47' (scene ids become part of chip file names, and their "
                  "first 8 characters are the day that groups the chips)")


def scene_id_problem(scene_id: object) -> str | None:
    """Why ``scene_id`` cannot be used as a ShipsNet scene id, or None if it can."""
    if not isinstance(scene_id, str):
        return f"is {_short(scene_id)} ({type(scene_id).__name__}), not a string"
    shown = repr(scene_id[:40]) + ("..." if len(scene_id) > 40 else "")
    if not scene_id:
        return "is empty"
    for part, what in (("/", "'/'"), ("\\", "'\\'"), ("..", "'..'")):
        if part in scene_id:
            return f"is {shown}, which contains {what}"
    if any(ord(c) < 32 or ord(c) == 127 for c in scene_id):
        return f"is {shown}, which contains a control character"
    m = _SCENE_RE.match(scene_id)
    if m is None:
        return f"is {shown}, not a scene id"
    try:
        datetime.strptime(m["date"], "%Y%m%d")
    except ValueError:
        return f"is {shown}, whose first 8 characters {m['date']!r} are not a date YYYYMMDD"
    return None


def check_scene_id(scene_id: object, where: str) -> str:
    """Return ``scene_id`` if it is a usable scene id.

    Raises
    ------
    DataError
        Naming ``where``, the scene id and what is wrong with it.
    """
    problem = scene_id_problem(scene_id)
    if problem is not None:
        raise DataError(f"{where}: scene id {problem}; {_SCENE_ID_FORM}")
    return scene_id


def load_json_doc(text: str, where: str) -> object:
    """Parse the text of a ``shipsnet.json``, refusing structure that no such file has.

    Before parsing, the lists (``[``), objects (``{``) and strings (``"``) are counted against
    what a ShipsNet document of this length can hold, so that deep nesting and documents of
    millions of tiny lists are refused before they take memory.

    Raises
    ------
    DataError
        If the structure is impossible for a ShipsNet file or the text is not valid JSON.
    """
    n_max = len(text) // _MIN_ROW_CHARS + 1
    budget = {"[": 2 * n_max + 4, "{": 1, '"': 2 * n_max + 8}
    for char, allowed in budget.items():
        found = text.count(char)
        if found > allowed:
            raise DataError(
                f"{where}: holds {found} {char!r} where a ShipsNet JSON of {len(text)} characters holds at most "
                f"{allowed}; expected one object {{{', '.join(JSON_KEYS)}}} whose 'data' rows are flat lists of "
                f"{ROW_LENGTH} ints (not nested, not deeper)"
            )
    try:
        return json.loads(text, parse_constant=lambda name: _reject_constant(name, where))
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{where}: not a readable JSON file ({exc}); expected Kaggle's shipsnet.json") from exc


def _reject_constant(name: str, where: str):
    raise DataError(f"{where}: holds {name}, which is not a number; expected finite numbers only")


def parse_chip_doc(doc: object, where: str, max_chips: int) -> tuple[np.ndarray, ...]:
    """Check a parsed ``shipsnet.json`` and turn it into arrays, in file order.

    The rows of ``doc["data"]`` are released as they are converted, so the pixels are held
    once as Python lists and once as uint8, never twice as lists.

    Returns
    -------
    X : ndarray of shape (n, 80, 80, 3), uint8
    y : ndarray of shape (n,), int64
    scene_id : ndarray of shape (n,), object (str)
    lon, lat : ndarray of shape (n,), float64

    Raises
    ------
    DataError
        With every problem found, by kind: each names the rows (at most five, and the count),
        the values found and the values expected.
    """
    n = _check_layout(doc, where, max_chips)
    problems = _Problems()
    for i, v in enumerate(doc["labels"]):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v not in (0, 1):
            problems.add("label(s) other than 0 or 1", f"'labels'[{i}] is {_short(v)}", "expected 0 (no ship) or 1 (ship)")
    for i, s in enumerate(doc["scene_ids"]):
        problem = scene_id_problem(s)
        if problem is not None:
            problems.add("unusable scene id(s)", f"'scene_ids'[{i}] {problem}", _SCENE_ID_FORM)
    lon, lat = np.zeros(n), np.zeros(n)
    for i, loc in enumerate(doc["locations"]):
        if _location_ok(loc):
            lon[i], lat[i] = loc
        else:
            problems.add("unusable location(s)", f"'locations'[{i}] is {_short(loc)}",
                         "expected [lon, lat] as plain decimals, lon in -180..180 and lat in -90..90")
    X = _pixels(doc["data"], problems)
    if problems:
        raise DataError("\n".join(f"{where}: {line}" for line in problems.lines()))
    y = np.array([int(v) for v in doc["labels"]], dtype=np.int64)
    return X, y, np.array(doc["scene_ids"], dtype=object), lon, lat


def _check_layout(doc: object, where: str, max_chips: int) -> int:
    """Number of chips, once the four keys are lists of one same length within ``max_chips``."""
    if not isinstance(doc, dict) or any(k not in doc for k in JSON_KEYS):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{where}: expected a JSON object with keys {list(JSON_KEYS)}, got {found}")
    not_lists = [k for k in JSON_KEYS if not isinstance(doc[k], list)]
    if not_lists:
        found = {k: type(doc[k]).__name__ for k in not_lists}
        raise DataError(f"{where}: {found} must be lists with one entry per chip")
    lengths = {k: len(doc[k]) for k in JSON_KEYS}
    n = lengths["labels"]
    if set(lengths.values()) != {n}:
        raise DataError(f"{where}: keys have different lengths {lengths}; expected one entry per chip in each")
    if n == 0:
        raise DataError(f"{where}: holds no chips; expected at least one entry in each of {list(JSON_KEYS)}")
    if n > max_chips:
        raise DataError(f"{where}: holds {n} chips, more than the limit of {max_chips}; "
                        "ShipsNet has 4000, so check that this is the file you meant")
    return n


def _location_ok(loc: object) -> bool:
    if not isinstance(loc, list) or len(loc) != 2:
        return False
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in loc):
        return False
    lon, lat = float(loc[0]), float(loc[1])
    return -180 <= lon <= 180 and -90 <= lat <= 90 and all(_DECIMAL_RE.match(repr(v)) for v in (lon, lat))


def _pixels(rows: list, problems: _Problems) -> np.ndarray:
    """``(n, 80, 80, 3)`` uint8 from the rows of 'data'; each row is dropped from ``rows`` once converted."""
    flat = np.zeros((len(rows), ROW_LENGTH), dtype=np.uint8)
    for i in range(len(rows)):
        row, rows[i] = rows[i], None
        problem = _pixel_row(row, flat[i])
        if problem is not None:
            kind, example = problem
            problems.add(kind, f"'data'[{i}] {example}", f"expected {ROW_LENGTH} ints in 0..255 per row "
                         "(6400 red, 6400 green, 6400 blue)")
    return flat.reshape(len(rows), 3, 80, 80).transpose(0, 2, 3, 1)


def _pixel_row(row: object, out: np.ndarray) -> tuple[str, str] | None:
    """Copy one row of pixels into ``out``; (kind, example) if it is not 19200 ints in 0..255."""
    if not isinstance(row, list) or len(row) != ROW_LENGTH:
        found = f"has {len(row)} values" if isinstance(row, list) else f"is {_short(row)}"
        return "row(s) of 'data' that are not a list of 19200 values", found
    try:
        arr = np.array(row)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iu":
        bad = np.flatnonzero((arr < 0) | (arr > 255))
        if not len(bad):
            out[:] = arr
            return None
        j = int(bad[0])
    else:
        j = next((j for j, v in enumerate(row) if type(v) is not int or not 0 <= v <= 255), 0)
    return "row(s) of 'data' with pixels that are not ints in 0..255", f"value {j} is {_short(row[j])}"


def _short(value: object) -> str:
    """A short printable form of a JSON value (big ints in exponent form, long reprs cut)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**9:
        try:
            return f"{value:.3g}"
        except OverflowError:
            return f"an int of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Problems:
    """Problems by kind: at most five examples of each, with the count."""

    def __init__(self):
        self._kinds: dict[str, tuple[str, list[str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._kinds)

    def add(self, kind: str, example: str, expected: str) -> None:
        self._kinds.setdefault(kind, (expected, []))[1].append(example)

    def lines(self) -> list[str]:
        out = []
        for kind, (expected, examples) in self._kinds.items():
            more = f" and {len(examples) - 5} more" if len(examples) > 5 else ""
            out.append(f"{len(examples)} {kind}: {'; '.join(examples[:5])}{more}; {expected}")
        return out
