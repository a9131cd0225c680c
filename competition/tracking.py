"""MLflow tracking of cross-validations, baseline runs and scored submissions (the only importer of mlflow).

One vocabulary (docs/ARCHITECTURE.md): metrics ``cv_NAME`` / ``cv_NAME_std`` (cross-validation
mean and spread), ``public_NAME`` (+ ``_low`` / ``_high``) for scored submissions and baselines,
``private_NAME`` at finalize only, plain ``NAME`` in the per-fold child runs; tags ``ships.kind``
(cv, baseline, submission), ``ships.team``, ``ships.model``, ``ships.split_hash``,
``ships.file_sha256``.  Keras training curves (``history_``) become step metrics ``history_KEY``.

Failure policy: :meth:`Tracker.check` probes the store quickly and raises
:class:`~competition.errors.TrackingError`; ``ships cv`` and ``ships baseline run`` call it
before any training starts.  Every logging method raises ``TrackingError`` too; ``ships score``
logs after the score is stored and printed, so a tracking failure there is a warning and the
score (in leaderboard.db) is never lost.  mlflow is imported on first use, not with this module.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from competition.errors import ModelError, TrackingError
from competition.scoring import METRICS

__all__ = ["Tracker", "DEFAULT_EXPERIMENT", "flat_params", "load_logged_model"]

DEFAULT_EXPERIMENT = "ships"
_PROBE_TIMEOUT_S = 3.0
# MLflow's HTTP client retries 7 times with exponential backoff by default (minutes when a
# server is down); the harness probes first and keeps the client's own retries short.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
_PARAM_MAX = 500


def _errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises when the store is unreachable or refuses a request."""
    import requests
    from mlflow.exceptions import MlflowException

    return (MlflowException, requests.exceptions.RequestException, OSError)


