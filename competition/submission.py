"""Reading a submission file: bytes to parsed rows with their line numbers.

This module only reads.  It checks what can be checked without the test set
(encoding, binary content, the header, the shape of each row) and hands the
rows to :func:`competition.scoring.validate_submission`, which checks them
against the test ids.  A file is UTF-8 (a BOM and CRLF line ends are
accepted) with the header ``id,ship``; blank lines are ignored.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from competition.errors import ParameterError, SubmissionError

__all__ = ["COLUMNS", "ParsedSubmission", "parse_submission", "read_submission_file"]

COLUMNS = ("id", "ship")
_BOM = b"\xef\xbb\xbf"
_NEWLINE = re.compile(r"\r\n|\r|\n")
_FIX_CSV = "save the predictions as a UTF-8 CSV file with the header 'id,ship'"
_SIGNATURES = (  # (leading bytes, what the file is)
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive (or an Excel workbook)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


@dataclass(frozen=True)
class ParsedSubmission:
    """The rows of a submission file, not yet checked against the test ids.

    Attributes
    ----------
    ids : list of str, length n_rows
        The ``id`` of each row, surrounding spaces removed.
    values : list of str, length n_rows
        The raw text of the ``ship`` column of each row.
    lines : list of int, length n_rows
        The 1-based line of the file each row starts on (the header is line 1).
    columns : list of str
        The header's column names.
    source : str
        Name of the file, the prefix of every message about it.
    data : bytes
        The bytes that were parsed (store these, not a second read of the file).
    """

    ids: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    columns: list[str] = field(default_factory=lambda: list(COLUMNS))
    source: str = "submission.csv"
    data: bytes = field(default=b"", repr=False)

    def __len__(self) -> int:
        return len(self.ids)


def read_submission_file(path: str | Path, *, max_bytes: int) -> ParsedSubmission:
    """Read and parse a submission file, refusing oversized files before reading them.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    max_bytes : int
        Largest accepted file size in bytes, checked with ``stat`` before reading.

    Returns
    -------
    ParsedSubmission

    Raises
    ------
    SubmissionError
        If the path does not exist, is not a regular file, is larger than
        ``max_bytes``, cannot be read, or is not a well-formed submission
        (see :func:`parse_submission`).  The source is the file name.
    ParameterError
        If ``max_bytes`` is not a positive int.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ParameterError(f"max_bytes={max_bytes!r} is invalid; expected an int >= 1")
    path = Path(path)
    source = path.name or str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SubmissionError(source, [f"no such file: {str(path)!r}; check the path and the file name"]) from None
    except OSError as exc:
        raise SubmissionError(source, [f"cannot read {str(path)!r}: {exc.strerror}"]) from None
    if path.is_dir():
        raise SubmissionError(
            source, [f"{str(path)!r} is a directory, not a file; expected a CSV file such as submission.csv"]
        )
    if info.st_size > max_bytes:
        raise SubmissionError(source, [_too_large(info.st_size, max_bytes)])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(source, [f"cannot read {str(path)!r}: {exc.strerror}"]) from None
    return parse_submission(data, source)


def parse_submission(data: bytes, source: str) -> ParsedSubmission:
    """Parse the bytes of a submission file into rows with their line numbers.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        Name of the file, used as the prefix of every message.

    Returns
    -------
    ParsedSubmission
        Rows in file order; zero rows for a header-only file (validation
        reports the missing ids).

    Raises
    ------
    SubmissionError
        With every structural problem found: empty or binary file, bytes that
        are not UTF-8, a wrong header, rows with too many fields or an
        unclosed quote.
    """
    text = _decode(data, source)
    physical = _NEWLINE.split(text)
    if not physical[0].strip():
        raise SubmissionError(source, ["line 1 is blank; expected the header 'id,ship'; "
                                       "remove the blank lines above it"])
    columns = [c.strip() for c in next(csv.reader([physical[0]]))]
    problems = _check_columns(columns)
    if problems:
        raise SubmissionError(source, problems)
    try:
        rows = pd.read_csv(
            io.StringIO(text), header=None, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=False, index_col=False,
        ).to_numpy(dtype=object)
    except pd.errors.ParserError as exc:
        raise SubmissionError(source, _describe_bad_rows(text, str(exc))) from None
    body = rows[1:]
    lines = _row_lines(text, body)
    keep = ~_blank_lines(body, lines, physical)
    i_id, i_ship = columns.index("id"), columns.index("ship")
    return ParsedSubmission(
        ids=[str(v).strip() for v in body[keep, i_id]],
        values=[str(v) for v in body[keep, i_ship]],
        lines=lines[keep].tolist(),
        columns=columns,
        source=source,
        data=data,
    )


