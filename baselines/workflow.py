"""The baseline workflow: grouped CV, a fit on all of train, the test ids predicted, the submission file.

What ``ships cv``, ``ships baseline run``, ``ships demo``, ``ships detect --model NAME`` and the
benchmarks do with a baseline, or with a team's own model (:mod:`baselines.team_model`), as
library functions.  Only public files are read: the workspace's ``public/`` folder, or a
team's copy of it (:class:`competition.public.PublicData`, wherever ``ws`` is taken below).
The cross-validation uses the official folds unless the caller's
:class:`~competition.folds.FoldPlan` says otherwise (see :func:`plan_cv`).

Nothing here prints: fold progress goes to a ``progress(done, total)`` callback and each step
to a ``notify(text)`` callback, both optional.  Submitting goes through a ``submit`` callable
that the caller injects (the CLI passes :func:`leaderboard.submit.submit_file`, the path every
team takes), so that ``baselines/`` never imports ``leaderboard/``; the baseline's MLflow run
then carries the Public score of that submission.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from competition.cv import CVResult, cross_validate_plan, score_out_of_fold
from competition.errors import DataError, WorkspaceError
from competition.folds import FoldPlan, plan_folds
from competition.public import PublicData

__all__ = ["BaselineOutcome", "CVRun", "baseline_team", "source_defaults", "load_train_part", "plan_cv",
           "cross_validate_estimator", "cross_validate_baseline", "fit_estimator", "fit_baseline", "write_predictions",
           "write_submission", "run_baseline"]

Progress = Callable[[int, int], None]
Notify = Callable[[str], None]
MakeEstimator = Callable[[object], object]  # make(random_state) -> an unfitted estimator


def source_defaults(ws) -> tuple[str, int]:
    """The grouping of the official folds and the default seed: the workspace's, or a team folder's (seed 0)."""
    if isinstance(ws, PublicData):
        return ws.group_by, 0
    return ws.config.group_by, ws.config.seed


def baseline_team(name: str) -> str:
    """The team a baseline submits as: ``baseline-NAME``."""
    return f"baseline-{name}"


def load_train_part(ws):
    """The train part (pixels, labels, groups, official folds) of a workspace or a team's folder, refusing an empty one.

    Raises
    ------
    WorkspaceError, DataError
        If train.csv holds no chips (or a file is missing), in a workspace or a team's folder.
    """
    train = ws.load_train()
    if len(train.y) == 0 and isinstance(ws, PublicData):
        raise DataError(f"{ws.public_dir / 'train.csv'}: holds no train chips; {ws.fix}")
    if len(train.y) == 0:
        raise WorkspaceError(f"{ws.public_dir / 'train.csv'}: holds no train chips; re-create the workspace "
                             f"with `ships init --workspace {ws.root} --force`")
    return train


def plan_cv(ws, *, cv: str | None = None, n_splits: int | None = None, train=None,
            name: str = "n_splits") -> FoldPlan:
    """The folds of a cross-validation on the workspace: the official ones unless ``cv`` or ``n_splits`` differ.

    ``cv`` defaults to the workspace's grouping and ``n_splits`` to its number of official
    folds; ``name`` names ``n_splits`` in error messages (e.g. ``--folds``).

    Raises
    ------
    ParameterError
        For an unknown ``cv`` or an impossible number of folds (checked before any training).
    """
    train = load_train_part(ws) if train is None else train
    return plan_folds(train.y, train.scene_id, train.fold, group_by=source_defaults(ws)[0], cv=cv, n_splits=n_splits,
                      name=name)


@dataclass(frozen=True)
class CVRun:
    """One cross-validation of a baseline and its MLflow run (None when not tracked)."""

    name: str
    result: CVResult
    run_id: str | None

    def to_dict(self) -> dict:
        """JSON-ready: the CV summary (with ``official_folds``) and the MLflow run id."""
        return {**self.result.to_dict(), "mlflow_run_id": self.run_id}


def cross_validate_estimator(ws, name: str, make: MakeEstimator, *, plan: FoldPlan | None = None,
                             seed: int | None = None, n_jobs: int = 1, train=None, tracker=None,
                             progress: Progress | None = None) -> CVRun:
    """Cross-validate ``make(random_state=seed)`` on the train part, on ``plan``'s folds (default: the official ones).

    The result carries the pooled out-of-fold metrics with intervals that resample whole groups
    (``out_of_fold``).  With a ``tracker`` (:class:`competition.tracking.Tracker`) the CV is
    logged as one parent run named after ``name`` and a child run per fold.  ``seed``
    defaults to the workspace's seed (0 for a team's folder).
    """
    train = load_train_part(ws) if train is None else train
    plan = plan_cv(ws, train=train) if plan is None else plan
    seed = source_defaults(ws)[1] if seed is None else seed
    estimator = make(seed)
    result = cross_validate_plan(estimator, train.X, train.y, plan, random_state=seed, n_jobs=n_jobs,
                                 return_estimator=tracker is not None, progress=progress)
    result = score_out_of_fold(result, train.groups, random_state=seed)
    run_id = None if tracker is None else tracker.log_cv(result, model=name, split_hash=ws.split_hash,
                                                         estimator=estimator)
    return CVRun(name, result, run_id)


def cross_validate_baseline(ws, name: str, *, plan: FoldPlan | None = None, seed: int | None = None,
                            n_jobs: int = 1, params: dict | None = None, train=None, tracker=None,
                            progress: Progress | None = None) -> CVRun:
    """:func:`cross_validate_estimator` of baseline ``name`` (with ``params``)."""
    from baselines.registry import make_baseline

    return cross_validate_estimator(ws, name, lambda rs: make_baseline(name, random_state=rs, **(params or {})),
                                    plan=plan, seed=seed, n_jobs=n_jobs, train=train, tracker=tracker,
                                    progress=progress)


def fit_estimator(ws, make: MakeEstimator, *, seed: int | None = None, n_jobs: int = 1,
                  train=None) -> tuple[object, float]:
    """``make(random_state=seed)`` fitted on all of the train part, and the seconds the fit took.

    The groups go to ``fit``, so a baseline that tunes itself keeps its inner split grouped;
    an inner search runs ``n_jobs`` jobs (on the Dask cluster within
    :func:`competition.cluster.dask_backend`).
    """
    from joblib import parallel_config

    train = load_train_part(ws) if train is None else train
    estimator = make(source_defaults(ws)[1] if seed is None else seed)
    start = time.perf_counter()
    with parallel_config(n_jobs=n_jobs):
        estimator.fit(train.X, train.y, groups=train.groups)
    return estimator, time.perf_counter() - start


def fit_baseline(ws, name: str, *, seed: int | None = None, params: dict | None = None, n_jobs: int = 1,
                 train=None) -> tuple[object, float]:
    """:func:`fit_estimator` of baseline ``name`` (with ``params``)."""
    from baselines.registry import make_baseline

    return fit_estimator(ws, lambda rs: make_baseline(name, random_state=rs, **(params or {})), seed=seed,
                         n_jobs=n_jobs, train=train)


def write_predictions(path: Path, test, estimator) -> Path:
    """Predict the test chips and write ``id,ship`` to ``path`` (atomically): a valid submission file.

    Probabilities keep 8 significant digits, so that tiny ones keep their order.
    """
    import pandas as pd

    path = Path(path)
    y_proba = np.clip(np.asarray(estimator.predict_proba(test.X))[:, 1].astype(np.float64), 0.0, 1.0)
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame({"id": test.ids, "ship": y_proba}).to_csv(tmp, index=False, float_format="%.8g", lineterminator="\n")
    os.replace(tmp, path)
    return path


def write_submission(ws, name: str, estimator) -> Path:
    """Predict the test chips and write them to ``<workspace>/baseline_submissions/NAME.csv``."""
    folder = ws.root / "baseline_submissions"
    folder.mkdir(exist_ok=True)
    return write_predictions(folder / f"{name}.csv", ws.load_test(), estimator)


@dataclass(frozen=True)
class BaselineOutcome:
    """What one baseline run produced."""

    name: str
    cv: CVResult
    fit_time: float
    submission: Path
    public: dict | None
    submission_id: int | None
    file_sha256: str
    run_id: str
    model_path: Path | None

    def to_dict(self) -> dict:
        """JSON-ready summary (Public metrics only, never Private)."""
        return {"name": self.name, "cv": self.cv.to_dict(), "fit_time": round(self.fit_time, 3),
                "submission": str(self.submission), "submission_id": self.submission_id,
                "file_sha256": self.file_sha256, "public": self.public, "mlflow_run_id": self.run_id,
                "model_path": None if self.model_path is None else str(self.model_path)}


def run_baseline(ws, name: str, *, tracker, submit: Callable | None = None, save: Path | None = None,
                 plan: FoldPlan | None = None, seed: int | None = None, n_jobs: int = 1, params: dict | None = None,
                 train=None, progress: Progress | None = None, notify: Notify | None = None) -> BaselineOutcome:
    """CV, fit on all of train, predict the test ids, write the file, submit it, save the model, log the run.

    Parameters
    ----------
    ws : Workspace
    name : str
        A baseline of :data:`baselines.registry.BASELINES`.
    tracker : competition.tracking.Tracker or None
        None: nothing is logged to MLflow (``--no-track``).
        Gets one run: parameters, CV metrics and folds, the Public metrics when submitted,
        the model and the submission file.
    submit : callable, optional
        ``submit(path, team=..., message=...)`` returning a
        :class:`leaderboard.submit.SubmitResult` (``public``, ``record.id``, ``file_sha256``);
        the file is submitted as team ``baseline-NAME``.  None: written, not submitted.
    save : path, optional
        Also save the fitted model there (joblib).
    plan : FoldPlan, optional
        The CV folds (see :func:`plan_cv`); default: the official folds.
    seed : int, optional
        Seed of the model and of fresh folds; default: the workspace's seed.
    progress, notify : callable, optional
        ``progress(done, total)`` after each CV fold; ``notify(text)`` before the final fit.
    """
    train = load_train_part(ws) if train is None else train
    seed = source_defaults(ws)[1] if seed is None else seed
    cv = cross_validate_baseline(ws, name, plan=plan, seed=seed, n_jobs=n_jobs, params=params, train=train,
                                 progress=progress).result
    if notify:
        notify(f"{name}: fitting on all {len(train.y)} train chips ...")
    estimator, fit_time = fit_baseline(ws, name, seed=seed, params=params, n_jobs=n_jobs, train=train)
    path = write_submission(ws, name, estimator)
    public = submission_id = None
    file_sha256 = team = ""
    if submit is not None:
        team = baseline_team(name)
        scored = submit(path, team=team, message=f"{name} baseline ({cv.cv} CV ROC AUC {cv.mean['roc_auc']:.4f})")
        public, submission_id, file_sha256 = scored.public, scored.record.id, scored.file_sha256
    if save is not None:
        from baselines.persist import save_model

        save_model(estimator, save)
    run_id = None if tracker is None else tracker.log_baseline(
        name, estimator=estimator, cv=cv, public=public, submission=path, file_sha256=file_sha256, team=team,
        split_hash=ws.split_hash, metrics={"fit_time": fit_time}, params={"seed": seed}, X_example=train.X[:2])
    return BaselineOutcome(name, cv, fit_time, path, public, submission_id, file_sha256, run_id, save)
