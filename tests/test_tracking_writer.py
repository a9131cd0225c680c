"""One tracking writer per workspace: the queue of pending runs, the writer lock, the store set-up, failures."""

from __future__ import annotations

import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from competition.errors import TrackingError
from competition.tracking import Tracker
from competition.tracking import writer as writer_module
from competition.tracking.lock import lock_path_for, release, try_lock
from competition.tracking.pending import PendingRuns
from competition.tracking.drain import drain_pending
from competition.tracking.writer import queue_run, start_writer

N_UPLOADS = 16


def _run(submission_id: int, team: str = "alpha") -> dict:
    return {"team": team, "message": "m", "file_sha256": "ab" * 32, "split_hash": "cafe01",
            "public": {"roc_auc": 0.7, "roc_auc_low": 0.6, "roc_auc_high": 0.8}, "submission_id": submission_id,
            "kind": "team"}


def _submission_runs(uri: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("ships")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string="tags.`ships.kind` = 'submission'",
                              max_results=1000)


def _wait_until_drained(queue: PendingRuns, timeout: float = 300) -> None:
    """Until no run is pending and no writer holds the lock (the detached one has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not queue.paths():
            fd = try_lock(queue.lock_path)
            if fd is not None:
                release(fd)
                return
        time.sleep(0.5)
    log = queue.log_path.read_text() if queue.log_path.exists() else ""
    pytest.fail(f"{len(queue.paths())} runs still pending after {timeout} s; tracking.log:\n{log[-3000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mlflow_server(port: int, root: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art")]
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=3).status_code == 200:
                return proc
        except requests.RequestException:  # not listening yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)


def test_sixteen_simultaneous_first_uploads_are_sixteen_runs_in_a_healthy_store(workspace):
    from leaderboard.submit import accept_submission

    sample = (workspace.public_dir / "sample_submission.csv").read_bytes()
    barrier, results, errors = threading.Barrier(N_UPLOADS), [], []

    def upload(i: int) -> None:
        barrier.wait()
        try:
            results.append(accept_submission(workspace, sample, team=f"team-{i}", filename="s.csv"))
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            errors.append(repr(exc))

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(N_UPLOADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == [] and len(results) == N_UPLOADS
    queue = PendingRuns(workspace.root)
    _wait_until_drained(queue)
    runs = _submission_runs(workspace.tracking_uri)
    assert sorted(int(r.data.tags["ships.submission_id"]) for r in runs) == sorted(r.record.id for r in results)
    assert {r.data.tags["ships.team"] for r in runs} == {f"team-{i}" for i in range(N_UPLOADS)}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert not (workspace.root / "tracking.log").exists() or "not logged" not in queue.log_path.read_text()
    # The store is healthy: a later check and a `ships cv`-style run work.
    from competition.cv import cross_validate_model
    from baselines.registry import make_baseline

    train = workspace.load_train()
    idx = np.sort(np.random.default_rng(0).permutation(len(train.y))[:300])
    cv = cross_validate_model(make_baseline("dummy"), train.X[idx], train.y[idx], train.groups[idx], n_splits=3)
    run_id = Tracker(workspace.tracking_uri).check().log_cv(cv, model="dummy", split_hash=workspace.split_hash)
    assert run_id and len(_submission_runs(workspace.tracking_uri)) == N_UPLOADS


SET_UP = ("import mlflow\nprint('imported', flush=True)\nfrom competition.tracking import Tracker\n"
          "Tracker({uri!r}).check()\nprint('checked')")


def test_the_set_up_of_a_fresh_store_waits_for_the_writer_lock(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    fd = try_lock(lock_path_for(uri), role="test")
    assert lock_path_for(uri) == tmp_path / "tracking" / "writer.lock"
    try:
        proc = subprocess.Popen([sys.executable, "-c", SET_UP.format(uri=uri)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "imported"
        time.sleep(3)  # ample time to set the store up, were it not waiting
        assert proc.poll() is None  # waiting for the lock ...
        assert not (tmp_path / "mlflow.db").exists()  # ... and has not touched the database
    finally:
        release(fd)
    assert proc.wait(timeout=180) == 0 and "checked" in proc.stdout.read()
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        [(version,)] = con.execute("SELECT version_num FROM alembic_version").fetchall()
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert version == _get_latest_schema_revision()
    # Once the schema is in place, a held lock (a running `ships serve`) no longer makes anyone wait.
    fd = try_lock(lock_path_for(uri), role="test")
    try:
        out = subprocess.run([sys.executable, "-c", SET_UP.format(uri=uri)], capture_output=True, text=True,
                             timeout=120)
    finally:
        release(fd)
    assert out.returncode == 0 and "checked" in out.stdout, out.stderr


def test_a_store_down_at_first_keeps_the_runs_pending_and_logs_them_once_it_answers(workspace, tmp_path,
                                                                                     monkeypatch):
    from fastapi.testclient import TestClient

    from leaderboard.store import Store
    from leaderboard.web import make_app

    started = []
    popen = subprocess.Popen
    monkeypatch.setattr(writer_module.subprocess, "Popen", lambda *a, **k: started.append(a) or popen(*a, **k))
    monkeypatch.setattr(writer_module, "TrackingWriter",
                        functools.partial(writer_module.TrackingWriter, poll_s=0.2, retry_s=0.5, max_retry_s=2))
    with Store.open(workspace.store_url) as store:
        tokens = {team: store.add_team(team) for team in ("team-a", "team-b")}
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    sample = (workspace.public_dir / "sample_submission.csv").read_bytes()
    queue = PendingRuns(workspace.root)
    with TestClient(make_app(workspace, tracking_uri=uri)) as client:
        for team, token in tokens.items():
            response = client.post("/api/submissions", files={"file": ("s.csv", sample)},
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + 60
        while "were scored and stored but not logged" not in _text(queue.log_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        line = _text(queue.log_path).splitlines()[-1]
        assert "2 submissions (submission 1 of 'team-a', submission 2 of 'team-b') were scored and stored but " \
               f"not logged to MLflow yet: MLflow tracking store {uri} is not reachable" in line
        assert f"they stay in {queue.pending_dir}" in line
        assert len(queue.paths()) == 2 and not (queue.folder / "failed").exists()
        server = _start_mlflow_server(port, tmp_path)
        try:
            deadline = time.monotonic() + 120
            while queue.paths() and time.monotonic() < deadline:
                time.sleep(0.3)
            runs = _submission_runs(uri)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert queue.paths() == []
    assert sorted(r.data.tags["ships.team"] for r in runs) == ["team-a", "team-b"]
    # The server's own writer logged them: uploads started no process.
    assert [a for a in started if "competition.tracking.writer" in a[0]] == []
    fd = try_lock(queue.lock_path)  # released at shutdown
    assert fd is not None
    release(fd)


def test_a_run_the_store_refuses_is_retried_then_kept_in_failed(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    queue = PendingRuns(tmp_path)
    queue.add(uri, _run(7))

    def refuse(self, **run):
        raise TrackingError(f"MLflow tracking store {uri}: could not log the submission (disk I/O error)")

    monkeypatch.setattr(Tracker, "log_submission", refuse)
    first = drain_pending(queue, max_attempts=2)
    assert (first.failed, first.logged, first.given_up) == (1, 0, 0)
    [path] = queue.paths()
    assert queue.read(path)["attempts"] == 1
    assert ("submission 7 of 'alpha' was scored and stored but not logged to MLflow (attempt 1 of 2): MLflow "
            f"tracking store {uri}: could not log the submission (disk I/O error); it stays in {queue.pending_dir} "
            "and is retried") in _text(queue.log_path)
    second = drain_pending(queue, max_attempts=2)
    assert second.given_up == 1 and queue.paths() == []
    [kept] = queue.failed_dir.iterdir()
    assert "after 2 attempts" in _text(queue.log_path) and f"the run is kept in {kept}" in _text(queue.log_path)
    monkeypatch.undo()
    os.replace(kept, queue.pending_dir / kept.name)  # what the log line says to do
    assert drain_pending(queue).logged == 1 and queue.paths() == []
    [run] = _submission_runs(uri)
    assert run.data.tags["ships.submission_id"] == "7"


def test_a_store_that_stops_answering_mid_pass_counts_no_attempt(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    queue = PendingRuns(tmp_path)
    queue.add(uri, _run(1))
    queue.add(uri, _run(2))
    checks, check = [], Tracker.check

    def check_then_fail(self):
        checks.append(self)
        if len(checks) > 1:
            raise TrackingError(f"MLflow tracking store {uri} is not reachable (gone)")
        return check(self)

    def refuse(self, **run):
        raise TrackingError(f"MLflow tracking store {uri}: could not log the submission (gone)")

    monkeypatch.setattr(Tracker, "check", check_then_fail)
    monkeypatch.setattr(Tracker, "log_submission", refuse)
    report = drain_pending(queue)
    assert (report.waiting, report.failed, report.logged) == (2, 0, 0)
    assert [queue.read(p)["attempts"] for p in queue.paths()] == [0, 0]
    assert "2 submissions (submission 1 of 'alpha', submission 2 of 'alpha') were scored and stored but not " \
           f"logged to MLflow yet: MLflow tracking store {uri} is not reachable (gone)" in _text(queue.log_path)


def test_a_run_logged_already_is_not_logged_twice(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    Tracker(uri).log_submission(**_run(3))
    queue = PendingRuns(tmp_path)
    queue.add(uri, _run(3))  # as left by a writer stopped after logging, before deleting the file
    queue.add(uri, _run(4))
    assert drain_pending(queue).logged == 2 and queue.paths() == []
    assert sorted(r.data.tags["ships.submission_id"] for r in _submission_runs(uri)) == ["3", "4"]


def test_the_queue_is_bounded_and_drops_the_oldest_with_a_line(tmp_path):
    queue = PendingRuns(tmp_path, max_pending=3)
    paths = [queue.add("sqlite:///nowhere.db", _run(i)) for i in range(1, 6)]
    assert queue.paths() == paths[2:]
    lines = _text(queue.log_path).splitlines()
    assert len(lines) == 2 and "submission 1 of 'alpha'" in lines[0] and "submission 2 of 'alpha'" in lines[1]
    assert f"its MLflow run was dropped unlogged: {queue.pending_dir} holds at most 3 pending runs" in lines[0]


def test_one_writer_at_a_time_and_none_started_while_one_is_at_work(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    queue = PendingRuns(tmp_path)
    fd = try_lock(queue.lock_path, role="test")
    try:
        assert queue_run(tmp_path, uri, _run(1)) is not None
        assert start_writer(tmp_path) is None  # the lock is held: nothing started
    finally:
        release(fd)
    child = start_writer(tmp_path)
    assert child is not None and start_writer(tmp_path) is None  # the child holds the lock from birth
    assert child.wait(timeout=240) == 0, _text(queue.log_path)
    assert queue.paths() == [] and len(_submission_runs(uri)) == 1


def test_a_corrupt_pending_file_is_set_aside_with_a_line(tmp_path):
    queue = PendingRuns(tmp_path)
    queue.pending_dir.mkdir(parents=True)
    (queue.pending_dir / "0001-1-ab.json").write_text('{"uri": "sqlite:///x.db", "ru')
    assert drain_pending(queue).given_up == 1
    assert queue.paths() == [] and (queue.failed_dir / "0001-1-ab.json").is_file()
    assert "0001-1-ab.json: not a pending run" in _text(queue.log_path)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