class Tracker:
    """Logs the harness's runs to one MLflow tracking store.

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
        if self._is_http:
            for key, value in _HTTP_DEFAULTS.items():
                os.environ.setdefault(key, value)
            # MLflow's client prints "View run ... at" links to stdout after each run against a
            # server, which would corrupt --json output; the harness prints its own summary.
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        for name in ("alembic", "mlflow.store.db.utils"):  # database set-up chatter on first use
            logging.getLogger(name).setLevel(logging.WARNING)

    @property
    def _is_http(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def __repr__(self) -> str:
        return f"Tracker({self.uri!r}, experiment={self.experiment!r})"

    # -- reachability -------------------------------------------------------------------------

    def check(self) -> "Tracker":
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
        except _errors() as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise TrackingError(f"MLflow tracking store {self.uri}: could not {action} ({first})") from exc

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

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
            with contextlib.suppress(*_errors()):
                self._end(run_id, status)

    def log_cv(self, result, *, model: str, params: Mapping | None = None, split_hash: str = "",
               kind: str = "cv", estimator=None) -> str:
        """One parent run for a cross-validation and one child run per fold.

        Parameters
        ----------
        result : competition.cv.CVResult
        model : str
            The baseline's name (tag ``ships.model``).
        params : mapping, optional
            Extra parameters of the parent run (e.g. the estimator's, see :func:`flat_params`).
        split_hash : str
        kind : str
            ``ships.kind`` of the runs.
        estimator : estimator, optional
            Unfitted estimator whose parameters are logged.

        Returns
        -------
        str
            The parent run id.
        """
        with self._run(f"cv {model} {result.cv}", self._tags(kind, model, split_hash), action="log the CV run") as run_id:
            self._log_cv_into(run_id, result, model=model, params=params, split_hash=split_hash, kind=kind,
                              estimator=estimator)
        return run_id

    def _log_cv_into(self, run_id: str, result, *, model, params, split_hash, kind, estimator=None) -> None:
        base = {"model": model, "cv": result.cv, "n_splits": result.n_splits, "splitter": result.splitter,
                **(flat_params(estimator) if estimator is not None else {}), **(params or {})}
        metrics = {f"cv_{k}": v for k, v in result.mean.items()}
        metrics.update({f"cv_{k}_std": v for k, v in result.std.items()})
        self._log(run_id, metrics=metrics, params=base)
        for fold in result.folds:
            tags = self._tags(kind, model, split_hash)
            with self._run(f"fold {fold.fold}", tags, parent=run_id, action="log a fold run") as child:
                fitted = fold.estimator
                self._log(child, metrics={**fold.metrics, "fit_time": fold.fit_time, "score_time": fold.score_time},
                          params={"fold": fold.fold, "n_train": fold.n_train, "n_test": fold.n_test,
                                  **_fitted_params(fitted)},
                          steps=_history(fitted))

    def log_baseline(self, name: str, *, estimator, cv=None, public: Mapping | None = None,
                     submission: Path | None = None, file_sha256: str = "", team: str = "", split_hash: str = "",
                     params: Mapping | None = None, metrics: Mapping[str, float] | None = None,
                     X_example=None) -> str:
        """One run for a baseline: params, CV metrics and folds, Public metrics, model, submission, plots.

        Parameters
        ----------
        name : str
            The baseline's name (tag ``ships.model``).
        estimator : estimator
            Fitted on all of train; logged as an MLflow model (sklearn flavour, plus the
            xgboost flavour of its booster for the xgboost baseline).
        cv : competition.cv.CVResult, optional
            Its grouped cross-validation: ``cv_*`` metrics, fold child runs, and the ROC,
            precision-recall and confusion-matrix plots drawn from the out-of-fold predictions.
        public : mapping, optional
            The flat Public metrics of its scored submission (``public_*`` metrics).
        submission : path, optional
            The submission file (logged as an artifact).
        file_sha256, team, split_hash : str
            Tags.
        params, metrics : mapping, optional
            Extra parameters and metrics (e.g. ``fit_time``).
        X_example : ndarray, optional
            A few chips, for the model's signature.

        Returns
        -------
        str
            The run id.
        """
        tags = {**self._tags("baseline", name, split_hash), "ships.team": team, "ships.file_sha256": file_sha256}
        with self._run(f"baseline {name}", tags, action="log the baseline run") as run_id:
            if cv is not None:
                self._log_cv_into(run_id, cv, model=name, params=None, split_hash=split_hash, kind="baseline")
                self._log_plots(run_id, cv.y_true, cv.y_proba, f"{name}, {cv.cv} CV out-of-fold")
            self._log(run_id, metrics={**_prefixed("public", public or {}), **(metrics or {})},
                      params={**flat_params(estimator), **_fitted_params(estimator), **(params or {}),
                              **({} if cv is not None else {"model": name})},
                      steps=_history(estimator))
            if submission is not None:
                self._client().log_artifact(run_id, str(submission), artifact_path="submission")
            self._log_model(run_id, estimator, X_example)
        return run_id

    def log_submission(self, team: str, message: str, file_sha256: str, split_hash: str, public: Mapping,
                       *, submission_id: int | None = None, kind: str = "team") -> str:
        """One run for a scored submission: its Public metrics (``public_*``) and tags.

        Raises
        ------
        TrackingError
            When the store fails; ``ships score`` turns it into a warning (the score is stored).
        """
        tags = {**self._tags("submission", "", split_hash), "ships.team": team, "ships.file_sha256": file_sha256,
                "ships.submission_id": submission_id, "ships.team_kind": kind, "mlflow.note.content": message}
        name = f"{team} #{submission_id}" if submission_id is not None else f"{team} {file_sha256[:8]}"
        with self._run(name, tags, action="log the submission") as run_id:
            self._log(run_id, metrics=_prefixed("public", public),
                      params={"team": team, "message": message[:_PARAM_MAX], "file_sha256": file_sha256})
        return run_id

    def log_private(self, rows: Iterable[Mapping]) -> list[str]:
        """At finalize only: add ``private_*`` metrics to the runs of the given submissions.

        Parameters
        ----------
        rows : iterable of mapping
            Each with ``team``, ``file_sha256`` and ``private`` (the flat Private metrics), and
            optionally ``submission_id`` and ``split_hash``.  The runs logged for that team and
            file (submission or baseline) get the metrics; a row with no such run gets a new
            submission run.

        Returns
        -------
        list of str
            The run ids that received Private metrics.
        """
        done = []
        with self._wrap("log the Private scores"):
            for row in rows:
                runs = self._find_runs(row["team"], row["file_sha256"])
                if not runs:
                    tags = {**self._tags("submission", "", row.get("split_hash", "")), "ships.team": row["team"],
                            "ships.file_sha256": row["file_sha256"], "ships.submission_id": row.get("submission_id")}
                    with self._run(f"{row['team']} private", tags) as run_id:
                        runs = [run_id]
                for run_id in runs:
                    self._log(run_id, metrics=_prefixed("private", row["private"]))
                    done.append(run_id)
        return done

    def _find_runs(self, team: str, file_sha256: str) -> list[str]:
        if not all(c in "0123456789abcdef" for c in file_sha256.lower()):
            return []  # not a SHA-256: no run can carry it
        query = f"tags.`ships.file_sha256` = '{file_sha256}'"  # hex only; the team is compared here, unquoted
        runs = self._client().search_runs([self._experiment()], filter_string=query, max_results=1000)
        return [r.info.run_id for r in runs if r.data.tags.get("ships.team") == team
                and r.data.tags.get("ships.kind") in ("submission", "baseline")]

    def _tags(self, kind: str, model: str, split_hash: str) -> dict[str, str]:
        return {"ships.kind": kind, "ships.model": model, "ships.split_hash": split_hash}

    # -- artifacts ----------------------------------------------------------------------------

    def _log_plots(self, run_id: str, y_true, y_proba, label: str) -> None:
        from competition.plots import make_plots

        client = self._client()
        for file_name, fig in make_plots(y_true, y_proba, label).items():
            client.log_figure(run_id, fig, f"plots/{file_name}")

    def _log_model(self, run_id: str, estimator, X_example=None) -> None:
        import warnings

        import mlflow
        import mlflow.sklearn

        signature = None
        if X_example is not None:
            from mlflow.models import infer_signature

            signature = infer_signature(X_example, estimator.predict_proba(X_example))
        with _fluent(self.uri), mlflow.start_run(run_id=run_id), warnings.catch_warnings(), _quiet("mlflow.sklearn"):
            warnings.simplefilter("ignore")  # the harness chose cloudpickle: baselines hold their own classes
            mlflow.sklearn.log_model(estimator, name="model", signature=signature, pyfunc_predict_fn="predict_proba",
                                     serialization_format="cloudpickle",
                                     pip_requirements=_requirements())
            booster = _xgboost_step(estimator)
            if booster is not None:
                import mlflow.xgboost

                mlflow.xgboost.log_model(booster, name="xgboost_model", pip_requirements=_requirements())


def load_logged_model(model_uri: str, tracking_uri: str | None = None):
    """The estimator of an MLflow model URI (``runs:/<run id>/model``, ``models:/<name>/<version>``).

    Raises
    ------
    ModelError
        If the model cannot be found or loaded.
    """
    import mlflow.sklearn

    try:
        with _fluent(tracking_uri):
            return mlflow.sklearn.load_model(model_uri)
    except _errors() as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        store = f" from {tracking_uri}" if tracking_uri else ""
        raise ModelError(f"{model_uri}: cannot load the MLflow model{store} ({first}); "
                         "check the run id and --tracking-uri") from exc


@contextlib.contextmanager
def _fluent(uri: str | None):
    """Point mlflow's fluent API at ``uri`` for the duration (model logging needs it).

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the environment; both
    are put back afterwards, so that a later command in the same process does not pick up
    this store as if the user had chosen it.
    """
    import mlflow

    if uri is None:
        yield
        return
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        if env_before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env_before


@contextlib.contextmanager
def _quiet(logger: str):
    """Silence a logger below ERROR for the duration (MLflow's advice about pickle formats)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def flat_params(estimator) -> dict[str, str]:
    """An estimator's parameters (``get_params(deep=True)``) that are plain values, as strings."""
    if estimator is None or not hasattr(estimator, "get_params"):
        return {}
    out = {}
    for key, value in sorted(estimator.get_params(deep=True).items()):
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple, dict)) and len(repr(value)) <= _PARAM_MAX:
            out[key] = repr(value)
    return out


