"""Tests of competition.submission (reading) together with scoring.validate_submission (checking ids)."""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from competition.errors import ParameterError, SubmissionError
from competition.scoring import validate_submission
from competition.submission import ParsedSubmission, parse_submission, read_submission_file

IDS = [f"{i:02d}ab{i * 7 % 10}f" for i in range(8)]  # eight opaque test ids
GOOD = "id,ship\n" + "".join(f"{i},0.{k}\n" for k, i in enumerate(IDS))


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def rows(values: dict[int, str] | None = None, ids: list[str] | None = None) -> str:
    """A submission over IDS (or ``ids``) with row k's value replaced by ``values[k]``."""
    values = values or {}
    ids = IDS if ids is None else ids
    return "id,ship\n" + "".join(f"{i},{values.get(k, '0.5')}\n" for k, i in enumerate(ids))


def check(data: str | bytes, source: str = "sub.csv") -> np.ndarray:
    """Parse and validate against IDS, as `ships validate` does."""
    raw = data.encode() if isinstance(data, str) else data
    return validate_submission(parse_submission(raw, source), IDS)


BAD_FILES = [
    # header
    ("id,prob\n" + GOOD[8:], "missing column 'ship'; expected columns ['id', 'ship'], got ['id', 'prob']"),
    ("id,ship,Usage\n" + "".join(f"{i},0.5,Public\n" for i in IDS),
     "unexpected column 'Usage'; expected columns ['id', 'ship'], got ['id', 'ship', 'Usage']; remove it"),
    (",id,ship\n" + "".join(f"{k},{i},0.5\n" for k, i in enumerate(IDS)), "write the file with index=False"),
    ("id\n" + "".join(f"{i}\n" for i in IDS), "missing column 'ship'; expected columns ['id', 'ship'], got ['id']"),
    ("ship\n0.5\n", "missing column 'id'; expected columns ['id', 'ship'], got ['ship']"),
    ("id,ship,ship\n", "column 'ship' appears 2 times"),
    ("id,ship,\n", "unexpected column ''; expected columns ['id', 'ship'], got ['id', 'ship', '']; remove the comma"),
    ("id;ship\n" + GOOD[8:].replace(",", ";"), "the header is not separated by commas; expected columns ['id', 'ship'], "
     "got ['id;ship']; separate the columns with ',' not ';'"),
    ("id\tship\n", "separate the columns with ',' not '\\t'"),
    ("\nid,ship\n" + GOOD[8:], "line 1 is blank; expected the header 'id,ship'"),
    # ids
    (rows(ids=IDS[:7]), f"7 rows but the test set has 8 ids (1 missing, e.g. '{IDS[7]}')"),
    (rows(ids=IDS + [IDS[2]]), f"duplicate id '{IDS[2]}' on lines 4 and 10; keep one row per id"),
    (rows(ids=IDS + [IDS[2], IDS[2]]), f"duplicate id '{IDS[2]}' on lines 4, 10 and 11"),
    (rows(ids=IDS + ["ffffff"]), "line 10: id 'ffffff' is not a test id"),
    (rows(ids=IDS[:7] + ["Ffffff"]), f"1 test id has no row, e.g. '{IDS[7]}'"),
    (rows(ids=IDS[:7] + ["Ffffff"]), "line 9: id 'Ffffff' is not a test id"),
    (rows(ids=IDS[:1]), f"1 row but the test set has 8 ids (7 missing, e.g. '{IDS[1]}', "),
    (rows(ids=IDS + [""]), "line 10: 'id' is blank; expected a test id"),
    # values
    (rows({2: ""}), "line 4: 'ship' is blank; expected a probability in [0, 1]"),
    (rows({2: "   "}), "line 4: 'ship' is blank"),
    (rows({2: "NaN"}), "line 4: 'ship' is NaN (got NaN); expected a probability in [0, 1]; replace missing"),
    (rows({2: "NA"}), "line 4: 'ship' is NaN (got NA)"),
    (rows({2: "inf"}), "line 4: 'ship' is infinite (got inf)"),
    (rows({2: "-Infinity"}), "line 4: 'ship' is infinite (got -Infinity)"),
    (rows({2: "-0.2"}), "line 4: 'ship' must be a probability in [0, 1], got -0.2; clip the predictions to [0, 1]"),
    (rows({2: "1.7"}), "line 4: 'ship' must be a probability in [0, 1], got 1.7"),
    (rows({2: "1e3"}), "line 4: 'ship' must be a probability in [0, 1], got 1e3"),
    (rows({2: "yes"}), "line 4: 'ship' must be a number, got 'yes'; expected a probability in [0, 1]"),
    (rows({2: "0,5"}), "line 4 (3 fields): more fields than the header; expected 2 fields per row"),
    (rows({2: "1_0"}), "line 4: 'ship' must be a number, got '1_0'"),
    (rows({2: "[0.5]"}), "line 4: 'ship' must be a number, got '[0.5]'"),
    # whole files
    ("", "the file is empty (0 bytes); expected the header 'id,ship'"),
    ("\n \r\n", "the file is empty (only spaces and line ends)"),
    (b"\xef\xbb\xbf", "the file is empty"),
    ("id,ship\n", "0 rows but the test set has 8 ids (8 missing, e.g. "),
    ("id,ship\r\n\r\n", "0 rows but the test set has 8 ids"),
    (b"id,ship\n" + IDS[0].encode() + b",0.5\x00\x00\n", "line 2, byte 11: binary content (a NUL byte at offset 18)"),
    (png_bytes(), "the file is a PNG image, not a CSV text file"),
    (b"PK\x03\x04rest-of-a-zip", "the file is a zip archive"),
    (GOOD.encode("utf-16"), "the file is UTF-16 text, not a CSV text file; save it as UTF-8"),
    (rows({2: "0.5 # café"}).encode("latin-1"),
     "line 4, byte 17: byte 0xe9 is not valid UTF-8 (in Latin-1 it would be 'é'); expected UTF-8 text; "
     "save the file as UTF-8"),
    (b"id,ship\n\xff\xfe,1\n", "line 2, byte 1: byte 0xff is not valid UTF-8"),
    (rows({2: '"0.5'}), "line 4: a quoted field is never closed"),
    (rows({0: "0,5", 2: '"0.5'}), "line 2 (3 fields): more fields than the header"),
    (rows({2: '0.5"'}), "line 4: a '\"' in the middle of a field; expected quotes only around a whole field"),
    (rows({2: '"0.5" x'}), "line 4: a '\"' in the middle of a field"),
    (rows({2: '"0.5""'}), "line 4: a quoted field is never closed"),
]


