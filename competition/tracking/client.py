"""The connection to one MLflow tracking store: reachability, the experiment, runs and batched logging."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from competition.errors import TrackingError
from competition.tracking.lock import holder, lock_path_for, release, sqlite_path, wait_for_lock

__all__ = ["TrackerBase", "DEFAULT_EXPERIMENT", "mlflow_errors", "ensure_store"]

DEFAULT_EXPERIMENT = "ships"
_PROBE_TIMEOUT_S = 3.0
# MLflow's HTTP client retries 7 times with exponential backoff by default (minutes when a
# server is down); the harness probes first and keeps the client's own retries short.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
PARAM_MAX = 500
_SETUP_TIMEOUT_S = 120.0


def mlflow_errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises when the store is unreachable or refuses a request."""
    import requests
    from mlflow.exceptions import MlflowException

    return (MlflowException, requests.exceptions.RequestException, OSError)


class TrackerBase:
    """One MLflow tracking store; :class:`competition.tracking.Tracker` adds the harness's runs.

    Parameters
    ----------
    uri : str
        Tracking URI: ``sqlite:///PATH/mlflow.db`` (the workspace default), ``http(s)://HOST:PORT``,
        a ``file:`` folder, or any URI MLflow accepts.  Resolve ``--tracking-uri`` and
        ``MLFLOW_TRACKING_URI`` at the CLI edge and pass the result here.
    experiment : str, default="ships"
    artifact_location : str, optional
        Where a new experiment keeps its artifacts; for a ``sqlite:`` store the default is the
        ``mlruns/`` folder beside the database, for a server the server decides.
    """

    def __init__(self, uri: str, *, experiment: str = DEFAULT_EXPERIMENT, artifact_location: str | None = None):
        self.uri = str(uri)
        self.experiment = experiment
        self.artifact_location = artifact_location or _default_artifacts(self.uri)
        self._experiment_id: str | None = None
        self._store_ready = False
        if self._is_http:
            for key, value in _HTTP_DEFAULTS.items():
                os.environ.setdefault(key, value)
            # MLflow's client prints "View run ... at" links to stdout after each run against a
            # server, which would corrupt --json output; the harness prints its own summary.
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        _quiet_setup()

    @property
    def _is_http(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def __repr__(self) -> str:
        return f"Tracker({self.uri!r}, experiment={self.experiment!r})"

    # -- reachability -------------------------------------------------------------------------

    def check(self) -> "TrackerBase":
        """Make sure the store answers and the experiment exists, quickly.

        A server gets one HTTP probe with a short timeout (no retries); a database or
        folder store is opened.  Call it before training so an unreachable store fails first.

        Raises
        ------
        TrackingError
            Saying which URI failed, why, and what to do.
        """
        if self._is_http:
            self._probe_http()
        with self._wrap("open the tracking store"):
            self._experiment()
        return self

    def _probe_http(self) -> None:
        url = self.uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT_S) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(self._unreachable(f"no answer from {url}: {reason}")) from exc
        if status != 200:
            raise TrackingError(self._unreachable(f"{url} answered HTTP {status}; is it an MLflow tracking server?"))

    def _unreachable(self, why: str) -> str:
        return (f"MLflow tracking store {self.uri} is not reachable ({why}); start the server, pass another "
                "--tracking-uri, or unset MLFLOW_TRACKING_URI to use the workspace's own mlflow.db")

    @contextlib.contextmanager
    def _wrap(self, action: str):
        try:
            yield
        except TrackingError:
            raise
        except mlflow_errors() as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise TrackingError(f"MLflow tracking store {self.uri}: could not {action} ({first})") from exc

    def _client(self):
        from mlflow import MlflowClient

        if not self._store_ready:
            ensure_store(self.uri)
            self._store_ready = True
        return MlflowClient(tracking_uri=self.uri)

    @property
    def experiment_id(self) -> str:
        """The id of the harness's experiment in this store (created on first use)."""
        with self._wrap("open the tracking store"):
            return self._experiment()

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self._client()
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                self._experiment_id = client.create_experiment(self.experiment, artifact_location=self.artifact_location)
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    # -- runs ---------------------------------------------------------------------------------

    def _start(self, name: str, tags: Mapping[str, str], parent: str | None = None) -> str:
        tags = {k: str(v) for k, v in tags.items() if v is not None and v != ""}
        if parent:
            tags["mlflow.parentRunId"] = parent
        return self._client().create_run(self._experiment(), tags=tags, run_name=name).info.run_id

    def _log(self, run_id: str, metrics: Mapping[str, float] | None = None, params: Mapping | None = None,
             steps: Mapping[str, Iterable[float]] | None = None) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if _finite(v)]
        for key, values in (steps or {}).items():
            ms += [Metric(key, float(v), now, step) for step, v in enumerate(values) if _finite(v)]
        ps = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        client = self._client()
        for start in range(0, len(ms), 1000):  # the limits of one log_batch call
            client.log_batch(run_id, metrics=ms[start:start + 1000])
        for start in range(0, len(ps), 100):
            client.log_batch(run_id, params=ps[start:start + 100])

    def _end(self, run_id: str, status: str = "FINISHED") -> None:
        self._client().set_terminated(run_id, status=status)

    @contextlib.contextmanager
    def _run(self, name: str, tags: Mapping[str, str], parent: str | None = None, action: str = "log a run"):
        with self._wrap(action):
            run_id = self._start(name, tags, parent)
        status = "FAILED"
        try:
            with self._wrap(action):
                yield run_id
            status = "FINISHED"
        finally:
            with contextlib.suppress(*mlflow_errors()):
                self._end(run_id, status)


