"""`ships init` and the workspace contract of DESIGN.md, on the real chips."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import competition.create as create_module
from ships.cli import app
from datetime import datetime, timezone

from competition.create import init_workspace
from competition.data import Chips
from competition.errors import ConfigError, WorkspaceError
from competition.workspace import LockError, Workspace

PUBLIC_FILES = ["train.csv", "test.csv", "folds.csv", "sample_submission.csv"]


def _subset(chips, idx) -> Chips:
    return Chips(*(getattr(chips, f.name)[idx] for f in dataclasses.fields(Chips)))


def _tree_digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_layout(real_workspace_path):
    root = real_workspace_path
    for name in PUBLIC_FILES:
        assert (root / "public" / name).is_file()
    assert (root / "private" / "solution.csv").is_file() and (root / "ships.toml").is_file()
    assert (root / "submissions").is_dir()
    assert "CC BY-SA 4.0" in (root / "public" / "LICENSE-DATA.md").read_text()
    train = pd.read_csv(root / "public" / "train.csv")
    assert list(train.columns) == ["id", "label", "scene_id", "group", "lon", "lat"]
    assert list(pd.read_csv(root / "public" / "test.csv").columns) == ["id"]
    assert list(pd.read_csv(root / "public" / "folds.csv").columns) == ["id", "fold"]
    sample = pd.read_csv(root / "public" / "sample_submission.csv")
    assert list(sample.columns) == ["id", "ship"] and sample["ship"].nunique() == 1
    assert sample["ship"].iloc[0] == pytest.approx(train["label"].mean(), abs=1e-6)
    solution = pd.read_csv(root / "private" / "solution.csv")
    assert list(solution.columns) == ["id", "ship", "Usage", "scene_id", "group"]
    assert len(train) + len(solution) == 4000
    assert len(list((root / "public" / "train").iterdir())) == len(train)
    assert len(list((root / "public" / "test").iterdir())) == len(solution)


def test_loaders_read_public_only_and_match(real_workspace_path, chips):
    ws = Workspace.open(real_workspace_path)
    train, test = ws.load_train(), ws.load_test()
    assert train.X.shape == (len(train.ids), 80, 80, 3) and test.X.shape == (len(test.ids), 80, 80, 3)
    # every chip's pixels appear exactly once over train + test
    all_px = {x.tobytes() for x in np.concatenate([train.X, test.X])}
    assert all_px == {x.tobytes() for x in chips.X}
    solution = ws.load_solution()
    assert list(solution.ids) == list(test.ids)
    assert set(train.groups).isdisjoint(solution.groups)


def test_same_inputs_give_byte_identical_public_files(tmp_path, real_workspace_path):
    init_workspace(tmp_path / "again", seed=0)  # the default chips, as a plain `ships init` gets them
    assert _tree_digest(tmp_path / "again" / "public") == _tree_digest(real_workspace_path / "public")


def test_another_seed_gives_other_public_files(tmp_path, chips):
    subset = _subset(chips, np.arange(0, 4000, 10))  # 400 chips from many days: the same data both times
    seed0, seed1 = (init_workspace(tmp_path / f"seed{s}", chips=subset, seed=s) for s in (0, 1))
    assert _tree_digest(seed0.public_dir) != _tree_digest(seed1.public_dir)
    assert set(seed0.load_solution().groups) != set(seed1.load_solution().groups)  # other days, not only other ids


def test_ids_and_order_reveal_nothing(real_workspace_path, chips):
    root = real_workspace_path
    train = pd.read_csv(root / "public" / "train.csv", dtype={"id": str})
    test = pd.read_csv(root / "public" / "test.csv", dtype={"id": str})
    assert list(train["id"]) == sorted(train["id"]) and list(test["id"]) == sorted(test["id"])
    ids = set(train["id"]) | set(test["id"])
    assert all(len(i) == 12 and all(c in "0123456789abcdef" for c in i) for i in ids)
    # not derived from the file name, nor from the raw pixels or file bytes without the secret-free salt
    name_hashes = {hashlib.sha256(n.encode()).hexdigest()[:12] for n in chips.name}
    pixel_hashes = {hashlib.sha256(x.tobytes()).hexdigest()[:12] for x in chips.X}
    assert not ids & name_hashes and not ids & pixel_hashes
    # the label is not predictable from the id: ship fraction is alike in both halves of the id space
    y = train["label"].to_numpy()
    assert abs(y[: len(y) // 2].mean() - y[len(y) // 2:].mean()) < 0.05
    # PNGs are re-encoded: no text chunk carries the original name
    png = next((root / "public" / "test").iterdir()).read_bytes()
    chunks, pos = [], 8
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        chunks.append(png[pos + 4:pos + 8])
        pos += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}


def test_init_refuses_existing_unless_forced(tmp_path):
    runner = CliRunner()
    (tmp_path / "ws").mkdir()
    result = runner.invoke(app, ["init", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert "already exists; pass --force" in result.output


def test_failed_init_leaves_nothing_half_written(tmp_path, chips, monkeypatch):
    subset = _subset(chips, np.arange(0, 4000, 10))  # 400 chips: a whole workspace, written in a blink
    target = tmp_path / "ws"
    init_workspace(target, chips=subset, seed=0)
    before = _tree_digest(target)
    calls = {"n": 0}
    real_write = create_module._write_png

    def flaky(pixels, path):
        calls["n"] += 1
        if calls["n"] == 200:
            raise OSError("disk full")
        real_write(pixels, path)

    monkeypatch.setattr(create_module, "_write_png", flaky)
    with pytest.raises(OSError, match="disk full"):
        init_workspace(target, chips=subset, seed=5, force=True)
    assert _tree_digest(target) == before  # the old workspace is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]  # no temporary folder left
    calls["n"] = 0
    with pytest.raises(OSError):
        init_workspace(tmp_path / "new", chips=subset, seed=5)
    assert not (tmp_path / "new").exists()


def test_open_errors(tmp_path):
    with pytest.raises(WorkspaceError, match="no such workspace; create one with `ships init"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkspaceError, match="not a workspace"):
        Workspace.open(tmp_path / "empty")


def test_incomplete_workspace_is_named(workspace):
    (workspace.public_dir / "folds.csv").unlink()
    with pytest.raises(WorkspaceError, match="missing public/folds.csv"):
        Workspace.open(workspace.root)


def test_edited_solution_is_refused(workspace):
    path = workspace.solution_path
    path.write_text(path.read_text().replace(",0,Public", ",1,Public", 1))
    with pytest.raises(LockError, match="solution.csv: changed since `ships init`; scoring refused"):
        workspace.load_solution()


def test_a_deleted_test_id_is_refused(workspace):
    """A shorter public/test.csv would let a short submission be scored on a subset of the solution."""
    path = workspace.public_dir / "test.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))
    with pytest.raises(LockError, match="test.csv: changed since `ships init`; scoring refused"):
        Workspace.open(workspace.root).load_solution()


def test_scoring_settings_edited_by_hand_are_refused(workspace):
    toml = workspace.root / "ships.toml"
    toml.write_text(toml.read_text().replace("n_bootstrap = 1000", "n_bootstrap = 200"))
    with pytest.raises(LockError, match=r"scoring settings \(metric, n_bootstrap, seed\) were edited by hand"):
        Workspace.open(workspace.root).load_solution()


@pytest.mark.parametrize("line, message", [
    ("seed = \"abc\"", "ships.toml: seed = 'abc' is invalid; expected an integer from 0 to 4294967295"),
    ("deadline = \"next friday\"", "ships.toml: deadline = 'next friday' is invalid; expected a TOML datetime "
                                   "or an ISO 8601 date and time"),
    ("daily_quota = 0", "ships.toml: daily_quota = 0 is invalid; expected an integer from 1 to 10000"),
    ("metric = \"auc\"", "ships.toml: metric = 'auc' is invalid; expected one of 'roc_auc', 'log_loss'"),
    ("dealine = 2026-12-31T23:59:00Z", "ships.toml: unknown key 'dealine'; did you mean 'deadline'? Remove or rename it"),
    ("seed = ", "ships.toml: not valid TOML (Invalid value (at line"),
])
def test_a_bad_ships_toml_is_one_precise_error(workspace, line, message):
    toml = workspace.root / "ships.toml"
    key = line.split(" ")[0]
    kept = [x for x in toml.read_text().splitlines() if not x.startswith(key + " ")]
    toml.write_text("\n".join(kept + [line]) + "\n")
    with pytest.raises(ConfigError) as info:
        Workspace.open(workspace.root)
    assert message in str(info.value)


def test_a_toml_datetime_deadline_is_read_as_utc(workspace):
    toml = workspace.root / "ships.toml"
    toml.write_text(toml.read_text() + "deadline = 2026-12-31T23:59:00+01:00\n")
    ws = Workspace.open(workspace.root)
    assert ws.config.deadline == datetime(2026, 12, 31, 22, 59, tzinfo=timezone.utc)
    assert ws.rules.deadline == ws.config.deadline


def test_init_from_imported_data(tmp_path, chips):
    """`ships init --data` builds the workspace from chips read from disk, not the bundled ones."""
    import json

    subset = np.arange(0, 4000, 10)  # 400 chips over many acquisition days
    doc = {
        "data": chips.X[subset].transpose(0, 3, 1, 2).reshape(len(subset), -1).tolist(),
        "labels": chips.y[subset].tolist(),
        "locations": np.stack([chips.lon[subset], chips.lat[subset]], axis=1).tolist(),
        "scene_ids": list(chips.scene_id[subset]),
    }
    (tmp_path / "shipsnet.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(app, ["init", "-w", str(tmp_path / "ws"), "--data", str(tmp_path / "shipsnet.json")])
    assert result.exit_code == 0, result.output
    ws = Workspace.open(tmp_path / "ws")
    assert len(ws.load_train().ids) + len(ws.test_ids()) == 400
    assert ws.config.data_sha256 != chips.data_hash()
