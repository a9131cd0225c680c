"""Reading a submission file: bytes to parsed rows with their line numbers.

This module only reads.  It checks what can be checked without the test set
(what the path is, its size, the encoding, binary content, the header, the
shape of each row) and hands the rows to
:func:`competition.validation.validate_submission`, which checks them against
the test ids.  A file is UTF-8 (a BOM and CRLF line ends are accepted) with
the header ``id,ship``; blank lines are ignored.

The cost is bounded: only regular files are opened, at most ``max_bytes + 1``
bytes are read, and the rows are split by :mod:`competition.csvscan` with
numpy, without a Python loop per row.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from competition.csvscan import scan_rows
from competition.errors import DataError, ParameterError, SubmissionError

__all__ = ["COLUMNS", "ParsedSubmission", "parse_submission", "read_submission_file", "read_test_ids"]

COLUMNS = ("id", "ship")
_BOM = b"\xef\xbb\xbf"
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
_NOT_FILES = (  # (stat test, what the path is)
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


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
    """Read and parse a submission file, refusing what is not a small regular file before reading it.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    max_bytes : int
        Largest accepted file size in bytes, checked with ``stat`` before
        reading; at most ``max_bytes + 1`` bytes are ever read.

    Returns
    -------
    ParsedSubmission

    Raises
    ------
    SubmissionError
        If the path does not exist, is not a regular file (a directory, a
        FIFO, a device), is larger than ``max_bytes``, cannot be read, or is
        not a well-formed submission (see :func:`parse_submission`).  The
        source is the file name.
    ParameterError
        If ``max_bytes`` is not a positive int.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
        raise ParameterError(f"max_bytes={max_bytes!r} is invalid; expected an int >= 1")
    path = Path(path)
    source, shown = path.name or str(path), repr(str(path)[:200])
    info = _stat(path, source, shown)
    kind = next((what for test, what in _NOT_FILES if test(info.st_mode)), None)
    if kind or not stat.S_ISREG(info.st_mode):
        fix = "give the path of the CSV file itself" if kind == "a directory" else \
            "write the predictions to a regular file first and give its path"
        raise SubmissionError(source, [f"{shown} is {kind or 'not a regular file'}, not a file; "
                                       f"expected a CSV file such as submission.csv; {fix}"])
    if info.st_size > max_bytes:
        raise SubmissionError(source, [_too_large(info.st_size, max_bytes)])
    return parse_submission(_read_bounded(path, info, max_bytes, source, shown), source)


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
        are not UTF-8, a wrong header, rows with too many fields, a misplaced
        or unclosed quote.
    """
    start = _check_bytes(data, source)
    body = data[start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    end = body.find(b"\n")
    header = (body if end < 0 else body[:end]).decode("utf-8")
    if not header.strip():
        raise SubmissionError(source, ["line 1 is blank; expected the header 'id,ship'; "
                                       "remove the blank lines above it"])
    columns = _read_header(header)
    problems = _check_columns(columns)
    if problems:
        raise SubmissionError(source, problems)
    scan = scan_rows(b"" if end < 0 else body[end + 1:], first_line=2)
    if scan.problems:
        raise SubmissionError(source, scan.problems)
    i_id = columns.index("id")
    return ParsedSubmission(
        ids=list(map(str.strip, scan.fields[i_id])),
        values=scan.fields[1 - i_id],
        lines=scan.lines,
        columns=columns,
        source=source,
        data=data,
    )


def read_test_ids(path: str | Path, *, max_bytes: int = 64 << 20) -> list[str]:
    """The test ids a submission must cover, from a ``test.csv`` (column ``id``), in file order.

    For a team's downloaded data folder, where there is no workspace; the workspace reads
    its own (:meth:`competition.workspace.Workspace.test_ids`).

    Raises
    ------
    DataError
        If the file is missing, not a regular file, larger than ``max_bytes``, not UTF-8
        or has no ``id`` column.
    """
    path = Path(path)
    fix = "download the public data again with 'ships download', or pass the folder that holds test.csv"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise DataError(f"{path}: not a test.csv (not a regular file, or above {max_bytes:,} bytes); {fix}")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; expected the test ids of the public data; {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); {fix}") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    header = [c.strip() for c in rows[0]] if rows else []
    if "id" not in header:
        raise DataError(f"{path}: no 'id' column; expected the header 'id', got {header[:5]}; {fix}")
    i = header.index("id")
    return [row[i].strip() for row in rows[1:] if len(row) > i]


def _stat(path: Path, source: str, shown: str) -> os.stat_result:
    """``os.stat`` of the path (following links), or SubmissionError."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise SubmissionError(source, [f"no such file: {shown}; check the path and the file name"]) from None
    except ValueError:  # a NUL byte in the path
        raise SubmissionError(source, [f"the path {shown} holds a NUL byte; expected a file name; "
                                       "check the path and the file name"]) from None
    except OSError as exc:
        raise SubmissionError(source, [f"cannot read {shown}: {exc.strerror}; check the path and its permissions"]
                              ) from None


