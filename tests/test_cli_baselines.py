"""``ships cv``, ``ships baseline list|run`` and ``ships ui mlflow`` through typer's CliRunner."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
import typer
from typer.testing import CliRunner


runner = CliRunner()
NAMES = ["dummy", "logreg", "knn", "xgboost", "cnn", "vgg16"]


from ships.cli import app as root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(ws, kind: str):
    from mlflow import MlflowClient

    client = MlflowClient(ws.tracking_uri)
    exp = client.get_experiment_by_name("ships")
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`ships.kind` = '{kind}'")


def test_baseline_list_names_every_baseline():
    result = runner.invoke(root, ["baseline", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert f"baselines.{name}" in result.output
    listed = json.loads(runner.invoke(root, ["baseline", "list", "--json"]).stdout)
    assert [b["name"] for b in listed] == NAMES and all(b["description"] for b in listed)


def test_cv_json_and_its_mlflow_runs(workspace):
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root), "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    n_train = len((workspace.public_dir / "train.csv").read_text().splitlines()) - 1
    assert out["model"] == "dummy" and out["n_chips"] == n_train and 3100 < n_train < 3300
    (res,) = out["results"]
    assert res["cv"] == "date" and res["n_splits"] == 3 and len(res["folds"]) == 3
    assert res["mean"]["roc_auc"] == 0.5 and res["splitter"] == "StratifiedGroupKFold by acquisition day"
    assert res["official_folds"] is False
    assert res["fresh_folds_reason"] == "3 folds were asked for; the workspace has 5 official folds"
    parents = [r for r in _runs(workspace, "cv") if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [res["mlflow_run_id"]]
    assert parents[0].data.metrics["cv_roc_auc"] == 0.5 and parents[0].data.tags["ships.split_hash"] == workspace.split_hash


def test_cv_twice_shows_the_splits_side_by_side(workspace):
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root), "--cv", "random", "--cv", "date",
                                  "--folds", "3"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "KFold (leaky)" in result.output and "StratifiedGroupKFold by acquisition day" in result.output
    assert "random − date" in result.output and "date (3 folds)" in result.output
    assert "0.5000 ± 0.0000" in result.output
    text = " ".join(result.output.split())  # titles wrap to the table's width
    assert "3 fresh folds, NOT the official ones: a leaky random split (cv='random') was asked for" in text
    assert "3 fresh folds, NOT the official ones: 3 folds were asked for; the workspace has 5 official" in text


def test_official_folds_by_default(workspace):
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "PredefinedSplit (official folds by acquisition day), 5 folds" in " ".join(result.output.split())
    assert "fold 4" in result.output and "mean ± std" in result.output and "NOT the official" not in result.output


@pytest.fixture(scope="module")
def three_fold_workspace(chips, tmp_path_factory):
    """`ships init --folds 3` on 800 of the real chips: a workspace whose official folds are 3."""
    from competition.data import Chips, write_folder

    subset = np.arange(0, 4000, 5)
    folder = tmp_path_factory.mktemp("three") / "chips"
    write_folder(Chips(*(getattr(chips, f)[subset] for f in ("X", "y", "scene_id", "lon", "lat", "name"))), folder)
    path = folder.parent / "ws"
    result = runner.invoke(root, ["init", "-w", str(path), "--folds", "3", "--data", str(folder)])
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.parametrize("args", [[], ["--folds", "3"], ["--cv", "date"], ["--cv", "date", "--folds", "3"]])
def test_cv_uses_the_official_folds_of_the_workspace(three_fold_workspace, args):
    """`ships init --folds 3`: `ships cv` runs those 3 folds and says they are the official ones."""
    from competition.workspace import Workspace

    result = runner.invoke(root, ["cv", "dummy", "-w", str(three_fold_workspace), *args, "--json"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads(result.stdout)["results"]
    assert res["official_folds"] is True and res["fresh_folds_reason"] is None
    assert res["n_splits"] == 3 and res["splitter"] == "PredefinedSplit (official folds by acquisition day)"
    train = Workspace.open(three_fold_workspace).load_train()
    assert [f["n_test"] for f in res["folds"]] == [int((train.fold == k).sum()) for k in range(3)]


@pytest.mark.parametrize("args, reason", [
    (["--folds", "4"], "4 folds were asked for; the workspace has 3 official folds"),
    (["--cv", "scene"], "a split by scene id (cv='scene') was asked for; the official folds group by acquisition day"),
])
def test_cv_with_other_folds_says_they_are_not_official(three_fold_workspace, args, reason):
    result = runner.invoke(root, ["cv", "dummy", "-w", str(three_fold_workspace), *args, "--json"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads(result.stdout)["results"]
    assert res["official_folds"] is False and res["fresh_folds_reason"] == reason
    assert res["splitter"].startswith("StratifiedGroupKFold")
    table = runner.invoke(root, ["cv", "dummy", "-w", str(three_fold_workspace), *args], terminal_width=250)
    assert table.exit_code == 0, table.output
    assert f"fresh folds, NOT the official ones: {reason}" in " ".join(table.output.split())


def test_baseline_run_uses_the_official_folds(three_fold_workspace):
    official = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(three_fold_workspace), "--json"])
    assert official.exit_code == 0, official.output
    cv = json.loads(official.stdout)["cv"]
    assert cv["official_folds"] is True and cv["n_splits"] == 3
    fresh = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(three_fold_workspace), "--folds", "4"],
                          terminal_width=250)
    assert fresh.exit_code == 0, fresh.output
    assert "4 fresh folds, NOT the official ones: 4 folds were asked for; the workspace has 3 official folds" in \
        " ".join(fresh.output.split())


@pytest.mark.parametrize("args, message", [
    (["cv", "resnet"], "Error: unknown model 'resnet'; expected one of: dummy, logreg, knn, xgboost, cnn, vgg16"),
    (["baseline", "run", "resnet"], "Error: unknown model 'resnet'; expected one of: dummy, logreg"),
    (["cv", "dummy", "--folds", "1"], "Error: --folds=1 is invalid; expected an int >= 2"),
    (["cv", "dummy", "--folds", "500"], "Error: --folds=500 is more than the 128 groups; expected --folds <= 128"),
    (["cv", "dummy", "--cv", "scene", "--folds", "900"], "Error: --folds=900 is more than the"),
    (["baseline", "run", "dummy", "--folds", "1"], "Error: --folds=1 is invalid"),
    (["cv", "dummy", "-p", "bogus=1"], "Error: baseline 'dummy' takes no parameter bogus; expected some of: strategy"),
    (["cv", "knn", "--weights", "none"], "Error: --weights applies to baselines that start from pretrained weights"),
    (["baseline", "run", "cnn", "-p", "bogus=1"], "takes no parameter bogus"),
    (["cv", "dummy", "-p", "no-equals"], "Error: --param 'no-equals' is invalid; expected KEY=VALUE"),
])
def test_bad_input_exits_1_with_the_reason(workspace, args, message, monkeypatch):
    import competition.cv

    trained = []  # every cross-validation the command starts (the CLI imports the function when it runs)

    def train(estimator, *args, **kwargs):
        trained.append(estimator)
        raise AssertionError("training started although the input was invalid")

    monkeypatch.setattr(competition.cv, "cross_validate_model", train)
    result = runner.invoke(root, [*args, "-w", str(workspace.root)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # an input error, not a crash
    assert message in result.output
    assert trained == []  # refused before anything was trained


def test_an_invalid_parameter_value_is_an_input_error(workspace):
    result = runner.invoke(root, ["cv", "knn", "-w", str(workspace.root), "-p", "weights=none"])
    assert result.exit_code == 1, result.output
    assert "Error: invalid baseline parameter: The 'weights' parameter of KNeighborsClassifier must be" in result.output
    assert "Got 'none' instead." in result.output


def test_parameters_reach_the_baseline(workspace):
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root), "--folds", "2", "-p", "strategy=uniform",
                                  "--json"])
    assert result.exit_code == 0, result.output
    (parent,) = [r for r in _runs(workspace, "cv") if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.params["pipeline__model__strategy"] == "uniform"
    assert json.loads(result.stdout)["results"][0]["mean"]["log_loss"] == pytest.approx(np.log(2))


def test_workspace_without_train_data(workspace):
    (workspace.public_dir / "train.csv").unlink()
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root)])
    assert result.exit_code == 1 and "missing public/train.csv" in result.output


def test_missing_workspace(tmp_path):
    result = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no such workspace; create one with `ships init" in result.output


@pytest.mark.parametrize("via_env", [False, True])
def test_unreachable_tracking_uri_fails_before_training(workspace, via_env):
    uri = f"http://127.0.0.1:{_free_port()}"
    args = ["baseline", "run", "dummy", "-w", str(workspace.root), "--submit"]
    result = runner.invoke(root, args, env={"MLFLOW_TRACKING_URI": uri}) if via_env else \
        runner.invoke(root, [*args, "--tracking-uri", uri])
    assert result.exit_code == 1, result.output
    assert f"Error: MLflow tracking store {uri} is not reachable" in result.output
    assert not (workspace.root / "baseline_submissions").exists()
    from leaderboard.submit import open_store

    assert open_store(workspace).submissions() == []


def test_baseline_run_submits_saves_and_logs(workspace, tmp_path):
    model_path = tmp_path / "models" / "dummy.joblib"
    result = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(workspace.root), "--submit", "--save",
                                  str(model_path), "--folds", "3", "--n-jobs", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    sub = workspace.root / "baseline_submissions" / "dummy.csv"
    assert out["submission"] == str(sub) and sub.read_text().startswith("id,ship\n")
    assert len(sub.read_text().splitlines()) == 1 + len(workspace.test_ids())
    assert out["public"]["roc_auc"] == 0.5 and "private" not in json.dumps(out)
    from leaderboard.submit import open_store

    (record,) = open_store(workspace).submissions()
    assert record.team == "baseline-dummy" and record.kind == "baseline" and record.id == out["submission_id"]
    from baselines.persist import load_model

    test = workspace.load_test()
    proba = load_model(model_path).predict_proba(test.X[:5])
    assert proba.shape == (5, 2)
    (run,) = [r for r in _runs(workspace, "baseline") if "mlflow.parentRunId" not in r.data.tags]
    assert run.info.run_id == out["mlflow_run_id"]
    assert run.data.metrics["public_roc_auc"] == 0.5 and run.data.metrics["cv_roc_auc"] == 0.5
    assert run.data.tags["ships.team"] == "baseline-dummy" and run.data.tags["ships.file_sha256"] == out["file_sha256"]


def test_baseline_run_table_output(workspace):
    result = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(workspace.root), "--folds", "2"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Not submitted; re-run with --submit" in result.output and "MLflow run" in result.output


def test_every_option_has_help():
    command = typer.main.get_command(root)
    leaves = [command.commands["cv"], *command.commands["baseline"].commands.values(),
              *command.commands["ui"].commands.values()]
    for cmd in leaves:
        assert (cmd.help or "").strip()
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{cmd.name} {param.opts[0]} has no help"


def test_ui_mlflow_serves_the_workspace_store(workspace, tmp_path):
    from competition.tracking import Tracker

    run_id = Tracker(workspace.tracking_uri).log_submission("ui-team", "", "aa" * 32, workspace.split_hash,
                                                            {"roc_auc": 0.7})
    port = _free_port()
    script = ("import sys; sys.argv = ['ships', 'ui', 'mlflow', '-w', sys.argv[1], '--port', sys.argv[2]]\n"
              "from ships.cli import main\nmain()")
    proc = subprocess.Popen([sys.executable, "-c", script, str(workspace.root), str(port)], cwd=_repo(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=3).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
            time.sleep(0.3)
        run = requests.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=10).json()["run"]
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"public_roc_auc": 0.7}
        # SIGTERM to `ships ui mlflow` alone stops the server and every worker it started: the port is free.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        out = proc.stdout.read().decode()
        assert f"http://127.0.0.1:{port}/#/experiments/" in out
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_ui_mlflow_port_in_use(workspace):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(root, ["ui", "mlflow", "-w", str(workspace.root), "--port", str(port)])
    assert result.exit_code == 1 and f"Error: --port {port} is in use on 127.0.0.1" in result.output


def _repo() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_submission_file_keeps_the_ranking(workspace):
    """Probabilities are written with 8 significant digits, so tiny ones keep their order."""
    from baselines.workflow import write_submission

    class Tiny:
        def predict_proba(self, X):
            p = np.linspace(1e-9, 1e-7, len(X))
            return np.c_[1 - p, p]

    path = write_submission(workspace, "tiny", Tiny())
    values = [float(line.split(",")[1]) for line in path.read_text().splitlines()[1:]]
    assert len(set(values)) == len(values)


def test_no_track_logs_nothing(workspace):
    store = workspace.root / "mlflow.db"
    if store.exists():
        store.unlink()
    result = runner.invoke(root, ["cv", "dummy", "-w", str(workspace.root), "--no-track", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tracking_uri"] is None and not store.exists()
    result = runner.invoke(root, ["baseline", "run", "dummy", "-w", str(workspace.root), "--no-track"])
    assert result.exit_code == 0, result.output
    assert "Not logged to MLflow (--no-track)" in result.output and not store.exists()