@pytest.mark.parametrize("data, message", BAD_FILES)
def test_bad_file(data, message):
    with pytest.raises(SubmissionError) as err:
        check(data)
    assert message in str(err.value)
    assert err.value.source == "sub.csv" and err.value.problems
    assert str(err.value) == "\n".join(f"sub.csv: {p}" for p in err.value.problems)


def test_many_bad_rows_show_five_examples_and_the_count():
    ids = [f"id{i:03d}" for i in range(40)]
    text = "id,ship\n" + "".join(f"{i},{100 + k / 10 if k % 3 == 0 else 0.5}\n" for k, i in enumerate(ids))
    with pytest.raises(SubmissionError) as err:
        validate_submission(parse_submission(text.encode(), "sub.csv"), ids)
    assert err.value.problems == [
        "'ship' is above 1 on 14 lines: line 2 (got 100.0), line 5 (got 100.3), line 8 (got 100.6), "
        "line 11 (got 100.9), line 14 (got 101.2) and 9 more; clip the predictions to [0, 1]"
    ]


def test_percentages_are_divided_not_clipped():
    text = rows({k: f"{v}" for k, v in enumerate([99.0, 12.5, 0.4, 87, 3, 100, 0.0, 55.5])})
    with pytest.raises(SubmissionError) as err:
        check(text)
    assert err.value.problems == [
        "'ship' is above 1 on 6 lines: line 2 (got 99.0), line 3 (got 12.5), line 5 (got 87), line 6 (got 3), "
        "line 7 (got 100) and 1 more; the values look like percentages (the largest is 100); "
        "divide by 100 to get probabilities"
    ]