def _read_bounded(path: Path, info: os.stat_result, max_bytes: int, source: str, shown: str) -> bytes:
    """At most ``max_bytes + 1`` bytes of the regular file ``info`` describes, or SubmissionError."""
    chunks, left = [], max_bytes + 1
    try:
        fd = os.open(path, _OPEN_FLAGS)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                raise SubmissionError(source, [f"{shown} was replaced while it was being read; expected a file "
                                               "that stays the same; submit it again"])
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SubmissionError(source, [f"cannot read {shown}: {exc.strerror}; check the path and its permissions"]
                              ) from None
    data = b"".join(chunks)
    if len(data) > max_bytes:  # the file grew after its size was checked
        raise SubmissionError(source, [_too_large(max(len(data), now.st_size), max_bytes)])
    return data


def _check_bytes(data: bytes, source: str) -> int:
    """Refuse empty, binary and non-UTF-8 data; return where the text starts (after a BOM)."""
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
    return start


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line (ends: LF, CRLF or CR) and byte-in-line of a byte offset."""
    head = data[:offset]
    line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
    return line, offset - max(head.rfind(b"\n"), head.rfind(b"\r"))


def _read_header(line: str) -> list[str]:
    """The column names of the header line, surrounding spaces removed."""
    names = line.split(",")
    if '"' in line:
        try:
            names = next(csv.reader([line], strict=True))
        except csv.Error:
            pass  # an unclosed quote: the names split at commas show it
    return list(map(str.strip, names))


def _check_columns(columns: list[str]) -> list[str]:
    """Problems with the header: missing, unexpected and repeated column names (at most five of each)."""
    head = f"expected columns {list(COLUMNS)}, got {_show_columns(columns)}"
    sep = next((s for s in ";\t|" if len(columns) == 1 and s in columns[0]), None)
    if sep:
        return [f"the header is not separated by commas; {head}; separate the columns with ',' not {sep!r}"]
    distinct = dict.fromkeys(columns)
    missing = [c for c in COLUMNS if c not in distinct]
    n_unexpected = len(distinct) - len(COLUMNS) + len(missing)
    unexpected = [c for _, c in zip(range(5), (c for c in distinct if c not in COLUMNS))]
    rename = len(missing) == 1 and n_unexpected == 1
    fix = f"rename {_short(unexpected[0])!r} to {missing[0]!r}" if rename else "the header must be 'id,ship'"
    problems = [f"missing column {c!r}; {head}; {fix}" for c in missing]
    if n_unexpected > 5:
        shown = ", ".join(repr(_short(c)) for c in unexpected)
        problems.append(f"{n_unexpected} unexpected columns: {shown} and {n_unexpected - 5} more; {head}; "
                        "keep only the columns id,ship")
    for c in [] if rename or n_unexpected > 5 else unexpected:
        how = "write the file with index=False" if c in ("", "Unnamed: 0") else "remove it"
        how = "remove the comma at the end of the header" if c == "" and columns[-1] == "" else how
        problems.append(f"unexpected column {_short(c)!r}; {head}; {how}")
    problems += [f"column {c!r} appears {columns.count(c)} times; {head}; keep one"
                 for c in COLUMNS if columns.count(c) > 1]
    return problems


def _show_columns(columns: list[str]) -> str:
    """The header's names as a list, at most six of them, each cut short."""
    if len(columns) <= 6:
        return str([_short(c) for c in columns])
    return f"{len(columns)} columns [" + ", ".join(repr(_short(c)) for c in columns[:5]) + ", ...]"


def _short(text: str, limit: int = 40) -> str:
    """Text cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_large(size: int, max_bytes: int) -> str:
    """Message for a file over the size limit."""
    return (f"the file is {size:,} bytes ({size / 2**20:.1f} MiB) but the limit is {max_bytes:,} bytes "
            f"({max_bytes / 2**20:.1f} MiB); expected one short row per test id; "
            "submit only the columns id,ship, with probabilities rounded to a few digits")
