"""Validation of parsed submission rows against the expected test ids (pure, no I/O).

Every problem one pass can find is collected, each kind with line numbers, at most
five examples and the count, and raised together as one :class:`SubmissionError`.
The rows are checked with numpy and pandas, without a Python loop per row, so the
cost stays linear in the size of the file.  No message ever holds a label: this
code never sees one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat

import numpy as np
import pandas as pd

from competition.errors import ParameterError, SubmissionError
from competition.submission import ParsedSubmission

__all__ = ["validate_submission"]

_CLIP = "clip the predictions to [0, 1]"
_VALUE_PROBLEMS = {  # kind: (one row, several rows, fix)
    "blank": ("'ship' is blank", "'ship' is blank", "expected a probability in [0, 1]; give a prediction on every row"),
    "text": ("'ship' must be a number, got {found}", "'ship' is not a number",
             "expected a probability in [0, 1] written as a decimal number such as 0.25"),
    "nan": ("'ship' is NaN (got {found})", "'ship' is NaN", "expected a probability in [0, 1]; "
            "replace missing predictions with a number, e.g. the value in sample_submission.csv"),
    "inf": ("'ship' is infinite (got {found})", "'ship' is infinite", f"expected a probability in [0, 1]; {_CLIP}"),
    "negative": ("'ship' must be a probability in [0, 1], got {found}", "'ship' is negative", _CLIP),
    "above_one": ("'ship' must be a probability in [0, 1], got {found}", "'ship' is above 1", _CLIP),
}
_KINDS = list(_VALUE_PROBLEMS)  # kind code k + 1 in the arrays below; 0 is a valid value
_NUMBER = re.compile(r"\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|inf|infinity|nan)\s*", re.ASCII | re.IGNORECASE)
_UNKNOWN_ID, _BLANK_ID = -1, -2  # positions of ids that are not test ids
_MISSING_WORDS = frozenset({"nan", "-nan", "+nan", "na", "n/a", "null", "none"})


def validate_submission(parsed: ParsedSubmission, expected_ids: Sequence[str]) -> np.ndarray:
    """Check parsed rows against the test ids and return the probabilities in test order.

    Parameters
    ----------
    parsed : ParsedSubmission
        Rows from :func:`competition.submission.parse_submission`, in any order.
    expected_ids : sequence of str, length n
        The test ids (public/test.csv).

    Returns
    -------
    y_proba : ndarray of float64, shape (n,)
        ``y_proba[i]`` is the ``ship`` value of the row whose id is ``expected_ids[i]``.

    Raises
    ------
    SubmissionError
        Listing every problem found: missing, unknown, duplicate or blank ids,
        and blank, non-numeric, NaN, infinite, negative or above-1 values, each
        kind with line numbers, at most five examples and the count.  Values
        that look like percentages (largest above 1 and at most 100) get the
        fix "divide by 100".
    ParameterError
        If ``expected_ids`` holds duplicates or ``parsed`` has lists of unequal length.
    """
    expected = [str(i) for i in expected_ids]
    index = dict(zip(expected, range(len(expected))))
    if len(index) != len(expected):
        raise ParameterError(f"expected_ids holds {len(expected) - len(index)} duplicate ids; expected distinct ids")
    if not len(parsed.ids) == len(parsed.values) == len(parsed.lines):
        raise ParameterError("parsed.ids, parsed.values and parsed.lines must have the same length")
    lookup = {"": _BLANK_ID, **index}
    pos = np.fromiter(map(lookup.get, parsed.ids, repeat(_UNKNOWN_ID)), dtype=np.int64, count=len(parsed.ids))
    y_row, kind = _read_values(parsed.values)
    problems = _id_problems(parsed.ids, parsed.lines, pos, expected)
    problems += _value_problems(parsed.values, parsed.lines, y_row, kind)
    if problems:
        raise SubmissionError(parsed.source, problems)
    y_proba = np.full(len(expected), np.nan)
    y_proba[pos] = y_row
    return y_proba


def _read_values(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The number of each ``ship`` text and its problem (0: none, k + 1: ``_KINDS[k]``)."""
    codes, texts = pd.factorize(np.asarray(values, dtype=object).reshape(len(values)))
    texts = texts.astype(object)
    numeric = np.fromiter(map(bool, map(_NUMBER.fullmatch, texts)), dtype=bool, count=texts.size)
    number = np.full(texts.size, np.nan)
    number[numeric] = np.fromiter(map(float, texts[numeric]), dtype=np.float64, count=int(numeric.sum()))
    kind = np.zeros(texts.size, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        kind[number > 1] = _KINDS.index("above_one") + 1
        kind[number < 0] = _KINDS.index("negative") + 1
    kind[np.isinf(number)] = _KINDS.index("inf") + 1
    unread = np.flatnonzero(np.isnan(number))
    if unread.size:
        stripped = list(map(str.strip, texts[unread]))
        word = np.fromiter(map(_MISSING_WORDS.__contains__, map(str.lower, stripped)), dtype=bool, count=unread.size)
        empty = np.fromiter(map(len, stripped), dtype=np.int64, count=unread.size) == 0
        kind[unread] = np.where(empty, _KINDS.index("blank"), np.where(word, _KINDS.index("nan"),
                                                                       _KINDS.index("text"))) + 1
    return number[codes], kind[codes]


def _id_problems(ids: Sequence[str], lines: Sequence[int], pos: np.ndarray, expected: list[str]) -> list[str]:
    """Messages about the row count, missing, unknown, duplicate and blank ids."""
    fix = "give one row per id of test.csv"
    counts = np.bincount(pos[pos >= 0], minlength=len(expected))
    missing = np.flatnonzero(counts == 0)
    e_g = ", ".join(repr(_short(expected[i])) for i in missing[:5])
    problems = []
    if len(ids) != len(expected):
        detail = f" ({missing.size} missing, e.g. {e_g})" if missing.size else ""
        rows = "1 row" if len(ids) == 1 else f"{len(ids)} rows"
        problems.append(f"{rows} but the test set has {len(expected)} ids{detail}; {fix}")
    elif missing.size:
        have = "1 test id has" if missing.size == 1 else f"{missing.size} test ids have"
        problems.append(f"{have} no row, e.g. {e_g}; {fix}")
    unknown, blank = np.flatnonzero(pos == _UNKNOWN_ID), np.flatnonzero(pos == _BLANK_ID)
    if unknown.size == 1:
        problems.append(f"line {lines[unknown[0]]}: id {_short(ids[unknown[0]])!r} is not a test id; {fix}")
    elif unknown.size:
        shown = ", ".join(f"{_short(ids[i])!r} (line {lines[i]})" for i in unknown[:5])
        problems.append(f"{unknown.size} ids are not test ids: {shown}{_more(unknown.size)}; {fix}")
    problems += _duplicate_problem(ids, lines, pos, counts)
    if blank.size:
        shown = ", ".join(str(lines[i]) for i in blank[:5]) + _more(blank.size)
        where = f"line {lines[blank[0]]}" if blank.size == 1 else f"{blank.size} lines ({shown})"
        problems.append(f"{where}: 'id' is blank; expected a test id; fill it in or remove the row")
    return problems


def _duplicate_problem(ids: Sequence[str], lines: Sequence[int], pos: np.ndarray, counts: np.ndarray) -> list[str]:
    """One message for the ids on several rows: five ids in file order, five lines of each, and the counts."""
    rows = np.flatnonzero((pos >= 0) & (counts[np.maximum(pos, 0)] > 1))
    if not rows.size:
        return []
    which, first = np.unique(pos[rows], return_index=True)
    shown = []
    for k in np.sort(first)[:5]:
        at = rows[pos[rows] == pos[rows[k]]]
        first_lines = [lines[i] for i in at[:5]]
        where = f"lines {_and(first_lines)}" if at.size <= 5 else \
            f"{at.size} lines ({', '.join(map(str, first_lines))}{_more(at.size)})"
        shown.append(f"{_short(ids[rows[k]])!r} on {where}")
    head = "duplicate id" if which.size == 1 else f"{which.size} duplicate ids:"
    return [f"{head} {', '.join(shown)}{_more(which.size)}; keep one row per id"]


def _value_problems(values: Sequence[str], lines: Sequence[int], y_row: np.ndarray, kind: np.ndarray) -> list[str]:
    """One message per kind of value problem, with at most five examples and the count."""
    finite = y_row[np.isfinite(y_row)]
    largest = finite.max() if finite.size else 0.0
    problems = []
    for code, name in enumerate(_KINDS, start=1):
        rows = np.flatnonzero(kind == code)
        if not rows.size:
            continue
        one, several, fix = _VALUE_PROBLEMS[name]
        if name == "above_one" and 1 < largest <= 100:
            fix = f"the values look like percentages (the largest is {largest:g}); divide by 100 to get probabilities"
        found = [_found(name, values[i]) for i in rows[:5]]
        if rows.size == 1:
            problems.append(f"line {lines[rows[0]]}: {one.format(found=found[0])}; {fix}")
            continue
        shown = ", ".join(f"line {lines[i]}" + (f" (got {v})" if v else "") for i, v in zip(rows[:5], found))
        problems.append(f"{several} on {rows.size} lines: {shown}{_more(rows.size)}; {fix}")
    return problems


def _found(kind: str, text: str) -> str:
    """The text of a bad value as a message shows it: stripped, cut short, quoted if it is not a number."""
    text = _short(text.strip())
    return repr(text) if kind == "text" else text


def _short(text: str, limit: int = 40) -> str:
    """Text cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _more(count: int) -> str:
    """' and N more' beyond the five examples shown."""
    return f" and {count - 5} more" if count > 5 else ""


def _and(numbers: Sequence[int]) -> str:
    """'14 and 90', '14, 90 and 120'."""
    text = [str(n) for n in numbers]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]