def test_many_unknown_and_duplicate_ids():
    text = "id,ship\n" + "".join(f"x{k},0.5\n" for k in range(7)) + "".join(f"{i},0.5\n{i},0.5\n" for i in IDS)
    with pytest.raises(SubmissionError) as err:
        check(text)
    unknown, duplicates = err.value.problems[1:3]
    assert unknown.startswith("7 ids are not test ids: 'x0' (line 2), 'x1' (line 3), ")
    assert "'x4' (line 6) and 2 more" in unknown and "'x5'" not in unknown
    assert duplicates.startswith(f"8 duplicate ids: '{IDS[0]}' on lines 9 and 10, '{IDS[1]}' on lines 11 and 12, ")
    assert duplicates.endswith("and 3 more; keep one row per id")


def test_several_kinds_reported_together():
    text = rows({0: "1.7", 1: "", 2: "abc", 3: "-1"}, ids=IDS[:6] + ["nope"])
    with pytest.raises(SubmissionError) as err:
        check(text)
    problems = err.value.problems
    assert len(problems) == 6
    assert problems[0].startswith("7 rows but the test set has 8 ids (2 missing")
    assert problems[1].startswith("line 8: id 'nope' is not a test id")
    assert [p.split(":")[0] for p in problems[2:]] == ["line 3", "line 4", "line 5", "line 2"]


def test_good_file_aligned_to_test_order():
    assert check(GOOD).tolist() == [k / 10 for k in range(8)]


def test_rows_in_any_order():
    lines = GOOD.splitlines()[1:]
    shuffled = "id,ship\n" + "\n".join(reversed(lines)) + "\n"
    assert check(shuffled).tolist() == check(GOOD).tolist()


def test_bom_and_crlf_accepted():
    data = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode()
    parsed = parse_submission(data, "sub.csv")
    assert parsed.columns == ["id", "ship"]
    assert parsed.ids == IDS and parsed.lines == list(range(2, 10))
    assert check(data).tolist() == check(GOOD).tolist()


def test_columns_in_either_order_and_spaces_around_fields():
    text = "ship , id\n" + "".join(f" 0.{k} , {i} \n" for k, i in enumerate(IDS))
    assert check(text).tolist() == check(GOOD).tolist()


def test_no_final_line_end():
    assert check(GOOD.rstrip("\n")).tolist() == check(GOOD).tolist()


def test_line_numbers_count_blank_lines_and_quoted_line_ends():
    data = f'id,ship\n{IDS[0]},0.1\n\n  \n"{IDS[1]}",0.2\n"a\nb",0.3\n{IDS[2]},0.4\n,\n'.encode()
    parsed = parse_submission(data, "sub.csv")
    assert parsed.ids == [IDS[0], IDS[1], "a\nb", IDS[2], ""]
    assert parsed.values == ["0.1", "0.2", "0.3", "0.4", ""]
    assert parsed.lines == [2, 5, 6, 8, 9]


def test_quoted_fields_with_spaces_around_and_doubled_quotes():
    parsed = parse_submission(b'id,ship\n "a""b" , "0.5" \n"c,d","0\r\n.1"\n', "sub.csv")
    assert parsed.ids == ['a"b', "c,d"]
    assert parsed.values == [" 0.5 ", "0\n.1"]  # spaces outside the quotes are kept, as for any value
    assert parsed.lines == [2, 3]


def test_rows_of_one_field_have_a_blank_second_field():
    parsed = parse_submission(b"ship,id\n0.5\n\n0.25,x\n", "sub.csv")
    assert (parsed.ids, parsed.values, parsed.lines) == (["", "x"], ["0.5", "0.25"], [2, 4])


