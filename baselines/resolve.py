"""One chip classifier from what a user names: a baseline, a team's model file, a saved model, an MLflow URI.

``ships detect --model`` takes any of them; :func:`resolve_model` turns it into a fitted
estimator with ``predict_proba`` and says where it came from.  A baseline name or a team's
model file (``.py``, see :mod:`baselines.team_model`) is fitted on the workspace's train part
(never on its test part, which the ship finder's test bed pastes).  ``ships cv`` takes a
baseline name or a team's model file: :func:`resolve_factory` turns it into ``make(random_state)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from competition.errors import ParameterError

__all__ = ["MLFLOW_MODEL_URI", "resolve_model", "resolve_factory"]

MLFLOW_MODEL_URI = re.compile(r"^(runs|models):/\S+$")


def resolve_model(spec: str, *, workspace: Path, tracking_uri: str | None = None,
                  notify: Callable[[str], None] | None = None, name: str = "model") -> tuple[object, str]:
    """The estimator ``spec`` names, and a line saying where it came from.

    Parameters
    ----------
    spec : str
        An MLflow model URI (``runs:/<run id>/model``, ``models:/<name>/<version>``), the path
        of a model saved by ``ships baseline run NAME --save PATH``, or a baseline name.
    workspace : path
        The workspace whose train part fits a baseline, and whose MLflow store is the default
        ``tracking_uri`` (when it exists).
    tracking_uri : str, optional
        MLflow tracking URI of an MLflow model.
    notify : callable, optional
        ``notify(text)`` before a baseline is fitted (it takes a while).
    name : str
        Name of ``spec`` in error messages (e.g. ``--model``).

    Raises
    ------
    ParameterError
        If ``spec`` is none of the three.
    ModelError, TrackingError, WorkspaceError
        If the file or the MLflow model cannot be loaded, or the workspace cannot be opened.
    """
    from competition.workspace import Workspace

    if MLFLOW_MODEL_URI.match(spec):
        from competition.tracking import load_logged_model

        if tracking_uri is None and Path(workspace).exists():
            tracking_uri = Workspace.open(workspace).tracking_uri
        return load_logged_model(spec, tracking_uri=tracking_uri), f"Model: {spec} from MLflow."
    if spec.endswith(".py") and Path(spec).is_file():
        from baselines.workflow import fit_estimator, load_train_part

        make, ws = resolve_factory(spec, name=name)[1], Workspace.open(workspace)
        train = load_train_part(ws)
        if notify:
            notify(f"Fitting your model {spec} on the {len(train.y)} train chips of {ws.root} ...")
        return fit_estimator(ws, make, train=train)[0], f"Model: {spec} fitted on the train chips of {ws.root}."
    if Path(spec).is_file():
        from baselines.persist import load_model

        return load_model(Path(spec)), f"Model: {spec}."
    from baselines.registry import BASELINES
    from baselines.workflow import fit_baseline, load_train_part

    if spec not in BASELINES:
        raise ParameterError(
            f"{name} {spec!r} is neither a baseline name ({', '.join(BASELINES)}), an existing file, "
            "nor an MLflow model URI (runs:/<run id>/model, models:/<name>/<version>)"
        )
    ws = Workspace.open(workspace)
    train = load_train_part(ws)
    where = f"the {len(train.y)} train chips of {ws.root}"
    if notify:
        notify(f"Fitting baseline {spec!r} on {where} ...")
    estimator, _ = fit_baseline(ws, spec, train=train)
    return estimator, f"Model: baseline {spec!r} fitted on {where}."


def resolve_factory(spec: str, *, params: dict | None = None, name: str = "model") -> tuple[str, Callable]:
    """The name and ``make(random_state)`` of a baseline or of a team's model file, checked before any data is read.

    Parameters
    ----------
    spec : str
        A baseline name, or the path of a Python file that defines ``make_estimator(random_state)``.
    params : dict, optional
        Keyword arguments of the baseline's (or the file's) ``make_estimator``.
    name : str
        Name of ``spec`` in error messages.

    Raises
    ------
    ParameterError
        For an unknown baseline, a missing file, or a parameter the model does not take.
    ModelError
        If the file raises when run, or defines no ``make_estimator(random_state)``.
    """
    from baselines.registry import BASELINES, make_baseline
    from baselines.team_model import is_model_file, load_team_model

    params = dict(params or {})
    if spec in BASELINES:
        make_baseline(spec, **params)  # an unknown parameter fails here
        return spec, lambda random_state: make_baseline(spec, random_state=random_state, **params)
    if not is_model_file(spec):
        raise ParameterError(f"unknown model {spec!r}; expected one of: {', '.join(BASELINES)}; or the path of your "
                             "own model file, a .py that defines make_estimator(random_state) (see "
                             "submissions/example_model.py)")
    model = load_team_model(spec, name=name)
    return model.name, lambda random_state: model.make_estimator(random_state, **params)
