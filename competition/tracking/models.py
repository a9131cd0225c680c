"""Models in MLflow: logging a fitted baseline (sklearn and xgboost flavours), loading one back, and parameters."""

from __future__ import annotations

import contextlib
import logging
import os

from competition.errors import ModelError
from competition.tracking.client import PARAM_MAX, mlflow_errors

__all__ = ["log_model", "load_logged_model", "flat_params", "fitted_params", "history"]

def log_model(uri: str, run_id: str, estimator, X_example=None) -> None:
    """Log a fitted estimator as the run's ``model`` (sklearn flavour; xgboost's booster too)."""
    import warnings

    import mlflow
    import mlflow.sklearn

    signature = None
    if X_example is not None:
        from mlflow.models import infer_signature

        signature = infer_signature(X_example, estimator.predict_proba(X_example))
    with _fluent(uri), mlflow.start_run(run_id=run_id), warnings.catch_warnings(), _quiet("mlflow.sklearn"):
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
    except mlflow_errors() as exc:
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
        elif isinstance(value, (list, tuple, dict)) and len(repr(value)) <= PARAM_MAX:
            out[key] = repr(value)
    return out


def fitted_params(estimator) -> dict:
    """Choices made during fit: the inner search's best parameters and the weights used."""
    if estimator is None:
        return {}
    out = {f"best_{k}": v for k, v in (getattr(estimator, "best_params_", None) or {}).items()}
    if getattr(estimator, "weights_source_", None) is not None:
        out["weights_source"] = estimator.weights_source_
    return out


def history(estimator) -> dict[str, list[float]]:
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


