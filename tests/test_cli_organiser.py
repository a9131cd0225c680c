"""The organiser's controls on the command line: team rename, remove, reset-token; submission invalidate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leaderboard.store import Store
from leaderboard.submit import submit_file
from ships.cli import app
from workspaces import light_workspace

runner = CliRunner()


@pytest.fixture
def ws(real_workspace_path, tmp_path):
    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    with Store.open(ws.store_url, ws.rules) as store:
        store.add_team("alpha")
        store.add_team("Tpyo")
        sample = (ws.public_dir / "sample_submission.csv").read_bytes()
        submit_file(ws, sample, team="alpha", store=store)
    return ws


def run(ws, *args):
    return runner.invoke(app, [*map(str, args), "-w", str(ws.root)])


def error_of(result) -> str:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result.output.strip()


def test_rename_and_remove(ws):
    assert run(ws, "team", "rename", "tpyo", "Typo").exit_code == 0
    assert run(ws, "team", "remove", "TYPO").exit_code == 0
    names = [t["name"] for t in json.loads(run(ws, "team", "list", "--json").output)]
    assert names == ["alpha"]
    assert error_of(run(ws, "team", "remove", "alpha")).startswith(
        "Error: team 'alpha' has 1 submission, which are kept (submissions are append-only)")
    assert error_of(run(ws, "team", "rename", "ghost", "x")).startswith("Error: unknown team 'ghost'")


def test_reset_token_replaces_the_old_one(ws):
    with Store.open(ws.store_url) as store:
        old = store.reset_token("alpha")
    result = run(ws, "team", "reset-token", "ALPHA", "--json")
    assert result.exit_code == 0, result.output
    new = json.loads(result.output)["token"]
    with Store.open(ws.store_url) as store:
        assert store.team_for_token(new) == "alpha"
        with pytest.raises(Exception, match="invalid team token"):
            store.team_for_token(old)


def test_invalidate_takes_a_submission_off_the_board(ws):
    board = json.loads(run(ws, "leaderboard", "--json").output)
    assert [r["team"] for r in board["rows"]] == ["alpha"]
    result = run(ws, "submission", "invalidate", "1", "--reason", "a copy of another team's file")
    assert result.exit_code == 0, result.output
    assert json.loads(run(ws, "leaderboard", "--json").output)["rows"] == []
    [record] = json.loads(run(ws, "submissions", "--json").output)
    assert record["invalidated"] == "a copy of another team's file"
    table = runner.invoke(app, ["submissions", "-w", str(ws.root)], env={"COLUMNS": "250"})
    assert "(newest first)" in table.output and "invalidated: a copy of" in " ".join(table.output.split())
    assert "invalidated already" in error_of(run(ws, "submission", "invalidate", "1", "--reason", "again"))
    assert "no submission 7" in error_of(run(ws, "submission", "invalidate", "7", "--reason", "x"))


def test_a_huge_id_is_a_flag_error_not_a_traceback(ws):
    result = run(ws, "submission", "invalidate", "99999999999999999999", "--reason", "x")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