def _decode(data: bytes, source: str) -> str:
    """Check for binary content and decode UTF-8 (without a BOM), or raise SubmissionError."""
    if not data.strip():
        what = "0 bytes" if not data else "only spaces and line ends"
        raise SubmissionError(source, [f"the file is empty ({what}); expected the header 'id,ship' "
                                       "and one row per test id"])
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            fix = "save it as UTF-8" if "UTF-16" in kind else _FIX_CSV
            raise SubmissionError(source, [f"the file is {kind}, not a CSV text file; {fix}"])
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _position(data, nul)
        raise SubmissionError(source, [f"line {line}, byte {col}: binary content (a NUL byte at offset {nul}); "
                                       f"expected a CSV text file; {_FIX_CSV}"])
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = start + exc.start
        line, col = _position(data, pos)
        bad = data[pos:pos + 1]
        raise SubmissionError(source, [
            f"line {line}, byte {col}: byte 0x{bad.hex()} is not valid UTF-8 (in Latin-1 it would be "
            f"{bad.decode('latin-1')!r}); expected UTF-8 text; save the file as UTF-8"
        ]) from None
    if not text.strip():
        raise SubmissionError(source, ["the file is empty (only a BOM or spaces); expected the header 'id,ship' "
                                       "and one row per test id"])
    return text


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and byte-in-line of a byte offset."""
    return data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def _check_columns(columns: list[str]) -> list[str]:
    """Problems with the header: missing, unexpected and repeated column names."""
    head = f"expected columns {list(COLUMNS)}, got {columns}"
    sep = next((s for s in ";\t|" if len(columns) == 1 and s in columns[0]), None)
    if sep:
        return [f"the header is not separated by commas; {head}; separate the columns with ',' not {sep!r}"]
    missing = [c for c in COLUMNS if c not in columns]
    unexpected = [c for c in dict.fromkeys(columns) if c not in COLUMNS]
    rename = len(missing) == 1 and len(unexpected) == 1
    fix = f"rename {unexpected[0]!r} to {missing[0]!r}" if rename else "the header must be 'id,ship'"
    problems = [f"missing column {c!r}; {head}; {fix}" for c in missing]
    for c in [] if rename else unexpected:
        how = "write the file with index=False" if c in ("", "Unnamed: 0") else "remove it"
        how = "remove the comma at the end of the header" if c == "" and columns[-1] == "" else how
        problems.append(f"unexpected column {c!r}; {head}; {how}")
    problems += [f"column {c!r} appears {columns.count(c)} times; {head}; keep one"
                 for c in dict.fromkeys(columns) if c in COLUMNS and columns.count(c) > 1]
    return problems


def _row_lines(text: str, body: np.ndarray) -> np.ndarray:
    """1-based starting line of each data row (quoted fields may span lines)."""
    n = len(body)
    extra = np.zeros(n, dtype=np.int64)
    if '"' in text and n:
        for j in range(body.shape[1]):
            extra += np.array([len(_NEWLINE.findall(str(v))) for v in body[:, j]], dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(extra)[:-1]]) if n else extra
    return 2 + np.arange(n, dtype=np.int64) + before


def _blank_lines(body: np.ndarray, lines: np.ndarray, physical: list[str]) -> np.ndarray:
    """Mask of rows that come from blank lines (ignored, unlike a row of empty fields)."""
    empty = np.array([all(not str(v).strip() for v in row) for row in body], dtype=bool)
    for i in np.flatnonzero(empty):
        empty[i] = not physical[lines[i] - 1].strip()
    return empty


def _describe_bad_rows(text: str, parser_message: str) -> list[str]:
    """Problems for rows pandas refused: more fields than the header, or an unclosed quote."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    width, bad, start = len(next(reader)), [], 2
    try:
        for row in reader:
            if len(row) > width:
                bad.append(f"line {start} ({len(row)} fields)")
            start = reader.line_num + 1
    except csv.Error:
        return _examples_problem(bad, width) + [
            f"line {start}: a quoted field is never closed; expected a closing '\"'; check the quotes on that line"
        ]
    return _examples_problem(bad, width) or [f"the CSV cannot be parsed ({parser_message}); {_FIX_CSV}"]


def _examples_problem(bad: list[str], width: int) -> list[str]:
    """One message for every row with more fields than the header."""
    if not bad:
        return []
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    where = bad[0] if len(bad) == 1 else f"{len(bad)} rows: " + ", ".join(bad[:5]) + more
    return [f"{where}: more fields than the header; expected {width} fields per row (id,ship); "
            "remove the extra commas"]


def _too_large(size: int, max_bytes: int) -> str:
    """Message for a file over the size limit."""
    return (f"the file is {size:,} bytes ({size / 2**20:.1f} MiB) but the limit is {max_bytes:,} bytes "
            f"({max_bytes / 2**20:.1f} MiB); expected one short row per test id; "
            "submit only the columns id,ship, with probabilities rounded to a few digits")
