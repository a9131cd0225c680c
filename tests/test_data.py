"""Data readers: the bundled real chips, Kaggle's PNG folder, shipsnet.json and zips.

The rows of shipsnet.json are checked in tests/test_chip_json.py; hostile files (bombs,
lying headers, truncated zips) are built small by tests/hostile.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tracemalloc
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
    write_folder,
)
from competition.errors import DataError
from competition.limits import ReadLimits
from hostile import png_bomb, set_declared_size, write_zip_bomb  # tests/hostile.py


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
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert (tmp_path / "imported.sha256").is_file()
    again = runner.invoke(app, ["data", "import", str(tmp_path / "shipsnet.json"), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such file or folder" in missing.output


# --- hostile inputs: each is refused with exit code 1, and nothing is written -----------------

CHIP_NAME = "1__20180708_180909_0f47__-122.3_37.7.png"


def _json_file(tmp_path, edit=None, name="shipsnet.json"):
    """A small shipsnet.json of two chips (zero pixels), changed by ``edit(doc)``."""
    doc = {"data": [[0] * 19200, [0] * 19200], "labels": [1, 0], "locations": [[-122.3, 37.7], [-118.2, 33.7]],
           "scene_ids": ["20180708_180909_0f47", "20170707_174131_0c0b"]}
    if edit is not None:
        edit(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _zip_of(tmp_path, members: dict, name="archive.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def _zip_bomb(tmp_path):
    return write_zip_bomb(tmp_path / "bomb.zip", mib=600)  # 620 kB that expand to 629 MB


def _lying_zip(tmp_path):
    path = write_zip_bomb(tmp_path / "liar.zip", mib=8)
    set_declared_size(path, 1000)  # says 1000 bytes, expands to 8 MiB
    return path


def _png_bomb_zip(tmp_path):
    return _zip_of(tmp_path, {f"shipsnet/{CHIP_NAME}": png_bomb(13000, 13000)})  # 20 kB, 169 megapixels


def _nested_json(tmp_path):
    path = tmp_path / "shipsnet.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def _truncated_zip(tmp_path):
    whole = _zip_of(tmp_path, {"shipsnet.json": _json_file(tmp_path).read_bytes()}, name="whole.zip")
    path = tmp_path / "cut.zip"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    (tmp_path / "shipsnet.json").unlink()
    return path


def _set(key, index, value, row=None):
    def edit(doc):
        target = doc[key] if row is None else doc[key][row]
        target[index] = value
    return edit


HOSTILE = {
    "zip bomb": (_zip_bomb, "bomb.zip:shipsnet.json: the zip declares 629.1 MB uncompressed (622.2 kB compressed), "
                            "more than the limit of 536.9 MB for shipsnet.json"),
    "lying zip header": (_lying_zip, "liar.zip:shipsnet.json: damaged zip member (Bad CRC-32"),
    "PNG bomb in a zip": (_png_bomb_zip, f"{CHIP_NAME}: image is 13000x13000 pixels; expected an 80x80 RGB chip"),
    "nested JSON": (_nested_json, "holds 100000 '[' where a ShipsNet JSON of 200000 characters holds at most 16"),
    "pixel 10^30": (lambda p: _json_file(p, _set("data", 3, 10**30, row=0)), "'data'[0] value 3 is 1e+30"),
    "'/' in a scene id": (lambda p: _json_file(p, _set("scene_ids", 1, "20170707_1/../../x")),
                          "'scene_ids'[1] is '20170707_1/../../x', which contains '/'"),
    "label 0.7": (lambda p: _json_file(p, _set("labels", 0, 0.7)), "'labels'[0] is 0.7; expected 0 (no ship) or 1"),
    "truncated zip": (_truncated_zip, "cut.zip: not a readable zip file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_import_fails_cleanly_and_writes_nothing(tmp_path, case):
    build, message = HOSTILE[case]
    src = build(tmp_path)
    out = tmp_path / "imported"
    result = CliRunner().invoke(app, ["data", "import", str(src), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert message in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no partial folder, no checksum file


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def _big_liar(tmp_path):
    path = write_zip_bomb(tmp_path / "liar.zip", mib=64)
    set_declared_size(path, 1000)  # zipfile's own read() would inflate all 64 MiB before it checks
    return path


@pytest.mark.parametrize("build", [_zip_bomb, _big_liar, _png_bomb_zip], ids=["zip bomb", "lying header", "PNG bomb"])
def test_bombs_are_refused_before_they_take_memory(tmp_path, build):
    src = build(tmp_path)

    def load():
        with pytest.raises(DataError):
            load_chips(src)

    assert _peak_mib(load) < 16  # inflated or decoded: 629 MB, 67 MB and 507 MB


def test_zip_limits_are_checked_from_the_headers(tmp_path):
    folder = _subset_folder(tmp_path, n=4)
    src = _zip_of(tmp_path, {f"shipsnet/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())})
    with pytest.raises(DataError, match=r"archive.zip: holds 4 chip files, more than the limit of 3"):
        load_chips(src, limits=ReadLimits(max_chips=3))
    with pytest.raises(DataError, match=r"archive.zip: 4 chip file\(s\) larger than the limit of 1.0 kB, e.g. 'shipsnet/"):
        load_chips(src, limits=ReadLimits(max_file_bytes=1000))
    with pytest.raises(DataError, match=r"archive.zip: chip files of \d+.\d kB in all, more than the limit of 20.0 kB"):
        load_chips(src, limits=ReadLimits(max_bytes=20_000))
    assert len(load_chips(src)) == 4


def test_hostile_folders_are_refused(tmp_path):
    folder = _subset_folder(tmp_path, n=4)
    (tmp_path / "shipsnet.sha256").unlink()
    big = folder / "1__20180708_180909_0f47__-122.3_37.7.png"
    big.write_bytes(b"\0" * (2 << 20))
    with pytest.raises(DataError, match=rf"{folder}: 1 chip file\(s\) larger than the limit of 1.0 MB"):
        load_chips(folder)
    big.unlink()
    if os.path.exists("/dev/zero"):
        big.symlink_to("/dev/zero")  # endless, and 0 bytes by its size
        with pytest.raises(DataError, match=rf"{big}: not a regular file"):
            load_chips(folder)
        big.unlink()
    (folder / CHIP_NAME.replace("20180708", "20181399")).write_bytes(b"")
    with pytest.raises(DataError, match=r"scene id is '20181399_180909_0f47', whose first 8 characters"):
        load_chips(folder)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=rf"{fifo}: not a regular file"):
        load_chips(fifo)


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch, failure):
    from PIL import Image

    chips = load_chips(_subset_folder(tmp_path, n=8))
    before = sorted(p.name for p in tmp_path.iterdir())
    real, calls = Image.fromarray, []

    def fails_on_the_fifth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(Image, "fromarray", fails_on_the_fifth)
    out = tmp_path / "new" / "deeper" / "chips"
    with pytest.raises(type(failure)):
        write_folder(chips, out)
    assert len(calls) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no chips/, chips.sha256, partial folder or parents
    monkeypatch.setattr(Image, "fromarray", real)
    write_folder(chips, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["chips", "chips.sha256"]
    assert load_chips(out).data_hash() == chips.data_hash()


def test_write_folder_refuses_unusable_names_before_writing(tmp_path):
    from competition.data import Chips

    chips = load_chips(_subset_folder(tmp_path, n=2))
    bad = Chips(chips.X, chips.y, chips.scene_id, chips.lon, chips.lat,
                np.array(["1__20180708_1/../../x__1.0_2.0.png", chips.name[1]], dtype=object))
    with pytest.raises(DataError, match="not a ShipsNet chip name"):
        write_folder(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="already exists"):
        write_folder(chips, tmp_path / "shipsnet")


@pytest.mark.parametrize("layout", ["zip of chips", "zip of json", "json"])
def test_damaged_bytes_are_data_errors_never_tracebacks(tmp_path, layout):
    import random

    folder = _subset_folder(tmp_path, n=3)
    if layout == "zip of chips":
        data = _zip_of(tmp_path, {f"shipsnet/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}).read_bytes()
    elif layout == "zip of json":
        data = _zip_of(tmp_path, {"shipsnet.json": _json_file(tmp_path).read_bytes()}).read_bytes()
    else:
        data = _json_file(tmp_path).read_bytes()
    rng, target = random.Random(0), tmp_path / ("damaged.zip" if "zip" in layout else "damaged.json")
    for _ in range(150):
        damaged = bytearray(data)
        if rng.random() < 0.5:
            damaged = damaged[: rng.randrange(len(damaged))]
        for _ in range(rng.randint(0, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        target.write_bytes(bytes(damaged))
        try:
            load_chips(target)
        except DataError:
            pass
