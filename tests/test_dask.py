"""Cross-validation on a real Dask cluster: a ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

The cluster (two worker processes of one thread each) lives for this module only: the
fixture's finalizer stops it, the workers die by themselves once the scheduler is gone
(``--death-timeout``), and the scheduler by itself when idle (``--idle-timeout``), so nothing
outlives the tests even when they are killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ships.cli import app as root

pytest.importorskip("distributed")

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
N_WORKERS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=log.parent, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not stopped within 20 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory, request) -> str:
    """The address of a running scheduler with two one-thread worker processes."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    on_localhost = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]  # its HTTP routes stay on 127.0.0.1 too
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], *on_localhost,
                     "--idle-timeout", "900"], folder / "scheduler.log")]
    request.addfinalizer(lambda: [_stop(p) for p in reversed(procs)])
    procs.append(_start(["worker", address, "--nworkers", str(N_WORKERS), "--nthreads", "1", *on_localhost,
                         "--host", "127.0.0.1", "--death-timeout", "30", "--memory-limit", "0",
                         "--local-directory", str(folder)], folder / "worker.log"))
    with Client(address, timeout=60) as client:
        client.wait_for_workers(N_WORKERS, timeout=120)
    return address


def _executed(address: str) -> int:
    """Tasks run so far by the cluster's workers."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


@pytest.fixture(scope="module")
def small_workspace(chips, tmp_path_factory):
    """A workspace of 600 real chips with 3 official folds: logreg's CV takes seconds."""
    from competition.create import init_workspace
    from competition.data import Chips

    subset = np.arange(0, 4000, 6)[:600]
    small = Chips(*(getattr(chips, f)[subset] for f in ("X", "y", "scene_id", "lon", "lat", "name")))
    return init_workspace(tmp_path_factory.mktemp("small") / "ws", chips=small, seed=0, n_splits=3).root


def _cv(args: list[str]) -> dict:
    result = runner.invoke(root, ["cv", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_logreg_cv_on_the_cluster_gives_the_local_numbers(scheduler, small_workspace, tmp_path):
    tracking = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    local = _cv(["logreg", "-w", str(small_workspace), *tracking])
    before = _executed(scheduler)
    remote = _cv(["logreg", "-w", str(small_workspace), "--scheduler", scheduler, *tracking])
    # 3 fold tasks, and logreg's nested search inside each fold (3 C values x 3 inner folds, which
    # joblib may batch into fewer tasks): more than the folds alone ran on the cluster's workers
    assert _executed(scheduler) - before >= 3 + 3
    assert remote["scheduler"] == scheduler and local["scheduler"] is None
    (lr,), (rr,) = local["results"], remote["results"]
    assert rr["official_folds"] is True and rr["n_splits"] == 3
    for lf, rf in zip(lr["folds"], rr["folds"]):
        assert {k: v for k, v in lf.items() if not k.endswith("_time")} == \
            {k: v for k, v in rf.items() if not k.endswith("_time")}
    assert lr["out_of_fold"] == rr["out_of_fold"] and lr["out_of_fold"]["roc_auc_low"] is not None
    assert lr["mean"]["roc_auc"] == rr["mean"]["roc_auc"] > 0.9


def test_the_library_on_the_cluster_gives_the_local_predictions(scheduler, small_workspace):
    from baselines.workflow import cross_validate_baseline, fit_baseline
    from competition.cluster import connect_scheduler, dask_backend
    from competition.workspace import Workspace

    ws = Workspace.open(small_workspace)
    local = cross_validate_baseline(ws, "logreg", n_jobs=2).result
    local_fit, _ = fit_baseline(ws, "logreg", n_jobs=2)
    client = connect_scheduler(scheduler)
    try:
        with dask_backend(client) as n_threads:
            assert n_threads == N_WORKERS
            remote = cross_validate_baseline(ws, "logreg", n_jobs=-1).result
            before = _executed(scheduler)
            remote_fit, _ = fit_baseline(ws, "logreg", n_jobs=-1)
            assert _executed(scheduler) - before >= 9  # the final fit's nested search ran on the cluster
    finally:
        client.close()
    np.testing.assert_array_equal(local.y_proba, remote.y_proba)
    assert remote_fit.best_params_ == local_fit.best_params_ and remote_fit.inner_scores_ == local_fit.inner_scores_
    test = ws.load_test()
    np.testing.assert_array_equal(local_fit.predict_proba(test.X), remote_fit.predict_proba(test.X))


def test_a_team_model_runs_on_the_cluster_without_its_file(scheduler, small_workspace, tmp_path):
    """The team's code travels by value: the workers never see the file, which lives only here."""
    model = tmp_path / "team_only_model.py"
    model.write_text((REPO / "submissions" / "example_model.py").read_text())
    tracking = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    local = _cv([str(model), "-w", str(small_workspace), *tracking])
    remote = _cv([str(model), "-w", str(small_workspace), "--scheduler", scheduler, *tracking])
    assert local["results"][0]["out_of_fold"] == remote["results"][0]["out_of_fold"]


def test_a_team_model_error_on_the_cluster_is_the_teams(scheduler, small_workspace, tmp_path):
    model = tmp_path / "fails_in_fit.py"
    model.write_text("from sklearn.dummy import DummyClassifier\n\n\nclass Failing(DummyClassifier):\n"
                     "    def fit(self, X, y):\n        raise RuntimeError('out of memory on purpose')\n\n\n"
                     "def make_estimator(random_state=0):\n    return Failing()\n")
    result = runner.invoke(root, ["cv", str(model), "-w", str(small_workspace), "--scheduler", scheduler,
                                  "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"Error: {model}: your model raised RuntimeError in fit" in result.output
    assert f'File "{model}", line 6, in fit' in result.output and "out of memory on purpose" in result.output


def test_baseline_run_on_the_cluster_writes_the_local_submission(scheduler, small_workspace, tmp_path):
    tracking = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    outcomes = []
    for extra in ([], ["--scheduler", scheduler]):
        result = runner.invoke(root, ["baseline", "run", "logreg", "-w", str(small_workspace), *extra, *tracking,
                                      "--json"])
        assert result.exit_code == 0, result.output
        outcome = json.loads(result.stdout)
        outcomes.append((outcome["cv"]["out_of_fold"], Path(outcome["submission"]).read_bytes()))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("address, message", [
    ("tcp://127.0.0.1:{port}", "Error: --scheduler 'tcp://127.0.0.1:{port}': no Dask scheduler answered within 5 s"),
    ("nope://127.0.0.1:{port}", "Error: --scheduler 'nope://127.0.0.1:{port}' is not the address of a Dask scheduler "
                                "(unknown address scheme 'nope'"),
    ("localhost", "Error: --scheduler 'localhost' is not the address of a Dask scheduler (missing port number"),
])
def test_an_unreachable_scheduler_fails_before_any_work(small_workspace, tmp_path, address, message):
    port = _free_port()  # nothing listens there
    tracking = tmp_path / "mlflow.db"
    start = time.perf_counter()
    result = runner.invoke(root, ["cv", "logreg", "-w", str(small_workspace), "--scheduler", address.format(port=port),
                                  "--tracking-uri", f"sqlite:///{tracking}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert message.format(port=port) in result.output
    assert "start one with `dask scheduler`" in result.output or "expected tcp://HOST:PORT" in result.output
    assert "folds" not in result.output and not tracking.exists()  # no training, no MLflow run
    assert time.perf_counter() - start < 30
