"""Splitting the rows of a two-column CSV body with numpy, at a bounded cost per byte.

The body of a submission (everything after the header, line ends already
``\\n``) is split without a Python loop per row or per byte: the positions of
quotes, commas and line ends are found with numpy, a line end or comma is a
delimiter when an even number of quotes comes before it (RFC 4180: a quote
inside a quoted field is doubled), and the fields are cut out of the bytes in
one ``np.repeat`` and one ``str.split``.  Blank lines are skipped; line
numbers count every line end, including those inside quoted fields.

A quote must open a field (spaces before it are allowed) or close one
(spaces after it are allowed); a quote elsewhere, or one never closed, is
reported with its line, and the rows after it are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RowScan", "scan_rows"]

_QUOTE, _COMMA, _NL = ord('"'), ord(","), ord("\n")
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(" "), ord("\t"), 0x0B, 0x0C]] = True
_BLANK = _SPACE.copy()  # what a blank line holds
_BLANK[_NL] = True
_SEP = "\x00"  # never in a parsed body: NUL bytes are refused before


@dataclass(frozen=True)
class RowScan:
    """The rows of a body: ``fields[j][i]`` is field j of row i (raw text, ``''`` when absent)."""

    fields: tuple[list[str], list[str]]
    lines: list[int]
    problems: list[str]


@dataclass(frozen=True)
class _Quotes:
    """Positions of the quotes that delimit fields, and the first misplaced or unclosed one."""

    positions: np.ndarray  # every '"'
    structural: np.ndarray  # mask: opens or closes a field, or is the first of a doubled '""'
    first_bad: int  # position of the first misplaced or unclosed quote, or -1
    unclosed: bool


def scan_rows(body: bytes, first_line: int) -> RowScan:
    """Split a CSV body of two columns into rows.

    Parameters
    ----------
    body : bytes
        UTF-8 text without NUL bytes, line ends normalised to ``\\n``.
    first_line : int
        Line number of the first byte of ``body``.

    Returns
    -------
    RowScan
        The two fields of each non-blank row and the line it starts on, or
        ``problems`` (then no rows): rows with more than two fields (at most
        five examples and the count), a misplaced or unclosed quote.
    """
    if not body.endswith(b"\n"):
        body += b"\n"
    b = np.frombuffer(body, dtype=np.uint8)
    newline, comma = b == _NL, b == _COMMA
    line_ends, quotes = newline, _Quotes(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), -1, False)
    if b'"' in body:
        inside = (np.cumsum(b == _QUOTE, dtype=np.int32) & 1).astype(bool)  # after an odd number of quotes
        newline, comma = newline & ~inside, comma & ~inside
        quotes = _find_quotes(b, newline | comma)
    ends = np.flatnonzero(newline)  # the line end of each row
    if quotes.first_bad >= 0:
        ends = ends[ends < quotes.first_bad]
    size = int(ends[-1]) + 1 if ends.size else 0  # the bytes of the rows checked
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64) if size else ends
    n_commas = np.add.reduceat(comma[:size].view(np.uint8), starts, dtype=np.int64) if size else ends
    blank = ~np.logical_or.reduceat(~_BLANK[b[:size]], starts) if size else ends.astype(bool)
    lines = first_line + (np.arange(ends.size) if line_ends is newline else _count_before(line_ends, starts))
    wide = ~blank & (n_commas > 1)
    problems = _too_many_fields(lines[wide], n_commas[wide] + 1)
    if quotes.first_bad >= 0:
        problems.append(_quote_problem(quotes, first_line + int(_count_before(line_ends, [quotes.first_bad])[0])))
    if problems:
        return RowScan(([], []), [], problems)
    cut = b.copy()
    cut[comma | newline] = ord(_SEP)
    keep = np.repeat(~blank, np.diff(np.append(starts, size)))  # the bytes of blank rows go, line ends included
    keep[quotes.positions[quotes.structural]] = False
    return RowScan(_split(cut, keep, ends[~blank & (n_commas == 0)]), lines[~blank].tolist(), [])


def _split(cut: np.ndarray, keep: np.ndarray, single: np.ndarray) -> tuple[list[str], list[str]]:
    """The two fields of every row: the ``keep`` bytes of ``cut`` split at the separators.

    ``single`` holds the line ends of the rows of one field, doubled so that their second field is empty.
    """
    if single.size:
        counts = keep.astype(np.intp)
        counts[single] = 2
        kept = np.repeat(cut, counts)
    else:
        kept = cut[keep]
    parts = kept.tobytes().decode("utf-8").split(_SEP)
    parts.pop()  # after the last separator
    return parts[0::2], parts[1::2]


def _count_before(mask: np.ndarray, positions) -> np.ndarray:
    """How many of the bytes before each position are set in ``mask``."""
    counts = np.zeros(len(mask) + 1, dtype=np.int32)
    np.cumsum(mask, dtype=np.int32, out=counts[1:])
    return counts[positions]


def _find_quotes(b: np.ndarray, delimiter: np.ndarray) -> _Quotes:
    """Classify every quote: opening, closing, doubled; find the first misplaced or unclosed one."""
    nonspace = _count_before(~_SPACE[b], slice(None))  # nonspace[i]: bytes before i other than spaces and tabs
    q = np.flatnonzero(b == _QUOTE)
    odd = np.arange(q.size) % 2 == 1  # an odd number of quotes before it: inside a quoted field
    doubled = np.zeros(q.size, dtype=bool)
    doubled[:-1] = odd[:-1] & (q[1:] == q[:-1] + 1)  # the first of '""' inside a quoted field
    second = np.concatenate(([False], doubled[:-1]))
    opening, closing = ~odd & ~second, odd & ~doubled
    edges = np.concatenate(([-1], np.flatnonzero(delimiter), [len(b)]))
    k = _count_before(delimiter, q)  # the field of each quote lies between edges[k] and edges[k + 1]
    bad = (opening & (nonspace[q] != nonspace[edges[k] + 1])) | (closing & (nonspace[edges[k + 1]] != nonspace[q + 1]))
    structural = opening | closing | doubled
    first_bad = int(q[bad][0]) if bad.any() else -1
    if q.size % 2 == 1 and first_bad < 0:
        return _Quotes(q, structural, int(q[opening][-1]), True)
    return _Quotes(q, structural, first_bad, False)


def _too_many_fields(lines: np.ndarray, fields: np.ndarray) -> list[str]:
    """One message for every row with more fields than the header."""
    if not lines.size:
        return []
    bad = [f"line {line} ({n} fields)" for line, n in zip(lines[:5].tolist(), fields[:5].tolist())]
    more = f" and {lines.size - 5} more" if lines.size > 5 else ""
    where = bad[0] if lines.size == 1 else f"{lines.size} rows: " + ", ".join(bad) + more
    return [f"{where}: more fields than the header; expected 2 fields per row (id,ship); remove the extra commas"]


def _quote_problem(quotes: _Quotes, line: int) -> str:
    """The message for the first misplaced or unclosed quote."""
    if quotes.unclosed:
        return f"line {line}: a quoted field is never closed; expected a closing '\"'; check the quotes on that line"
    return (f"line {line}: a '\"' in the middle of a field; expected quotes only around a whole field (a quote "
            "inside a quoted field is written '\"\"'); remove the quote or quote the whole field; "
            "the lines after it were not checked")
