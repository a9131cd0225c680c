"""``ships demo``: the competition end to end on the bundled real chips."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

import ships.demo as demo_module

runner = CliRunner()


from ships.cli import app as root


def _submissions(path):
    from competition.workspace import Workspace
    from leaderboard.submit import open_store

    return open_store(Workspace.open(path)).submissions()


def test_demo_creates_the_workspace_then_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "DEMO_BASELINES", ("dummy", "knn"))
    path = tmp_path / "demo"
    result = runner.invoke(root, ["demo", "-w", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Creating workspace {path} from the 4000 bundled ShipsNet chips" in out
    assert "[1/2] baseline dummy" in out and "[2/2] baseline knn" in out and "5/5 folds" in out
    assert "Public leaderboard (roc_auc, higher is better)" in out
    assert "CV: PredefinedSplit (official folds by acquisition day)" in " ".join(out.split())
    assert "baseline-knn" in out and "baseline-dummy" in out
    for hint in ("ships ui mlflow --workspace", "ships serve --workspace", "ships leaderboard --workspace"):
        assert hint in out
    teams = sorted(r.team for r in _submissions(path))
    assert teams == ["baseline-dummy", "baseline-knn"]
    assert sorted(p.name for p in (path / "baseline_submissions").iterdir()) == ["dummy.csv", "knn.csv"]

    monkeypatch.setattr(demo_module, "DEMO_BASELINES", ("dummy",))
    again = runner.invoke(root, ["demo", "-w", str(path)], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert f"Reusing workspace {path}" in again.output
    assert "dummy: already run and submitted in this workspace" in " ".join(again.output.split())
    assert len(_submissions(path)) == 2  # no second record of a baseline


def test_demo_refuses_a_folder_that_is_not_a_workspace(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(root, ["demo", "-w", str(tmp_path)])
    assert result.exit_code == 1 and "not a workspace (no ships.toml)" in result.output


@pytest.mark.slow
def test_full_demo_under_ten_minutes(tmp_path):
    start = time.monotonic()
    result = runner.invoke(root, ["demo", "-w", str(tmp_path / "demo")], terminal_width=200)
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert elapsed < 600, f"the demo took {elapsed:.0f} s"
    public = {r.team: r.public_score for r in _submissions(tmp_path / "demo")}
    assert public["baseline-dummy"] == 0.5
    assert public["baseline-logreg"] > 0.97 and public["baseline-xgboost"] > 0.98 and public["baseline-knn"] > 0.98