def test_values_keep_their_raw_text():
    parsed = parse_submission(b"id,ship\na, 0.50 \nb,NA\nc,\n", "s.csv")
    assert parsed.values == [" 0.50 ", "NA", ""]
    assert isinstance(parsed, ParsedSubmission) and len(parsed) == 3 and parsed.source == "s.csv"


# --- files on disk ------------------------------------------------------------------------------


def test_read_good_file(tmp_path):
    path = tmp_path / "my-sub.csv"
    path.write_text(GOOD)
    parsed = read_submission_file(path, max_bytes=10_000)
    assert parsed.source == "my-sub.csv" and parsed.ids == IDS
    assert parsed.data == GOOD.encode()  # the bytes validated are the bytes to store


def test_missing_file(tmp_path):
    with pytest.raises(SubmissionError) as err:
        read_submission_file(tmp_path / "nope.csv", max_bytes=10_000)
    assert str(err.value).startswith("nope.csv: no such file: ")
    assert "check the path" in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(SubmissionError, match="is a directory, not a file; expected a CSV file"):
        read_submission_file(tmp_path, max_bytes=10_000)


def test_over_the_limit_small(tmp_path):
    path = tmp_path / "sub.csv"
    path.write_text(GOOD)
    size = path.stat().st_size
    with pytest.raises(SubmissionError) as err:
        read_submission_file(path, max_bytes=size - 1)
    assert f"the file is {size:,} bytes" in str(err.value)
    assert f"but the limit is {size - 1:,} bytes" in str(err.value)
    assert "submit only the columns id,ship" in str(err.value)
    assert read_submission_file(path, max_bytes=size).ids == IDS


def test_100_mb_file_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:  # a sparse file: 100 MiB long, next to nothing on disk
        f.write(f"id,ship\n{IDS[0]},0.5\n".encode())
        f.truncate(100 * 2**20)
    assert path.stat().st_size == 100 * 2**20

    def no_reading(self):
        raise AssertionError("the file was read before its size was checked")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    monkeypatch.setattr(Path, "open", no_reading)
    with pytest.raises(SubmissionError) as err:
        read_submission_file(path, max_bytes=10 * 2**20)
    assert "(100.0 MiB) but the limit is 10,485,760 bytes (10.0 MiB)" in str(err.value)


@pytest.mark.parametrize("max_bytes", [0, -5, 1.5, True, "10"])
def test_bad_max_bytes(tmp_path, max_bytes):
    with pytest.raises(ParameterError, match="max_bytes=.* is invalid; expected an int >= 1"):
        read_submission_file(tmp_path / "x.csv", max_bytes=max_bytes)


# --- hostile input: every message bounded, every cost bounded ----------------------------------

LIMIT = 5_000_000  # the default max_upload_bytes
MAX_CHARS = SubmissionError.MAX_CHARS


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


def _zero_link(tmp_path: Path) -> Path:
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    return link


def _named(name: str, text: str = GOOD):
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


