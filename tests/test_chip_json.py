"""shipsnet.json documents: bounded structure, and every label, pixel, location and scene id checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from competition.chip_json import check_scene_id, load_json_doc, parse_chip_doc
from competition.data import read_json
from competition.errors import DataError
from competition.limits import ReadLimits

SCENES = ["20180708_180909_0f47", "20170707_174131_0c0b"]


def _doc(n: int = 2) -> dict:
    """A valid document of ``n`` chips: pixel k of row i is (i + k) % 256."""
    return {
        "data": [[(i + k) % 256 for k in range(19200)] for i in range(n)],
        "labels": [1 - i % 2 for i in range(n)],
        "locations": [[round(-122.3 + i / 1000, 4), 37.7] for i in range(n)],
        "scene_ids": [SCENES[i % 2] for i in range(n)],
    }


def _read(tmp_path, doc_or_text, **limits):
    path = tmp_path / "shipsnet.json"
    text = doc_or_text if isinstance(doc_or_text, (str, bytes)) else json.dumps(doc_or_text)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return read_json(path, limits=ReadLimits(**limits))


def test_a_valid_document_reads_exactly(tmp_path):
    chips = _read(tmp_path, _doc())
    assert chips.X.shape == (2, 80, 80, 3) and chips.X.dtype == np.uint8
    # file order is 1__20180708..., 0__20170707...; chips come sorted by name
    assert list(chips.name) == ["0__20170707_174131_0c0b__-122.299_37.7.png", "1__20180708_180909_0f47__-122.3_37.7.png"]
    assert chips.X[1, 0, 1, 0] == 1 and chips.X[1, 1, 0, 2] == (12800 + 80) % 256  # red, green, blue planes, row-major
    assert chips.y.tolist() == [0, 1]


def _with(path: tuple, value, n: int = 2) -> dict:
    doc = _doc(n)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize("path, value, message", [
    (("labels", 0), 0.7, "1 label(s) other than 0 or 1: 'labels'[0] is 0.7; expected 0 (no ship) or 1 (ship)"),
    (("labels", 1), 2, "'labels'[1] is 2"),
    (("labels", 1), True, "'labels'[1] is True"),
    (("labels", 1), "1", "'labels'[1] is '1'"),
    (("data", 0, 5), 10**30, "'data'[0] value 5 is 1e+30; expected 19200 ints in 0..255"),
    (("data", 1, 7), 256, "'data'[1] value 7 is 256"),
    (("data", 1, 7), -1, "'data'[1] value 7 is -1"),
    (("data", 1, 7), 2.5, "'data'[1] value 7 is 2.5"),
    (("data", 1, 7), 3.0, "'data'[1] value 7 is 3.0"),
    (("data", 0, 9), "12", "'data'[0] value 9 is '12'"),
    (("data", 0, 9), None, "'data'[0] value 9 is None"),
    (("data", 0), [0] * 100, "'data'[0] has 100 values"),
    (("scene_ids", 0), "20180708_180909/../../etc", "'scene_ids'[0] is '20180708_180909/../../etc', which contains '/'"),
    (("scene_ids", 0), "20180708\\x", "which contains '\\'"),
    (("scene_ids", 0), "20180708..x", "which contains '..'"),
    (("scene_ids", 0), "20180708_18\n09", "which contains a control character"),
    (("scene_ids", 0), "", "'scene_ids'[0] is empty"),
    (("scene_ids", 0), "s", "'scene_ids'[0] is 's', not a scene id; expected the acquisition date YYYYMMDD"),
    (("scene_ids", 0), "20181399_0f47", "whose first 8 characters '20181399' are not a date"),
    (("scene_ids", 0), "20180708__0f47", "'scene_ids'[0] is '20180708__0f47', not a scene id"),
    (("scene_ids", 0), 20180708, "'scene_ids'[0] is 20180708 (int), not a string"),
    (("locations", 0), [1, 2, 3], "'locations'[0] is [1, 2, 3]; expected [lon, lat]"),
    (("locations", 0), [-200.0, 37.0], "'locations'[0] is [-200.0, 37.0]"),
    (("locations", 0), [1e-05, 37.0], "'locations'[0] is [1e-05, 37.0]; expected [lon, lat] as plain decimals"),
])
def test_bad_values_are_errors_naming_the_row(tmp_path, path, value, message):
    with pytest.raises(DataError) as err:
        _read(tmp_path, _with(path, value))
    assert message in str(err.value)


@pytest.mark.parametrize("text, message", [
    ('{"labels": []}', "expected a JSON object with keys"),
    ("not json at all", "not a readable JSON file"),
    ("[" * 100_000 + "]" * 100_000, "holds 100000 '[' where a ShipsNet JSON of 200000 characters holds at most 16"),
    ('{"data": [], "labels": [], "locations": [], "scene_ids": []}', "holds no chips"),
    ('{"data": 5, "labels": [], "locations": [], "scene_ids": []}', "{'data': 'int'} must be lists"),
    ('{"data": [[0]], "labels": [1, 0], "locations": [[1, 2]], "scene_ids": ["s"]}', "different lengths"),
    (json.dumps(_with(("labels",), [{}, {}])), "holds 3 '{'"),
    (json.dumps(_with(("data", 0, 3), 1.0)).replace("1.0", "NaN", 1), "holds NaN, which is not a number"),
    (b"\xff\xfe" + json.dumps(_doc()).encode("utf-16-le"), "not UTF-8 text"),
])
def test_bad_documents_are_errors(tmp_path, text, message):
    with pytest.raises(DataError) as err:
        _read(tmp_path, text)
    assert message in str(err.value)


def test_rows_nested_as_images_are_refused_before_parsing(tmp_path):
    doc = _doc(3)
    doc["data"] = [np.arange(19200).reshape(3, 80, 80).tolist() for _ in range(3)]  # 244 lists a row
    with pytest.raises(DataError, match=r"holds \d+ '\[' where .* holds at most \d+; .*rows are flat lists of 19200 ints"):
        _read(tmp_path, doc)


def test_every_problem_is_reported_at_once_with_five_examples(tmp_path):
    doc = _doc(8)
    doc["labels"] = [0.5] * 8
    doc["scene_ids"][3] = "../x"
    doc["data"][2][0] = 300
    with pytest.raises(DataError) as err:
        _read(tmp_path, doc)
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and all(line.startswith(str(tmp_path / "shipsnet.json")) for line in lines)
    assert "8 label(s) other than 0 or 1: 'labels'[0] is 0.5;" in lines[0] and "and 3 more" in lines[0]
    assert "'labels'[5]" not in lines[0]
    assert "1 unusable scene id(s): 'scene_ids'[3] is '../x', which contains '/'" in lines[1]
    assert "'data'[2] value 0 is 300" in lines[2]


def test_repeated_rows_are_an_error(tmp_path):
    doc = _doc(3)
    doc["locations"][2] = doc["locations"][0]
    doc["labels"][2], doc["scene_ids"][2] = doc["labels"][0], doc["scene_ids"][0]
    with pytest.raises(DataError, match=r"1 row\(s\) repeat .*rows 0 and 2 \('1__20180708_180909_0f47__-122.3_37.7.png'\)"):
        _read(tmp_path, doc)


def test_limits_are_checked_before_reading(tmp_path):
    with pytest.raises(DataError, match=r"holds 3 chips, more than the limit of 2"):
        _read(tmp_path, _doc(3), max_chips=2)
    with pytest.raises(DataError, match=r"shipsnet.json: \d+.\d kB on disk, more than the limit of 10.0 kB for shipsnet.json"):
        _read(tmp_path, _doc(1), max_bytes=10_000)


def test_parse_releases_rows_as_it_converts():
    doc = _doc(2)
    X, y, scene_id, lon, lat = parse_chip_doc(doc, "doc", max_chips=10)
    assert doc["data"] == [None, None]
    assert X.shape == (2, 80, 80, 3) and y.tolist() == [1, 0] and list(scene_id) == SCENES


def test_load_json_doc_counts_structure_before_parsing():
    assert load_json_doc('{"a": [[1], [2]]}', "x.json") == {"a": [[1], [2]]}
    with pytest.raises(DataError, match="x.json: holds 2 '{' where"):
        load_json_doc("{}{}", "x.json")


def test_check_scene_id():
    assert check_scene_id("20170707_174131_0c0b", "f.png") == "20170707_174131_0c0b"
    assert check_scene_id("20150830_000652_1_0b07", "f.png") == "20150830_000652_1_0b07"
    with pytest.raises(DataError, match=r"f.png: scene id is 'abc', not a scene id; expected the acquisition date"):
        check_scene_id("abc", "f.png")
