"""`ships team`, `status`, `leaderboard`, `submissions`, `select`, `finalize`, `rescore` on the real workspace."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from ships._common import ShipsGroup
from ships.leaderboard import app as leaderboard_app
from ships.scoring import app as scoring_app
from leaderboard.store import Store
from leaderboard.submit import submit_file

runner = CliRunner()

# The root group as competition/cli/__init__.py builds it (same error mapping).
root = typer.Typer(cls=ShipsGroup, no_args_is_help=True, pretty_exceptions_enable=False)
root.add_typer(leaderboard_app)
root.add_typer(scoring_app)


def ships(ws, *args, input=None):
    """Run ``ships ARGS --workspace WS`` with a wide terminal; returns the click Result."""
    return runner.invoke(root, [*args, "--workspace", str(ws.root)], input=input, env={"COLUMNS": "200"})


def error_of(result) -> str:
    """The single ``Error: ...`` line of a failed command."""
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def write_predictions(ws, path, quality: float, seed: int = 0, invert_private: bool = False):
    """A submission whose AUC grows with ``quality`` (the organiser writes it from the solution)."""
    sol = ws.load_solution()
    rng = np.random.default_rng(seed)
    y = np.where((sol.usage == "Private") & invert_private, 1 - sol.y_true, sol.y_true)
    ship = (quality * y + rng.random(len(y))) / (1 + quality)  # AUC about 1 - (1 - quality)**2 / 2
    pd.DataFrame({"id": sol.ids, "ship": ship}).to_csv(path, index=False)
    return path


@pytest.fixture
def board(workspace, tmp_path):
    """alpha (2 submissions), beta (1, good Public, bad Private), the 'dummy' baseline."""
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    for i, (team, quality, kind, invert) in enumerate([("alpha", 0.3, "team", False), ("alpha", 0.5, "team", False),
                                                       ("beta", 0.6, "team", True), ("dummy", 0.0, "baseline", False)]):
        path = write_predictions(workspace, tmp_path / f"{i}.csv", quality, seed=i, invert_private=invert)
        submit_file(workspace, path, team=team, kind=kind, message=f"try {i}", now=t0 + timedelta(minutes=i))
    return workspace


# -- teams -------------------------------------------------------------------------------------

def test_team_add_prints_the_token_once(workspace):
    result = ships(workspace, "team", "add", "Harbour Watch")
    assert result.exit_code == 0, result.output
    assert "it will not be shown again" in result.output
    token = result.output.strip().splitlines()[-1]
    with Store.open(workspace.store_url) as store:
        assert store.team_for_token(token) == "Harbour Watch"
    listed = ships(workspace, "team", "list")
    assert listed.exit_code == 0, listed.output
    assert "Harbour Watch" in listed.output and token not in listed.output
    as_json = ships(workspace, "team", "list", "--json")
    assert json.loads(as_json.output)[0] == {**json.loads(as_json.output)[0], "name": "Harbour Watch",
                                             "kind": "team", "has_token": True}


def test_team_add_json(workspace):
    result = ships(workspace, "team", "add", "alpha", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["team"] == "alpha" and len(out["token"]) >= 40


@pytest.mark.parametrize("args, message", [
    (["team", "add", "ALPHA"], "Error: team name 'ALPHA' is taken (by 'alpha'; names are compared "
                               "case-insensitively); choose another name"),
    (["team", "add", ""], "Error: team name '' is invalid: expected 1 to 64 characters, got 0 characters"),
    (["team", "add", "x" * 65], "Error: team name '" + "x" * 65 + "' is invalid: expected 1 to 64 characters, "
                                "got 65 characters"),
    (["status", "--team", "ghost"], "Error: unknown team 'ghost'; see 'ships team list', or create it with "
                                    "'ships team add'"),
    (["submissions", "--team", "ghost"], "Error: unknown team 'ghost'"),
    (["select", "1", "--team", "ghost"], "Error: unknown team 'ghost'"),
    (["leaderboard", "--private"], "Error: the Private leaderboard is hidden until the competition is finalized "
                                   "(ships finalize); only the Public one is available"),
])
def test_bad_input_is_one_precise_error(workspace, args, message):
    assert ships(workspace, "team", "add", "alpha").exit_code == 0
    result = ships(workspace, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an input error, not a crash
    assert error_of(result).startswith(message)


@pytest.mark.parametrize("args", [
    ["team", "add"],                       # missing NAME
    ["team", "add", "a", "--kind", "x"],   # no such option
    ["status"],                            # missing --team
    ["leaderboard", "--bogus"],
    ["submissions", "--team"],             # option without value
    ["select", "--team", "alpha"],         # no ids
    ["select", "one", "--team", "alpha"],  # not an int
    ["finalize", "--now"],
    ["rescore", "extra"],
])
def test_bad_flags_exit_2(workspace, args):
    result = ships(workspace, *args)
    assert result.exit_code == 2, result.output


def test_team_group_without_a_command_shows_help(workspace):
    result = runner.invoke(root, ["team"])
    assert result.exit_code in (0, 2), result.output  # click 8.2 and later exit 2 after a group's help
    assert "Create and list the teams" in result.output and "add" in result.output and "list" in result.output


def test_missing_workspace_is_an_error(tmp_path):
    result = runner.invoke(root, ["leaderboard", "--workspace", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no such workspace" in error_of(result)


def test_team_names_with_markup_are_shown_literally(workspace, tmp_path):
    name = "<script>alert(1)</script>[bold]x[/bold]"
    assert ships(workspace, "team", "add", name).exit_code == 0
    submit_file(workspace, write_predictions(workspace, tmp_path / "s.csv", 0.4), team=name)
    for args in (["team", "list"], ["leaderboard"], ["submissions"], ["submissions", "--team", name]):
        result = ships(workspace, *args)
        assert result.exit_code == 0, result.output
        assert result.output.count(name) == (2 if "--team" in args else 1), args  # title and row
    assert json.loads(ships(workspace, "leaderboard", "--json").output)["rows"][0]["team"] == name


# -- status, leaderboard, submissions ---------------------------------------------------------

def test_empty_leaderboard(workspace):
    result = ships(workspace, "leaderboard")
    assert result.exit_code == 0, result.output
    assert result.output == "The Public leaderboard is empty: no submissions yet.\n"
    assert json.loads(ships(workspace, "leaderboard", "--json").output)["rows"] == []


def test_status_shows_use_and_reset(board):
    result = ships(board, "status", "--team", "ALPHA")
    assert result.exit_code == 0, result.output
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert "alpha: 2 of 5 submissions used on" in result.output
    assert f"3 left; the quota resets at {tomorrow} 00:00 UTC" in result.output
    out = json.loads(ships(board, "status", "--team", "alpha", "--json").output)
    assert (out["used"], out["limit"], out["left"]) == (2, 5, 3)
    assert out["resets_at"].startswith(tomorrow)
    baseline = ships(board, "status", "--team", "dummy")
    assert "no daily limit" in baseline.output


def test_status_after_the_quota_is_used(workspace, tmp_path):
    path = write_predictions(workspace, tmp_path / "s.csv", 0.4)
    for _ in range(workspace.config.daily_quota):
        submit_file(workspace, path, team="alpha")
    result = ships(workspace, "score", str(path), "--team", "alpha", "--create")
    assert result.exit_code == 1
    assert error_of(result).startswith("Error: team 'alpha' has used its 5 submissions for ")
    assert "0 left" in ships(workspace, "status", "--team", "alpha").output


def test_public_leaderboard(board):
    result = ships(board, "leaderboard")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    beta, alpha, dummy = (next(l for l in lines if f" {n} " in l) for n in ("beta", "alpha", "dummy"))
    assert lines.index(beta) < lines.index(alpha) < lines.index(dummy)
    assert "baseline" in dummy and "team" in alpha
    assert "2" in alpha.split()[:3]  # alpha: 2 entries somewhere on its line; rank column first
    out = json.loads(ships(board, "leaderboard", "--json").output)
    assert out["board"] == "public" and out["finalized"] is False
    rows = {r["team"]: r for r in out["rows"]}
    assert (rows["beta"]["rank"], rows["alpha"]["rank"], rows["dummy"]["rank"]) == (1, 2, None)
    assert rows["alpha"]["entries"] == 2 and rows["dummy"]["kind"] == "baseline"
    assert rows["alpha"]["score_low"] < rows["alpha"]["score"] < rows["alpha"]["score_high"]
    with Store.open(board.store_url) as store:
        assert rows["alpha"]["submission_id"] == 2
        assert rows["alpha"]["score"] == store.submission(2).public_score


def test_submissions_show_public_only_before_finalize(board):
    out = json.loads(ships(board, "submissions", "--team", "alpha", "--json").output)
    assert [r["id"] for r in out] == [1, 2]
    assert all(r["private"] is None and r["private_score"] is None for r in out)
    table = ships(board, "submissions")
    assert table.exit_code == 0, table.output
    assert "try 3" in table.output and "private" not in table.output


# -- finals and finalize ------------------------------------------------------------------------

def test_select_and_its_errors(board):
    ok = ships(board, "select", "1", "--team", "alpha")
    assert ok.exit_code == 0, ok.output
    assert "alpha: final submissions 1 (Public " in ok.output
    other = ships(board, "select", "1", "3", "--team", "alpha")
    assert other.exit_code == 1
    assert error_of(other) == ("Error: submission 3 belongs to team 'beta', not 'alpha'; "
                               "a team may select only its own submissions")
    third = ships(board, "select", "1", "2", "3", "--team", "alpha")
    assert third.exit_code == 1
    assert error_of(third) == "Error: at most 2 final submissions per team; got 3 (1, 2, 3). Pick the 2 to keep"
    missing = ships(board, "select", "9", "--team", "alpha")
    assert error_of(missing) == "Error: no submission 9 of team 'alpha'; its ids are listed by 'ships submissions'"
    assert json.loads(ships(board, "select", "1", "2", "--team", "alpha", "--json").output) == {
        "team": "alpha", "finals": [1, 2]}


def test_finalize_asks_first(board):
    result = ships(board, "finalize", input="n\n")
    assert result.exit_code == 1
    with Store.open(board.store_url) as store:
        assert not store.is_finalized()


def test_finalize_reveals_private_with_moves_and_closes(board, tmp_path):
    assert ships(board, "select", "1", "--team", "alpha").exit_code == 0
    result = ships(board, "finalize", "--yes")
    assert result.exit_code == 0, result.output
    assert "submissions are closed" in result.output
    assert "Picked as finals (2 best Public) for teams that selected none: 3, 4" in result.output
    assert "Private leaderboard" in result.output and "move" in result.output
    out = json.loads(ships(board, "leaderboard", "--private", "--json").output)
    rows = {r["team"]: r for r in out["rows"]}
    assert out["finalized"] is True
    assert (rows["alpha"]["rank"], rows["alpha"]["public_rank"], rows["alpha"]["move"]) == (1, 2, 1)
    assert (rows["beta"]["rank"], rows["beta"]["public_rank"], rows["beta"]["move"]) == (2, 1, -1)
    assert rows["alpha"]["submission_id"] == 1  # its selected final, not its best Public
    subs = json.loads(ships(board, "submissions", "--json").output)
    assert all(r["private_score"] is not None for r in subs)

    again = ships(board, "finalize", "--yes")
    assert again.exit_code == 1 and isinstance(again.exception, SystemExit), again.exception
    assert error_of(again).startswith("Error: the competition was finalized at ")
    late = ships(board, "score", str(write_predictions(board, tmp_path / "late.csv", 0.9)), "--team", "alpha", "--create")
    assert late.exit_code == 1
    assert error_of(late).startswith("Error: the competition was finalized at ")
    assert error_of(late).endswith("submissions and final selections are closed")
    sel = ships(board, "select", "2", "--team", "alpha")
    assert sel.exit_code == 1 and "closed" in error_of(sel)
    assert "finalized: no more submissions" in ships(board, "status", "--team", "alpha").output


def test_finalize_json_carries_everything_to_log(board):
    out = json.loads(ships(board, "finalize", "--yes", "--json").output)
    assert sorted(out["auto_selected"]) == [1, 2, 3, 4]
    final = {r["id"]: r for r in out["finals"]}
    assert set(final) == {1, 2, 3, 4}
    assert final[3]["team"] == "beta" and final[3]["private"]["roc_auc"] < 0.5
    assert [(r["team"], r["rank"]) for r in out["leaderboard"]] == [("alpha", 1), ("dummy", None), ("beta", 2)]


# -- rescore ----------------------------------------------------------------------------------

def test_rescore_without_changes(board):
    result = ships(board, "rescore")
    assert result.exit_code == 0, result.output
    assert "Rescored 4 submissions: 0 changed." in result.output
    assert "No Public rank changed." in result.output and "Private" not in result.output


def _inflated(ws, tmp_path, team="gamma"):
    """A stored submission whose recorded scores are far better than its file deserves."""
    import hashlib

    path = write_predictions(ws, tmp_path / "weak.csv", 0.05, seed=7)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (ws.submissions_dir / f"{digest}.csv").write_bytes(path.read_bytes())
    fake = {"roc_auc": 0.999, "roc_auc_low": 0.998, "roc_auc_high": 1.0}
    with Store.open(ws.store_url) as store:
        store.ensure_team(team)
        return store.add_submission(team=team, file_sha256=digest, filename="weak.csv", message="", public=fake,
                                    private=fake, split_hash=ws.split_hash).id


def test_rescore_reports_rank_changes(board, tmp_path):
    sid = _inflated(board, tmp_path)
    assert json.loads(ships(board, "leaderboard", "--json").output)["rows"][0]["team"] == "gamma"
    result = ships(board, "rescore")
    assert result.exit_code == 0, result.output
    assert f"Rescored 5 submissions: 1 changed ({sid})." in result.output
    assert "Public rank of gamma: 1 -> 3" in result.output
    assert "Public rank of beta: 2 -> 1" in result.output
    with Store.open(board.store_url) as store:
        assert store.submission(sid).public_score < 0.9
    again = json.loads(ships(board, "rescore", "--json").output)
    assert again["rescored"] == [] and again["public_changes"] == [] and again["private_changes"] is None


def test_rescore_after_finalize_compares_private_too(board, tmp_path):
    _inflated(board, tmp_path)
    assert ships(board, "finalize", "--yes").exit_code == 0
    out = json.loads(ships(board, "rescore", "--json").output)
    # gamma's recorded Private 0.999 falls to about 0.55: below alpha, still above beta (inverted Private)
    assert out["private_changes"] == [{"team": "alpha", "before": 2, "after": 1},
                                      {"team": "gamma", "before": 1, "after": 2}]


def test_rescore_reports_missing_files(board):
    with Store.open(board.store_url) as store:
        victim = store.submission(2).file_sha256
    (board.submissions_dir / f"{victim}.csv").unlink()
    result = ships(board, "rescore")
    assert result.exit_code == 1
    assert f"Submission 2 not rescored: {board.submissions_dir / victim}.csv: missing" in result.output
    assert error_of(result) == "Error: 1 of 4 submissions could not be rescored (listed above)"


def test_rescore_refuses_a_changed_solution(board):
    with board.solution_path.open("a") as fh:
        fh.write("\n")
    result = ships(board, "rescore")
    assert result.exit_code == 1
    assert "changed since `ships init`; scoring refused" in error_of(result)
