"""Data readers: the bundled real chips, Kaggle's PNG folder, shipsnet.json and zips."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from ships.cli import app
from competition.data import (
    bundled_data_dir,
    load_chips,
    make_groups,
    parse_chip_name,
    read_folder,
    read_json,
    summarize_chips,
)
from competition.errors import DataError


def _subset_folder(tmp_path, n=40):
    """Copy n real chips and their checksum lines into tmp_path/shipsnet."""
    src = bundled_data_dir()
    names = sorted(p.name for p in src.iterdir())[:: 4000 // n][:n]
    dst = tmp_path / "shipsnet"
    dst.mkdir()
    sums = {l.split()[1]: l for l in (src.parent / "shipsnet.sha256").read_text().splitlines()}
    for name in names:
        shutil.copy(src / name, dst / name)
    (tmp_path / "shipsnet.sha256").write_text("\n".join(sums[n] for n in names) + "\n")
    return dst


def _write_kaggle_json(chips, path):
    doc = {
        "data": chips.X.transpose(0, 3, 1, 2).reshape(len(chips), -1).tolist(),
        "labels": chips.y.tolist(),
        "locations": np.stack([chips.lon, chips.lat], axis=1).tolist(),
        "scene_ids": list(chips.scene_id),
    }
    path.write_text(json.dumps(doc))


def test_bundled_chips_are_the_real_shipsnet(chips):
    assert chips.X.shape == (4000, 80, 80, 3) and chips.X.dtype == np.uint8
    assert int(chips.y.sum()) == 1000
    assert len(set(chips.scene_id)) == 434
    assert len(set(make_groups(chips.scene_id, "date"))) == 157
    assert list(chips.name) == sorted(chips.name)


def test_summary_counts_match_the_provenance_notes(chips):
    s = summarize_chips(chips)
    assert s["all"] == {"ship": 1000, "no_ship": 3000, "total": 4000}
    assert s["by_region"]["San Francisco Bay"] == {"ship": 816, "no_ship": 2640, "total": 3456}
    assert s["by_year"]["2017"] == {"ship": 686, "no_ship": 2221, "total": 2907}
    assert s["groups"]["n_groups"] == 157 and s["n_scenes"] == 434


def test_corrupted_chip_is_named(tmp_path):
    folder = _subset_folder(tmp_path)
    victim = sorted(folder.iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match=f"1 chip\\(s\\) corrupted.*{victim.name}"):
        read_folder(folder, tmp_path / "shipsnet.sha256")


def test_missing_chip_is_named(tmp_path):
    folder = _subset_folder(tmp_path)
    victim = sorted(folder.iterdir())[5]
    victim.unlink()
    with pytest.raises(DataError, match=f"1 chip\\(s\\) missing.*{victim.name}"):
        load_chips(folder)  # picks up the sibling shipsnet.sha256


def test_undecodable_chip_without_checksums_is_named(tmp_path):
    folder = _subset_folder(tmp_path)
    (tmp_path / "shipsnet.sha256").unlink()
    victim = sorted(folder.iterdir())[0]
    victim.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"{victim.name}: not a readable image"):
        load_chips(folder)


def test_json_importer_matches_folder_importer(tmp_path):
    folder = _subset_folder(tmp_path)
    from_folder = load_chips(folder)
    _write_kaggle_json(from_folder, tmp_path / "shipsnet.json")
    from_json = read_json(tmp_path / "shipsnet.json")
    np.testing.assert_array_equal(from_json.X, from_folder.X)
    np.testing.assert_array_equal(from_json.y, from_folder.y)
    assert list(from_json.name) == list(from_folder.name)
    assert from_json.data_hash() == from_folder.data_hash()


@pytest.mark.parametrize("layout", ["json", "folder"])
def test_zip_importer(tmp_path, layout):
    folder = _subset_folder(tmp_path)
    ref = load_chips(folder)
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        if layout == "json":
            _write_kaggle_json(ref, tmp_path / "shipsnet.json")
            zf.write(tmp_path / "shipsnet.json", "shipsnet.json")
        else:
            for p in folder.iterdir():
                zf.write(p, f"shipsnet/shipsnet/{p.name}")
    got = load_chips(archive)
    assert got.data_hash() == ref.data_hash()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{\"labels\": []}", "expected a JSON object with keys"),
        (b"not json at all", "not a readable JSON file"),
        (json.dumps({"data": [[0] * 10], "labels": [1], "locations": [[1, 2]], "scene_ids": ["s"]}).encode(),
         "expected (1, 19200)"),
        (json.dumps({"data": [[0] * 19200], "labels": [1, 0], "locations": [[1, 2]], "scene_ids": ["s"]}).encode(),
         "different lengths"),
    ],
)
def test_bad_json_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "shipsnet.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_json(path)
    assert message in str(err.value)


def test_bad_chip_name():
    with pytest.raises(DataError, match="not a ShipsNet chip name"):
        parse_chip_name("ship_01.png")
    assert parse_chip_name("1__20170707_174131_0c0b__-122.3_37.7.png") == (1, "20170707_174131_0c0b", -122.3, 37.7)


def test_cli_import_and_info(tmp_path):
    folder = _subset_folder(tmp_path)
    _write_kaggle_json(load_chips(folder), tmp_path / "shipsnet.json")
    runner = CliRunner()
    out = tmp_path / "imported"
    result = runner.invoke(app, ["data", "import", str(tmp_path / "shipsnet.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_chips(out).data_hash() == load_chips(folder).data_hash()  # checksums written and verified
    result = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_chips"] == 40
    again = runner.invoke(app, ["data", "import", str(tmp_path / "shipsnet.json"), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such file or folder" in missing.output