HOSTILE = [  # (what, file bytes or a maker of a path, expected message fragment)
    ("3000 columns", ("id,ship," + ",".join(f"c{k}" for k in range(3000)) + "\n" + GOOD[8:]).encode(),
     "sub.csv: 3000 unexpected columns: 'c0', 'c1', 'c2', 'c3', 'c4' and 2995 more; expected columns "
     "['id', 'ship'], got 3002 columns ['id', 'ship', 'c0', 'c1', 'c2', ...]; keep only the columns id,ship"),
    ("12 000 columns", (",".join(f"c{k}" for k in range(12_000)) + "\n").encode(),
     "missing column 'id'; expected columns ['id', 'ship'], got 12000 columns ['c0', 'c1', 'c2', 'c3', 'c4', ...]"),
    ("a header of 2.5 million columns", b"id,ship" + b",x" * (LIMIT // 2 - 4),
     "unexpected column 'x'; expected columns ['id', 'ship'], got 2499998 columns ['id', 'ship', 'x', 'x', 'x', "),
    ("one id on every row", rows(ids=[IDS[3]] * 800).encode(),
     f"duplicate id '{IDS[3]}' on 800 lines (2, 3, 4, 5, 6 and 795 more); keep one row per id"),
    ("5 MB of \\n", b"id,ship\n" + b"\n" * (LIMIT - 8), "0 rows but the test set has 8 ids (8 missing, e.g. "),
    ("5 MB of \\r", b"id,ship\r" + b"\r" * (LIMIT - 8), "0 rows but the test set has 8 ids (8 missing, e.g. "),
    ("5 MB of rows with one comma", b"id,ship\n" + b",\n" * (LIMIT // 2 - 4),
     "2499996 lines (2, 3, 4, 5, 6 and 2499991 more): 'id' is blank"),
    ("5 MB of rows with four fields", b"id,ship\n" + b",,,\n" * (LIMIT // 4 - 2),
     "1249998 rows: line 2 (4 fields), line 3 (4 fields), line 4 (4 fields), line 5 (4 fields), line 6 (4 fields) "
     "and 1249993 more: more fields than the header"),
    ("5 MB of quotes, one never closed", b"id,ship\n" + b'"' * (LIMIT - 9), "line 2: a quoted field is never closed"),
    ("a stray quote on every row", b"id,ship\n" + b'a"b,0.5\n' * (LIMIT // 8 - 1),
     "line 2: a '\"' in the middle of a field; expected quotes only around a whole field"),
    ("a 5 MB id", b"id,ship\n" + b"x" * (LIMIT - 14) + b",0.5\n",
     "line 2: id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not a test id"),
    ("a 5 MB number", b"id,ship\n" + IDS[0].encode() + b",0." + b"0" * (LIMIT - 30) + b"1\n",
     "1 row but the test set has 8 ids (7 missing"),
    ("NUL in a value", rows({2: "0.5\x00"}).encode(), "line 4, byte 11: binary content (a NUL byte at offset 40)"),
    ("ESC in a value", rows({2: "\x1b[2J\x1b[31m0.5"}).encode(),
     r"line 4: 'ship' must be a number, got '\x1b[2J\x1b[31m0.5'"),
    ("ESC and BEL in an id", rows(ids=IDS[:7] + ["\x1b]0;owned\x07"]).encode(),
     r"line 9: id '\x1b]0;owned\x07' is not"),
    ("C1 and DEL in the header", "id,ship,\x9b31m\x7f\n".encode(), r"unexpected column '\x9b31m\x7f'"),
    ("a long line of control characters", rows({2: "\x1b" * 100_000}).encode(), r"got '\x1b\x1b\x1b"),
    ("a FIFO", _fifo, "is a named pipe (FIFO), not a file; expected a CSV file such as submission.csv"),
    ("/dev/zero", lambda tmp_path: Path("/dev/zero"), "'/dev/zero' is a character device, not a file"),
    ("/dev/zero through a symlink", _zero_link, "zero.csv' is a character device, not a file"),
    ("a directory", lambda tmp_path: tmp_path, "is a directory, not a file; expected a CSV file"),
    ("ESC in the file name", _named("a\x1b[31mred.csv", rows({2: "2"})), r"a\x1b[31mred.csv: line 4: 'ship'"),
    ("a NUL byte in the path", lambda tmp_path: tmp_path / "a\x00b.csv", r"a\x00b.csv' holds a NUL byte"),
]


@pytest.mark.parametrize("what, made, message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_with_a_bounded_message(tmp_path, what, made, message):
    if isinstance(made, bytes):
        path = tmp_path / "sub.csv"
        path.write_bytes(made)
    else:
        path = made(tmp_path)
    unblock = threading.Timer(10, _open_for_writing, [path])  # if a FIFO is ever opened blocking: fail, not hang
    unblock.start()
    start = time.process_time()
    try:
        with pytest.raises(SubmissionError) as err:
            validate_submission(read_submission_file(path, max_bytes=LIMIT), IDS)
    finally:
        unblock.cancel()
    cpu = time.process_time() - start
    text = str(err.value)
    assert message in text
    assert len(text) <= MAX_CHARS and all(c.isprintable() for p in err.value.problems for c in p)
    assert all(c.isprintable() for c in err.value.source)
    assert cpu < 5, f"{what}: {cpu:.1f} s of CPU"


def _open_for_writing(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_a_file_that_grows_after_stat_is_read_only_to_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "sub.csv"
    path.write_text(GOOD)
    small = path.stat()
    path.write_bytes(b"id,ship\n" + b"\n" * 50_000_000)  # grows to 50 MB after its size was checked
    real_stat, real_read, read = Path.stat, os.read, []

    def stale_stat(self, **kwargs):
        info = real_stat(self, **kwargs)
        return os.stat_result((*info[:6], small.st_size, *info[7:])) if self == path else info

    def counting_read(fd, n):
        chunk = real_read(fd, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(Path, "stat", stale_stat)
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(SubmissionError) as err:
        read_submission_file(path, max_bytes=1000)
    assert "but the limit is 1,000 bytes" in str(err.value)
    assert sum(read) == 1001


def test_every_message_is_bounded_whatever_the_problems():
    err = SubmissionError("x" * 10_000 + "\x1b.csv", [f"problem {k}: " + "y\x00" * 5000 for k in range(1000)])
    text = str(err)
    assert len(text) <= MAX_CHARS
    assert err.source.endswith("...") and len(err.source) <= SubmissionError.MAX_SOURCE_CHARS
    assert err.problems[0].startswith(r"problem 0: y\x00y\x00") and err.problems[0].endswith("...")
    assert err.problems[-1].endswith("more problems not shown; fix the ones above and validate again")
    assert text == "\n".join(f"{err.source}: {p}" for p in err.problems)


def test_every_kind_at_once_stays_bounded():
    long_id = "\x1b" * 500
    ids = [long_id + str(k) for k in range(20)] + [""] * 20 + [IDS[0]] * 20
    values = ["x" * 300, "", "nan", "inf", "-1", "150"] * 10
    text = "id,ship\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, values))
    with pytest.raises(SubmissionError) as err:
        check(text)
    assert len(err.value.problems) == 10
    assert len(str(err.value)) <= MAX_CHARS


@pytest.mark.parametrize("seed", range(30))
def test_random_files_parse_as_the_csv_module_reads_them(seed):
    """Quoted fields holding commas, line ends and quotes; blank lines; LF, CRLF or CR line ends."""
    rng = np.random.default_rng(seed)
    end = ["\n", "\r\n", "\r"][seed % 3]
    text, records, expected, line = "id,ship" + end, [], [], 2
    for _ in range(40):
        if rng.random() < 0.2:  # a blank line
            text += rng.choice(["", " ", "\t  "]) + end
            records.append(None)
            line += 1
            continue
        raw = ["".join(rng.choice(list('ab ,"é0.5') + ["\n", "\r\n"], size=rng.integers(0, 6)))
               for _ in range(rng.integers(1, 3))]
        quoted = [bool(set(f) & set(',"\r\n')) or rng.random() < 0.3 or (len(raw) == 1 and not f.strip())
                  for f in raw]
        text += ",".join('"' + f.replace('"', '""') + '"' if q else f for f, q in zip(raw, quoted)) + end
        records.append(raw)
        fields = [f.replace("\r\n", "\n") for f in raw]  # line ends inside a quoted field are read as \n
        expected.append((fields[0].strip(), fields[1] if len(fields) > 1 else "", line))
        line += 1 + sum(f.count("\n") for f in fields)
    parsed = parse_submission(text.encode(), "sub.csv")
    assert list(zip(parsed.ids, parsed.values, parsed.lines)) == expected
    read = list(csv.reader(io.StringIO(text, newline="")))[1:]  # the reference reads the same fields
    assert [r for r, raw in zip(read, records, strict=True) if raw is not None] == [r for r in records if r]
