"""Validation of parsed submission rows against the expected test ids (pure, no I/O).

Every problem one pass can find is collected, each kind with line numbers, at most
five examples and the count, and raised together as one :class:`SubmissionError`.
No message ever holds a label: this code never sees one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from competition.errors import ParameterError, SubmissionError
from competition.submission import ParsedSubmission

__all__ = ["validate_submission"]


_VALUE_PROBLEMS = {
    "blank": ("'ship' is blank", "'ship' is blank", "expected a probability in [0, 1]; give a prediction on every row"),
    "text": ("'ship' must be a number, got {found}", "'ship' is not a number",
             "expected a probability in [0, 1] written as a decimal number such as 0.25"),
    "nan": ("'ship' is NaN (got {found})", "'ship' is NaN", "expected a probability in [0, 1]; "
            "replace missing predictions with a number, e.g. the value in sample_submission.csv"),
    "inf": ("'ship' is infinite (got {found})", "'ship' is infinite",
            "expected a probability in [0, 1]; clip the predictions to [0, 1]"),
    "negative": ("'ship' must be a probability in [0, 1], got {found}", "'ship' is negative",
                 "clip the predictions to [0, 1]"),
    "above_one": ("'ship' must be a probability in [0, 1], got {found}", "'ship' is above 1",
                  "clip the predictions to [0, 1]"),
}
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
        kind with line numbers, at most five examples and the count.
    ParameterError
        If ``expected_ids`` holds duplicates or ``parsed`` has lists of unequal length.
    """
    expected = [str(i) for i in expected_ids]
    index = {id_: k for k, id_ in enumerate(expected)}
    if len(index) != len(expected):
        raise ParameterError(f"expected_ids holds {len(expected) - len(index)} duplicate ids; expected distinct ids")
    if not len(parsed.ids) == len(parsed.values) == len(parsed.lines):
        raise ParameterError("parsed.ids, parsed.values and parsed.lines must have the same length")
    y_proba = np.full(len(expected), np.nan)
    seen: dict[str, list[int]] = {}
    found: dict[str, list[tuple[int, str]]] = {k: [] for k in ("unknown", "blank_id", *_VALUE_PROBLEMS)}
    for id_, text, line in zip(parsed.ids, parsed.values, parsed.lines):
        pos = index.get(id_)
        if pos is not None:
            seen.setdefault(id_, []).append(line)
        elif id_:
            found["unknown"].append((line, _short(id_)))
        else:
            found["blank_id"].append((line, ""))
        kind, value = _read_value(text)
        if kind:
            found[kind].append((line, repr(_short(text.strip())) if kind == "text" else text.strip()))
        elif pos is not None:
            y_proba[pos] = value
    missing = [i for i in expected if i not in seen]
    duplicates = [(i, lines) for i, lines in seen.items() if len(lines) > 1]
    problems = _id_problems(len(parsed.ids), expected, missing, duplicates, found)
    problems += [_value_problem(kind, found[kind]) for kind in _VALUE_PROBLEMS if found[kind]]
    if problems:
        raise SubmissionError(parsed.source, problems)
    return y_proba


def _read_value(text: str) -> tuple[str | None, float]:
    """Classify one ``ship`` text: (problem kind or None, the number)."""
    s = text.strip()
    if not s:
        return "blank", math.nan
    if s.lower() in _MISSING_WORDS:
        return "nan", math.nan
    try:
        value = float(s) if "_" not in s else math.nan
    except ValueError:
        return "text", math.nan
    if math.isnan(value):
        return "text", math.nan
    if math.isinf(value):
        return "inf", value
    if value < 0:
        return "negative", value
    return ("above_one", value) if value > 1 else (None, value)


def _id_problems(n_rows: int, expected: list[str], missing: list[str], duplicates: list[tuple[str, list[int]]],
                 found: dict[str, list[tuple[int, str]]]) -> list[str]:
    """Messages about missing, unknown, duplicate and blank ids."""
    problems = []
    fix = "give one row per id of test.csv"
    e_g = ", ".join(repr(i) for i in missing[:5])
    if n_rows != len(expected):
        detail = f" ({len(missing)} missing, e.g. {e_g})" if missing else ""
        rows = "1 row" if n_rows == 1 else f"{n_rows} rows"
        problems.append(f"{rows} but the test set has {len(expected)} ids{detail}; {fix}")
    elif missing:
        have = "1 test id has" if len(missing) == 1 else f"{len(missing)} test ids have"
        problems.append(f"{have} no row, e.g. {e_g}; {fix}")
    unknown = found["unknown"]
    if len(unknown) == 1:
        problems.append(f"line {unknown[0][0]}: id {unknown[0][1]!r} is not a test id; {fix}")
    elif unknown:
        shown = ", ".join(f"{i!r} (line {line})" for line, i in unknown[:5])
        problems.append(f"{len(unknown)} ids are not test ids: {shown}{_more(unknown)}; {fix}")
    if duplicates:
        shown = ", ".join(f"{i!r} on lines {_and(lines)}" for i, lines in duplicates[:5])
        head = "duplicate id" if len(duplicates) == 1 else f"{len(duplicates)} duplicate ids:"
        problems.append(f"{head} {shown}{_more(duplicates)}; keep one row per id")
    blank = [line for line, _ in found["blank_id"]]
    if blank:
        shown = ", ".join(map(str, blank[:5])) + _more(blank)
        where = f"line {blank[0]}" if len(blank) == 1 else f"{len(blank)} lines ({shown})"
        problems.append(f"{where}: 'id' is blank; expected a test id; fill it in or remove the row")
    return problems


def _value_problem(kind: str, rows: list[tuple[int, str]]) -> str:
    """One message for every row with a value problem of one kind."""
    one, several, fix = _VALUE_PROBLEMS[kind]
    if len(rows) == 1:
        return f"line {rows[0][0]}: {one.format(found=rows[0][1])}; {fix}"
    shown = ", ".join(f"line {line}" + (f" (got {v})" if v else "") for line, v in rows[:5])
    return f"{several} on {len(rows)} lines: {shown}{_more(rows)}; {fix}"


def _short(text: str, limit: int = 40) -> str:
    """Text cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _more(items: Sequence[object]) -> str:
    """' and N more' beyond the five examples shown."""
    return f" and {len(items) - 5} more" if len(items) > 5 else ""


def _and(numbers: Sequence[int]) -> str:
    """'14 and 90', '14, 90 and 120'."""
    text = [str(n) for n in numbers]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]