def ensure_store(uri: str, *, held: Path | None = None, timeout: float = _SETUP_TIMEOUT_S) -> None:
    """Set up a fresh ``sqlite:`` store's schema once, under its writer lock; nothing for other stores.

    MLflow creates the tables of an empty SQLite database on first use, and two processes doing
    it at once leave it half-migrated for good.  So the set-up runs under the lock of
    :func:`competition.tracking.lock.lock_path_for` (``WORKSPACE/tracking/writer.lock`` for the
    workspace's ``mlflow.db``); a store whose schema is already current is opened without it.

    Parameters
    ----------
    uri : str
    held : Path, optional
        The writer lock the caller holds already (the drainer of pending runs): no waiting for it.
    timeout : float
        Seconds to wait for a lock held by another process.

    Raises
    ------
    TrackingError
        When the store cannot be set up, or the lock stays held for ``timeout`` seconds.
    """
    db = sqlite_path(uri)
    if db is None or _schema_ready(db):
        return
    lock = lock_path_for(uri)
    if lock == held:
        _open_store(uri)
        return
    fd = wait_for_lock(lock, timeout=timeout, role="MLflow store set-up", done=lambda: _schema_ready(db))
    if fd is None:
        if _schema_ready(db):
            return
        raise TrackingError(f"MLflow tracking store {uri}: could not set up its database: the writer lock {lock} was "
                            f"held by {holder(lock) or 'another process'} for {timeout:.0f} s; wait for that process "
                            "to finish (or stop it) and run the command again")
    try:
        if not _schema_ready(db):
            _open_store(uri)
    finally:
        release(fd)


def _open_store(uri: str) -> None:
    """Open the store once, which creates and migrates an empty database's tables."""
    from mlflow import MlflowClient

    _quiet_setup()
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except mlflow_errors() as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"MLflow tracking store {uri}: could not set up its database ({first})") from exc


def _quiet_setup() -> None:
    """Silence the database set-up chatter of a store's first use."""
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _schema_ready(db: Path) -> bool:
    """Whether the SQLite database at ``db`` holds MLflow's current schema (read-only check)."""
    if not db.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)) as con:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    head = _latest_schema()
    return row is not None and (head is None or row[0] == head)


@functools.cache
def _latest_schema() -> str | None:
    """MLflow's newest schema revision; None if this MLflow version does not say."""
    from mlflow.exceptions import MlflowException

    try:
        from mlflow.store.db.utils import _get_latest_schema_revision

        return _get_latest_schema_revision()
    except (ImportError, AttributeError, MlflowException):
        return None


def _param_value(value) -> str:
    text = str(value)
    return text if len(text) <= PARAM_MAX else text[: PARAM_MAX - 3] + "..."


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _default_artifacts(uri: str) -> str | None:
    """``mlruns/`` beside a ``sqlite:`` database (absolute, as a file URI); None for other stores."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.parent.resolve() / "mlruns").as_uri()
    return None
