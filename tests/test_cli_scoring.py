"""`ships validate` and `ships score` end to end on the real workspace."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ships.cli import app

runner = CliRunner()


def _store_rows(ws):
    from leaderboard.store import Store

    return Store.open(ws.store_url).submissions()


def _write_split_submission(ws, path):
    """Perfect on the Public part, inverted on the Private part (the organiser's test file)."""
    sol = pd.read_csv(ws.solution_path, dtype={"id": str})
    ship = np.where(sol["Usage"] == "Public", sol["ship"], 1 - sol["ship"]).astype(float)
    pd.DataFrame({"id": sol["id"], "ship": ship}).sample(frac=1, random_state=0).to_csv(path, index=False)


def test_validate_sample_submission(workspace):
    sample = workspace.public_dir / "sample_submission.csv"
    result = runner.invoke(app, ["validate", str(sample), "--workspace", str(workspace.root)])
    assert result.exit_code == 0, result.output
    n_test = len(pd.read_csv(workspace.public_dir / "test.csv"))
    assert 700 < n_test < 900 and f"valid, {n_test} rows" in result.output
    assert not list(workspace.submissions_dir.iterdir())


def test_score_records_and_prints_public_only(workspace, tmp_path):
    path = tmp_path / "sub.csv"
    _write_split_submission(workspace, path)
    # --no-track: no background MLflow process (tracking has its own tests below)
    result = runner.invoke(app, ["score", str(path), "-w", str(workspace.root), "--team", "alpha", "--create", "--json",
                                 "--no-track"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"id", "team", "file_sha256", "public", "best", "rank", "quota", "submitted_at", "filename",
                        "warnings"}
    assert set(out["public"]) == {"roc_auc", "roc_auc_low", "roc_auc_high"}  # the rounded primary score only
    assert out["public"]["roc_auc"] == 1.0 and out["best"] is True and out["rank"] == 1
    assert out["quota"]["used"] == 1 and out["quota"]["limit"] == workspace.config.daily_quota
    [record] = _store_rows(workspace)
    assert record.team == "alpha"
    stored = workspace.submissions_dir / f"{out['file_sha256']}.csv"
    assert stored.read_bytes() == path.read_bytes()
    table = runner.invoke(app, ["score", str(path), "-w", str(workspace.root), "--team", "alpha", "--create", "--no-track"])
    assert table.exit_code == 0, table.output
    assert "roc_auc" in table.output and "1.0000" in table.output
    assert "0.0000" not in table.output.split("roc_auc")[1].split("\n")[0]  # the Private AUC (0.0) never shows


def test_score_sample_submission_is_chance(workspace):
    sample = workspace.public_dir / "sample_submission.csv"
    result = runner.invoke(app, ["score", str(sample), "-w", str(workspace.root), "--json", "--no-track"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["public"]["roc_auc"] == 0.5


def _bad_files(ws, tmp_path):
    sample = pd.read_csv(ws.public_dir / "sample_submission.csv", dtype={"id": str})
    good = sample.to_csv(index=False)
    first = sample["id"].iloc[0]
    first_row = good.splitlines()[1]  # 'id,prior': the prior depends on the split
    return {
        "wrong header": (good.replace("id,ship", "id,prob", 1), "missing column 'ship'"),
        "missing id": ("\n".join(good.splitlines()[:-1]) + "\n", "1 missing"),
        "duplicate id": (good + f"{first},0.5\n", f"duplicate id '{first}'"),
        "unknown id": (good + "zzzzzzzzzzzz,0.5\n", "'zzzzzzzzzzzz'"),
        "value > 1": (good.replace(first_row, f"{first},1.7", 1), "got 1.7"),
        "nan": (good.replace(first_row, f"{first},nan", 1), "line 2"),
        "empty": ("", "empty"),
        "latin-1": (good.encode() + "caf\xe9\n".encode("latin-1"), "UTF-8"),
        "binary": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG"),
    }


@pytest.mark.parametrize("case", ["wrong header", "missing id", "duplicate id", "unknown id", "value > 1",
                                  "nan", "empty", "latin-1", "binary"])
@pytest.mark.parametrize("command", ["validate", "score"])
def test_bad_submission_exits_1_and_records_nothing(workspace, tmp_path, case, command):
    content, message = _bad_files(workspace, tmp_path)[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = runner.invoke(app, [command, str(path), "-w", str(workspace.root)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an input error, not a crash
    assert result.output.startswith("Error: ") and message in result.output
    assert not list(workspace.submissions_dir.iterdir())
    assert _store_rows(workspace) == []


def test_directory_and_missing_workspace(workspace, tmp_path):
    result = runner.invoke(app, ["score", str(tmp_path), "-w", str(workspace.root)])
    assert result.exit_code == 1 and "directory" in result.output
    sample = workspace.public_dir / "sample_submission.csv"
    result = runner.invoke(app, ["score", str(sample), "-w", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such workspace" in result.output


def test_edited_solution_refuses_to_score(workspace):
    path = workspace.solution_path
    path.write_text(path.read_text().replace(",0,Private", ",1,Private", 1))
    sample = workspace.public_dir / "sample_submission.csv"
    result = runner.invoke(app, ["score", str(sample), "-w", str(workspace.root)])
    assert result.exit_code == 1 and "changed since `ships init`; scoring refused" in result.output
    assert not list(workspace.submissions_dir.iterdir())


def test_bad_flag_exits_2(workspace):
    result = runner.invoke(app, ["score", "x.csv", "--no-such-flag"])
    assert result.exit_code == 2


LIGHT = """
import sys
from typer.testing import CliRunner
from ships.cli import app
r = CliRunner().invoke(app, {args!r})
assert r.exit_code == 0, r.output
heavy = sorted(m for m in ("tensorflow", "keras", "xgboost", "mlflow", "torch", "jax") if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.parametrize("command", ["validate", "score"])
def test_scoring_path_stays_light(workspace, command):
    sample = str(workspace.public_dir / "sample_submission.csv")
    code = LIGHT.format(args=[command, sample, "-w", str(workspace.root)])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_the_tracking_writer_logs_the_scored_submission(workspace, tmp_path):
    import mlflow

    from competition.tracking.lock import release, try_lock
    from competition.tracking.pending import PendingRuns

    path = tmp_path / "sub.csv"
    _write_split_submission(workspace, path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = runner.invoke(app, ["score", str(path), "-w", str(workspace.root), "--team", "alpha", "--create",
                                 "--message", "first try", "--tracking-uri", uri, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    queue, deadline = PendingRuns(workspace.root), time.time() + 240
    while (queue.paths() or (fd := try_lock(queue.lock_path)) is None) and time.time() < deadline:
        time.sleep(0.5)
    assert not queue.paths(), (workspace.root / "tracking.log").read_text()
    release(fd)  # the writer logged the run and exited
    client = mlflow.MlflowClient(tracking_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "ships"]
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.data.tags["ships.team"] == "alpha" and logged.data.tags["ships.kind"] == "submission"
    assert logged.data.tags["ships.file_sha256"] == out["file_sha256"]
    assert logged.data.tags["ships.submission_id"] == str(out["id"])
    assert logged.data.metrics["public_roc_auc"] == 1.0
    assert not any(k.startswith("private") for k in logged.data.metrics)  # Private only at finalize
    # Before finalize the run holds what the team is shown: the primary metric and its interval, rounded.
    assert set(logged.data.metrics) == {"public_roc_auc", "public_roc_auc_low", "public_roc_auc_high"}


def test_unreachable_tracking_store_is_a_warning_in_the_log_never_a_lost_score(workspace, tmp_path):
    sample = workspace.public_dir / "sample_submission.csv"
    result = runner.invoke(app, ["score", str(sample), "-w", str(workspace.root),
                                 "--tracking-uri", "http://127.0.0.1:9/"])
    assert result.exit_code == 0, result.output
    assert len(_store_rows(workspace)) == 1
    log = workspace.root / "tracking.log"
    deadline = time.time() + 240
    while time.time() < deadline and "not logged to MLflow" not in (log.read_text() if log.exists() else ""):
        time.sleep(1)
    assert "scored and stored but not logged to MLflow" in log.read_text()


def test_finalize_logs_private_metrics_to_mlflow(workspace, tmp_path):
    import mlflow

    path = tmp_path / "sub.csv"
    _write_split_submission(workspace, path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    scored = runner.invoke(app, ["score", str(path), "-w", str(workspace.root), "--team", "alpha", "--create", "--no-track"])
    assert scored.exit_code == 0, scored.output
    result = runner.invoke(app, ["finalize", "-w", str(workspace.root), "--yes", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "ships"]
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.data.tags["ships.team"] == "alpha"
    assert logged.data.metrics["private_roc_auc"] == 0.0  # the Private half was inverted


def test_web_uploads_are_logged_like_ships_score(workspace, tmp_path):
    from fastapi.testclient import TestClient

    from leaderboard.store import Store
    from leaderboard.web import make_app

    token = Store.open(workspace.store_url).add_team("web-team")
    client = TestClient(make_app(workspace, tracking_uri="http://127.0.0.1:9/"))
    sample = (workspace.public_dir / "sample_submission.csv").read_bytes()
    response = client.post("/api/submissions", files={"file": ("s.csv", sample)},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    log = workspace.root / "tracking.log"
    deadline = time.time() + 240
    while time.time() < deadline and "not logged to MLflow" not in (log.read_text() if log.exists() else ""):
        time.sleep(1)
    assert "'web-team' was scored and stored but not logged to MLflow" in log.read_text()


def test_example_submissions_behave_as_documented(real_workspace_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "submissions"
    ok = runner.invoke(app, ["validate", str(examples / "prior.csv"), "-w", str(real_workspace_path)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["validate", str(examples / "broken.csv"), "-w", str(real_workspace_path)])
    assert bad.exit_code == 1
    for problem in ("has no row", "duplicate id", "is blank", "must be a number", "got 1.7"):
        assert problem in bad.output


def test_an_unknown_team_is_refused_unless_created(workspace):
    sample = str(workspace.public_dir / "sample_submission.csv")
    base = ["score", sample, "-w", str(workspace.root), "--no-track"]
    typo = runner.invoke(app, [*base, "--team", "Harbur Watch"])
    assert typo.exit_code == 1 and isinstance(typo.exception, SystemExit)
    assert "unknown team 'Harbur Watch'" in typo.output and "--create" in typo.output
    assert _store_rows(workspace) == []  # nothing scored, stored or recorded
    assert runner.invoke(app, [*base, "--team", "Harbour Watch", "--create"]).exit_code == 0
    assert runner.invoke(app, [*base, "--team", "harbour watch"]).exit_code == 0  # now it exists
    assert [r.team for r in _store_rows(workspace)] == ["Harbour Watch", "Harbour Watch"]


def test_the_sample_submission_and_a_resubmission_get_a_warning(workspace):
    sample = str(workspace.public_dir / "sample_submission.csv")
    first = runner.invoke(app, ["score", sample, "-w", str(workspace.root), "--no-track", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["warnings"] == [
        "this is the sample submission itself (the prior for every chip): it scores like chance"]
    again = runner.invoke(app, ["score", sample, "-w", str(workspace.root), "--no-track"])
    assert again.exit_code == 0, again.output
    assert "Warning: this file is identical to your submission 1; it was counted again." in again.output
