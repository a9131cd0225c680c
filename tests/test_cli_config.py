"""`ships config show|set` over the validated settings, and a metric changed by the organiser reranks on rescore."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ships.cli import app
from workspaces import light_workspace

runner = CliRunner()


@pytest.fixture
def ws(real_workspace_path, tmp_path):
    return light_workspace(real_workspace_path, tmp_path / "ws")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_of(result) -> str:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result.output.strip()


def test_show_lists_every_setting(ws):
    result = run("config", "show", "-w", ws.root, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["metric"] == "roc_auc" and shown["n_finals"] == 2 and shown["deadline"] is None
    assert shown["solution_sha256"] == ws.config.solution_sha256


def test_set_validates_writes_and_relocks(ws):
    result = run("config", "set", "deadline", "2026-12-31T23:59:00+01:00", "-w", ws.root)
    assert result.exit_code == 0, result.output
    text = (ws.root / "ships.toml").read_text()
    assert "deadline = 2026-12-31 22:59:00+00:00" in text  # a TOML datetime, in UTC
    assert run("config", "set", "metric", "log_loss", "-w", ws.root).exit_code == 0
    from competition.workspace import Workspace

    reopened = Workspace.open(ws.root)
    assert reopened.rules.metric == "log_loss" and not reopened.rules.greater_is_better
    reopened.load_solution()  # the scoring settings were re-locked by `config set`, so scoring goes on


@pytest.mark.parametrize("args, message", [
    (["seed", "3"], "Error: ships.toml: seed is fixed at init"),
    (["daily_quota", "abc"], "Error: ships.toml: daily_quota = 'abc' is invalid; expected an integer from 1 to 10000"),
    (["metric", "auc"], "Error: ships.toml: metric = 'auc' is invalid; expected one of 'roc_auc'"),
    (["dealine", "2026-12-31"], "Error: ships.toml: unknown key 'dealine'; did you mean 'deadline'?"),
    (["deadline", "next friday"], "Error: ships.toml: deadline = 'next friday' is invalid"),
    (["store_url", "mysql://ships:s3cret@db/ships"],
     "Error: ships.toml: store_url = 'mysql://ships:***@db/ships' is not a store ships runs on; expected 'sqlite:///"),
    (["store_url", "postgres://ships:s3cret@db/ships"],
     "Error: ships.toml: store_url is not a database URL ships can use (PostgreSQL is reached through psycopg 3"),
    (["store_url", "postgresql+psycopg2://ships:s3cret@db/ships"],
     "Error: ships.toml: store_url = 'postgresql+psycopg2://ships:***@db/ships' is not a store ships runs on"),
])
def test_set_refuses_bad_input_and_changes_nothing(ws, args, message):
    before = (ws.root / "ships.toml").read_bytes()
    assert error_of(run("config", "set", *args, "-w", ws.root)).startswith(message)
    assert (ws.root / "ships.toml").read_bytes() == before


def test_a_metric_edited_by_hand_stops_scoring(ws, tmp_path):
    toml = ws.root / "ships.toml"
    toml.write_text(toml.read_text().replace('metric = "roc_auc"', 'metric = "log_loss"'))
    sample = ws.public_dir / "sample_submission.csv"
    message = error_of(run("score", sample, "-w", ws.root, "--team", "alpha", "--create", "--no-track"))
    assert "the scoring settings (metric, n_bootstrap, seed) were edited by hand; scoring refused" in message
    assert not list(ws.submissions_dir.iterdir())


def _write(ws, path: Path, y_proba) -> Path:
    pd.DataFrame({"id": ws.load_solution().ids, "ship": y_proba}).to_csv(path, index=False)
    return path


def test_changing_the_metric_then_rescore_reranks(ws, tmp_path):
    """Sharp ranks every ship first (AUC 1) but is badly calibrated; Calibrated errs on 3% of chips
    with confidence yet has the far lower log loss. ROC AUC ranks Sharp first; log loss, Calibrated."""
    y = ws.load_solution().y_true
    sharp = _write(ws, tmp_path / "sharp.csv", np.where(y == 1, 0.51, 0.49))
    wrong = np.random.default_rng(0).random(len(y)) < 0.03
    calibrated = _write(ws, tmp_path / "calibrated.csv", np.where((y == 1) != wrong, 0.97, 0.03))
    for team, path in (("Sharp", sharp), ("Calibrated", calibrated)):
        assert run("score", path, "-w", ws.root, "--team", team, "--create", "--no-track").exit_code == 0
    board = json.loads(run("leaderboard", "-w", ws.root, "--json").output)
    assert [r["team"] for r in board["rows"]] == ["Sharp", "Calibrated"] and board["metric"] == "roc_auc"

    assert run("config", "set", "metric", "log_loss", "-w", ws.root).exit_code == 0
    result = run("rescore", "-w", ws.root)
    assert result.exit_code == 0, result.output
    board = json.loads(run("leaderboard", "-w", ws.root, "--json").output)
    assert board["metric"] == "log_loss" and not board["greater_is_better"]
    assert [r["team"] for r in board["rows"]] == ["Calibrated", "Sharp"]
    assert board["rows"][0]["score"] < board["rows"][1]["score"]  # lower is better
