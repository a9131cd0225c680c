"""Tracking against a real MLflow server started here on 127.0.0.1, read back through its REST API."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from sklearn.base import BaseEstimator, ClassifierMixin

from baselines.registry import make_baseline
from competition.cv import cross_validate_model
from competition.errors import TrackingError
from competition.scoring import METRICS, score_predictions
from competition.tracking import Tracker, load_logged_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` on a free local port with a SQLite store and proxied artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")]
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=3).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still starting
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def data(real_workspace_path):
    from competition.workspace import Workspace

    train = Workspace.open(real_workspace_path).load_train()
    idx = np.sort(np.random.default_rng(1).permutation(len(train.y))[:360])
    return train.X[idx], train.y[idx], train.groups[idx]


def _search(url: str, filter_string: str) -> list[dict]:
    exp = requests.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "ships"}, timeout=10)
    body = {"experiment_ids": [exp.json()["experiment"]["experiment_id"]], "filter": filter_string, "max_results": 500}
    return requests.post(f"{url}/api/2.0/mlflow/runs/search", json=body, timeout=10).json().get("runs", [])


def _flat(run: dict) -> tuple[dict, dict, dict]:
    data = run["data"]
    return ({m["key"]: m["value"] for m in data.get("metrics", [])}, {p["key"]: p["value"] for p in data.get("params", [])},
            {t["key"]: t["value"] for t in data.get("tags", [])})


def _artifacts(url: str, run_id: str, path: str = "") -> set[str]:
    listing = requests.get(f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": path}, timeout=10)
    return {f["path"] for f in listing.json().get("files", [])}


def test_cv_is_a_parent_run_with_a_child_per_fold(server, data):
    X, y, groups = data
    result = cross_validate_model(make_baseline("dummy"), X, y, groups, cv="date", n_splits=3)
    run_id = Tracker(server).check().log_cv(result, model="dummy", split_hash="cafe01", estimator=make_baseline("dummy"))
    parent = _search(server, f"attributes.run_id = '{run_id}'")[0]
    metrics, params, tags = _flat(parent)
    for name in METRICS:
        assert metrics[f"cv_{name}"] == pytest.approx(result.mean[name])
        assert metrics[f"cv_{name}_std"] == pytest.approx(result.std[name])
    assert params["model"] == "dummy" and params["cv"] == "date" and params["n_splits"] == "3"
    assert params["pipeline__model__strategy"] == "prior"
    assert tags["ships.kind"] == "cv" and tags["ships.model"] == "dummy" and tags["ships.split_hash"] == "cafe01"
    children = _search(server, f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert len(children) == 3
    for child in children:
        m, p, t = _flat(child)
        assert set(METRICS) <= set(m) and not any(k.startswith("cv_") for k in m)
        fold = int(p["fold"])
        assert m["roc_auc"] == pytest.approx(result.folds[fold].metrics["roc_auc"])
        assert t["ships.kind"] == "cv"


def test_baseline_run_logs_metrics_model_submission_and_plots(server, data, tmp_path):
    X, y, groups = data
    est = make_baseline("xgboost", n_estimators=20)
    result = cross_validate_model(est, X, y, groups, cv="date", n_splits=3)
    fitted = make_baseline("xgboost", n_estimators=20).fit(X, y, groups=groups)
    public = score_predictions(y[:100], result.y_proba[:100], groups=groups[:100], n_bootstrap=50).to_dict()
    sub = tmp_path / "xgboost.csv"
    sub.write_text("id,ship\na,0.5\n")
    run_id = Tracker(server).log_baseline("xgboost", estimator=fitted, cv=result, public=public, submission=sub,
                                          file_sha256="ab" * 32, team="baseline-xgboost", split_hash="cafe01",
                                          metrics={"fit_time": 1.5}, X_example=X[:2])
    metrics, params, tags = _flat(_search(server, f"attributes.run_id = '{run_id}'")[0])
    assert metrics["public_roc_auc"] == pytest.approx(public["roc_auc"])
    assert metrics["public_roc_auc_low"] == pytest.approx(public["roc_auc_low"])
    assert metrics["cv_roc_auc"] == pytest.approx(result.mean["roc_auc"]) and metrics["fit_time"] == 1.5
    assert not any(k.startswith("private_") for k in metrics)
    assert params["pipeline__model__n_estimators"] == "20" and params["cv"] == "date"
    assert tags == {**tags, "ships.kind": "baseline", "ships.model": "xgboost", "ships.team": "baseline-xgboost",
                    "ships.file_sha256": "ab" * 32, "ships.split_hash": "cafe01"}
    assert _artifacts(server, run_id, "plots") == {"plots/roc_curve.png", "plots/precision_recall_curve.png",
                                                   "plots/confusion_matrix.png"}
    assert _artifacts(server, run_id, "submission") == {"submission/xgboost.csv"}
    assert len(_search(server, f"tags.`mlflow.parentRunId` = '{run_id}'")) == 3
    loaded = load_logged_model(f"runs:/{run_id}/model", server)
    np.testing.assert_array_equal(loaded.predict_proba(X[:20]), fitted.predict_proba(X[:20]))

    import mlflow.xgboost

    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(server)
    try:
        booster = mlflow.xgboost.load_model(f"runs:/{run_id}/xgboost_model")
    finally:
        mlflow.set_tracking_uri(None)
        if env_before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env_before
    assert type(booster).__name__ == "XGBClassifier"


class Curves(ClassifierMixin, BaseEstimator):
    """A fitted stand-in for a Keras baseline: training curves and the weights it started from."""

    def fit(self, X, y, groups=None):
        self.classes_ = np.array([0, 1])
        self.history_ = {"loss": [0.6, 0.4, 0.3], "val_auc": [0.9, 0.95, 0.97]}
        self.weights_source_ = "imagenet (cached file)"
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_training_curves_are_step_metrics_and_weights_a_param(server, data):
    X, y, _ = data
    run_id = Tracker(server).log_baseline("cnn", estimator=Curves().fit(X, y))
    _, params, _ = _flat(_search(server, f"attributes.run_id = '{run_id}'")[0])
    assert params["weights_source"] == "imagenet (cached file)"
    history = requests.get(f"{server}/api/2.0/mlflow/metrics/get-history",
                           params={"run_id": run_id, "metric_key": "history_val_auc"}, timeout=10).json()["metrics"]
    assert [(m["step"], m["value"]) for m in sorted(history, key=lambda m: m["step"])] == [(0, 0.9), (1, 0.95), (2, 0.97)]


def test_submission_then_private_scores_at_finalize(server):
    tracker = Tracker(server)
    public = {"roc_auc": 0.91, "roc_auc_low": 0.88, "roc_auc_high": 0.94, "log_loss": 0.3, "tp": 12, "n": 240}
    run_id = tracker.log_submission("Team 'Q'", "first try", "cd" * 32, "cafe01", public, submission_id=7)
    metrics, params, tags = _flat(_search(server, f"attributes.run_id = '{run_id}'")[0])
    assert metrics == {"public_roc_auc": 0.91, "public_roc_auc_low": 0.88, "public_roc_auc_high": 0.94,
                       "public_log_loss": 0.3}
    assert tags["ships.kind"] == "submission" and tags["ships.team"] == "Team 'Q'" and tags["ships.submission_id"] == "7"
    assert tags["mlflow.note.content"] == "first try" and params["file_sha256"] == "cd" * 32
    done = tracker.log_private([{"team": "Team 'Q'", "file_sha256": "cd" * 32, "private": {"roc_auc": 0.9}},
                                {"team": "late", "file_sha256": "ef" * 32, "private": {"roc_auc": 0.8}}])
    assert done[0] == run_id and len(done) == 2
    metrics, _, _ = _flat(_search(server, f"attributes.run_id = '{run_id}'")[0])
    assert metrics["private_roc_auc"] == 0.9
    new_metrics, _, new_tags = _flat(_search(server, f"attributes.run_id = '{done[1]}'")[0])
    assert new_metrics == {"private_roc_auc": 0.8} and new_tags["ships.team"] == "late"


def test_unreachable_server_fails_fast_with_a_clear_error():
    uri = f"http://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingError) as info:
        Tracker(uri).check()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith(f"MLflow tracking store {uri} is not reachable (no answer from {uri}/health")
    assert "--tracking-uri" in message and "MLFLOW_TRACKING_URI" in message


def test_logging_to_a_dead_server_is_a_tracking_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TrackingError, match="could not log the submission"):
        Tracker(f"http://127.0.0.1:{_free_port()}").log_submission("t", "", "00" * 32, "x", {"roc_auc": 0.5})


def test_a_server_that_is_not_mlflow():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(TrackingError, match="health answered HTTP 404; is it an MLflow tracking server"):
            Tracker(f"http://127.0.0.1:{httpd.server_address[1]}").check()
    finally:
        httpd.shutdown()


def test_workspace_store_keeps_artifacts_in_the_workspace(workspace):
    tracker = Tracker(workspace.tracking_uri).check()
    run_id = tracker.log_submission("t", "", "00" * 32, workspace.split_hash, {"roc_auc": 0.5})
    assert (workspace.root / "mlflow.db").is_file()
    assert tracker.artifact_location == (workspace.root / "mlruns").resolve().as_uri()
    from mlflow import MlflowClient

    assert MlflowClient(workspace.tracking_uri).get_run(run_id).info.artifact_uri.startswith(tracker.artifact_location)


def test_logging_a_submission_stays_light(tmp_path):
    code = ("import sys\nfrom competition.tracking import Tracker\n"
            f"Tracker('sqlite:///{tmp_path}/m.db').log_submission('t', 'm', '00' * 32, 'x', {{'roc_auc': 0.5}})\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'xgboost', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_logging_a_model_leaves_no_tracking_uri_behind(tmp_path, monkeypatch, data):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    X, y, groups = data
    Tracker(f"sqlite:///{tmp_path}/m.db").log_baseline("dummy", estimator=make_baseline("dummy").fit(X, y))
    assert "MLFLOW_TRACKING_URI" not in os.environ  # else the next command would log to this store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://chosen.example:5000")
    Tracker(f"sqlite:///{tmp_path}/m.db").log_baseline("dummy", estimator=make_baseline("dummy").fit(X, y))
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://chosen.example:5000"
