"""Tests of competition.submission (reading) together with scoring.validate_submission (checking ids)."""

from __future__ import annotations

import io
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
    text = "id,ship\n" + "".join(f"{i},{1 + k / 10 if k % 3 == 0 else 0.5}\n" for k, i in enumerate(ids))
    with pytest.raises(SubmissionError) as err:
        validate_submission(parse_submission(text.encode(), "sub.csv"), ids)
    assert err.value.problems == [
        "'ship' is above 1 on 13 lines: line 5 (got 1.3), line 8 (got 1.6), line 11 (got 1.9), "
        "line 14 (got 2.2), line 17 (got 2.5) and 8 more; clip the predictions to [0, 1]"
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