def _fitted_params(estimator) -> dict:
    """Choices made during fit: the inner search's best parameters and the weights used."""
    if estimator is None:
        return {}
    out = {f"best_{k}": v for k, v in (getattr(estimator, "best_params_", None) or {}).items()}
    if getattr(estimator, "weights_source_", None) is not None:
        out["weights_source"] = estimator.weights_source_
    return out


def _history(estimator) -> dict[str, list[float]]:
    """Per-epoch training curves of a Keras baseline as ``history_KEY`` step metrics."""
    history = getattr(estimator, "history_", None) or {}
    return {f"history_{k}": list(v) for k, v in history.items()}


def _xgboost_step(estimator):
    """The fitted XGBClassifier inside a baseline, if there is one."""
    inner = getattr(estimator, "estimator_", estimator)
    last = inner.steps[-1][1] if hasattr(inner, "steps") else inner
    return last if type(last).__module__.startswith("xgboost") else None


def _requirements() -> list[str]:
    """Pinned requirements of a logged model (explicit: MLflow's inference would load the model again)."""
    import sys
    from importlib.metadata import PackageNotFoundError, version

    names = ["scikit-learn", "numpy", "scipy", "cloudpickle"]
    names += [n for n in ("xgboost", "keras") if n in sys.modules]
    out = []
    for n in names:
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{n}=={version(n)}")
    return out


def _prefixed(prefix: str, scores: Mapping) -> dict[str, float]:
    """``PREFIX_NAME``, ``PREFIX_NAME_low`` and ``PREFIX_NAME_high`` for every metric of the vocabulary."""
    out = {}
    for name in METRICS:
        for key in (name, f"{name}_low", f"{name}_high"):
            if scores.get(key) is not None:
                out[f"{prefix}_{key}"] = scores[key]
    return out


def _param_value(value) -> str:
    text = str(value)
    return text if len(text) <= _PARAM_MAX else text[: _PARAM_MAX - 3] + "..."


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
