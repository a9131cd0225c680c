"""``ships cv`` and ``ships baseline list|run``: cross-validation and the baselines.

``cv_app`` holds ``ships cv``; ``app`` is the ``ships baseline`` group.  :func:`run_baseline`
is the one workflow of a baseline run (grouped CV, fit on all of train, predict the test ids,
write the submission, optionally submit it through the path teams use and save the model,
log it all to MLflow); ``ships demo`` runs it for several baselines.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import JsonOpt, TrackingOpt, WorkspaceOpt, echo_json, open_workspace

__all__ = ["cv_app", "app", "BaselineOutcome", "run_baseline", "make_tracker", "fold_progress", "console",
           "parse_params", "cv_fold_table", "cv_comparison_table", "public_auc"]

cv_app = typer.Typer()
app = typer.Typer(no_args_is_help=True, help="List the baselines, or run one: grouped CV, fit, predict, submit.")


class CVKind(str, Enum):
    date = "date"
    scene = "scene"
    stratified = "stratified"
    random = "random"


ModelArg = Annotated[str, typer.Argument(help="Baseline name (see `ships baseline list`).", show_default=False)]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Number of CV folds (>= 2; at most the number of groups).")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the model and of the shuffled splitters "
                                                "(default: the workspace's seed; the official date folds are fixed).")]
NJobsOpt = Annotated[int, typer.Option("--n-jobs", help="Folds trained at once (joblib processes); -1: one per CPU core.")]
ParamOpt = Annotated[Optional[list[str]], typer.Option(
    "--param", "-p", help="A parameter of the baseline as KEY=VALUE (repeatable), e.g. -p n_neighbors=15 -p epochs=5.")]
WeightsOpt = Annotated[Optional[str], typer.Option(
    "--weights", help="Starting weights of vgg16: imagenet, a local .h5 file, or none (same as -p weights=...).")]


def console(stderr: bool = False):
    """A rich console (progress goes to stderr so that --json output stays clean)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)


def make_tracker(ws, tracking_uri: str | None):
    """The tracker of ``--tracking-uri`` / ``$MLFLOW_TRACKING_URI`` or the workspace store, checked.

    Raises TrackingError before any training when the store is unreachable.
    """
    from competition.tracking import Tracker

    return Tracker(tracking_uri or ws.tracking_uri).check()


def fold_progress(con, description: str):
    """A rich progress bar and the ``progress(done, total)`` callback that advances it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
                   TimeElapsedColumn(), console=con, transient=False)
    task = bar.add_task(description, total=None)

    def callback(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, callback


def parse_params(items: list[str] | None, weights: str | None = None) -> dict:
    """``["k=v", ...]`` to a dict; values read as Python literals (5, 0.1, True, None) or kept as text."""
    import ast

    from competition.errors import ParameterError

    params = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ParameterError(f"--param {item!r} is invalid; expected KEY=VALUE, e.g. --param n_neighbors=15")
        try:
            params[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key.strip()] = text
    if weights is not None:
        params["weights"] = weights
    return params


def _check_weights(name: str, params: dict, weights: str | None) -> None:
    """``--weights`` is for baselines that start from pretrained weights (their estimator has ``weights``)."""
    from baselines.registry import make_baseline
    from competition.errors import ParameterError

    if weights is not None and "weights" not in make_baseline(name, **params).get_params(deep=False):
        raise ParameterError(f"--weights applies to baselines that start from pretrained weights (vgg16), not {name!r}; "
                             "pass the baseline's own parameters with --param KEY=VALUE")


def _load_train(ws):
    from competition.errors import WorkspaceError

    train = ws.load_train()
    if len(train.y) == 0:
        raise WorkspaceError(f"{ws.public_dir / 'train.csv'}: holds no train chips; re-create the workspace "
                             f"with `ships init --workspace {ws.root} --force`")
    return train


def _check_folds(folds: int, train, kinds) -> None:
    """``--folds`` against every requested split, before anything is trained."""
    from competition.cv import check_n_splits

    check_n_splits(folds, name="--folds")
    for kind in kinds:
        if kind in ("date", "scene"):
            check_n_splits(folds, train.scene_id if kind == "scene" else train.groups, name="--folds")


def _cross_validate(estimator, train, kind: str, folds: int, seed: int, n_jobs: int, con, label: str,
                    keep: bool = False):
    from competition.cv import cross_validate_model

    groups = train.scene_id if kind == "scene" else train.groups
    bar, callback = fold_progress(con, f"{label}: {kind} CV")
    with bar:
        return cross_validate_model(estimator, train.X, train.y, groups, cv=kind, n_splits=folds, random_state=seed,
                                    n_jobs=n_jobs, folds=train.fold, return_estimator=keep, progress=callback)


@cv_app.command("cv")
def cv_command(
    model: ModelArg,
    workspace: WorkspaceOpt,
    cv: Annotated[Optional[list[CVKind]], typer.Option(
        "--cv", help="Split: date (official grouped folds, the default), scene, stratified or random (leaky). "
                     "Give it twice to compare side by side, e.g. --cv random --cv date.")] = None,
    folds: FoldsOpt = 5,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = 1,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cross-validate a baseline on the train part: per-fold and mean ± std of every metric."""
    from baselines.registry import make_baseline

    kinds = list(dict.fromkeys(k.value for k in (cv or [CVKind.date])))
    params = parse_params(param, weights)
    make_baseline(model, **params)  # an unknown name or parameter fails here, before any data is read
    _check_weights(model, params, weights)
    ws = open_workspace(workspace)
    train = _load_train(ws)
    _check_folds(folds, train, kinds)
    seed = ws.config.seed if seed is None else seed
    tracker = make_tracker(ws, tracking_uri)
    con = console(stderr=True)
    results, run_ids = [], []
    for kind in kinds:
        estimator = make_baseline(model, random_state=seed, **params)
        result = _cross_validate(estimator, train, kind, folds, seed, n_jobs, con, model, keep=True)
        run_ids.append(tracker.log_cv(result, model=model, split_hash=ws.split_hash, estimator=estimator))
        results.append(result)
    if json_out:
        echo_json({"model": model, "n_chips": len(train.y), "tracking_uri": tracker.uri,
                   "results": [{**r.to_dict(), "mlflow_run_id": i} for r, i in zip(results, run_ids)]})
        return
    out = console()
    for result in results:
        out.print(cv_fold_table(result, f"ships cv {model}: {result.splitter}, {len(train.y)} train chips"))
    if len(results) > 1:
        out.print(cv_comparison_table(results, f"{model}: how much each split says"))
    out.print(f"MLflow runs {', '.join(run_ids)} in {tracker.uri}")


def _pm(mean: float, std: float, digits: int = 4) -> str:
    return "n/a" if mean != mean else f"{mean:.{digits}f} ± {std:.{digits}f}"


def public_auc(public: dict) -> str:
    """``0.9871 [0.9790, 0.9932]``: the Public ROC AUC and its group-bootstrap interval."""
    value, low, high = (public.get(k) for k in ("roc_auc", "roc_auc_low", "roc_auc_high"))
    if value is None:
        return "n/a"
    return f"{value:.4f}" + ("" if low is None or high is None else f" [{low:.4f}, {high:.4f}]")


def cv_fold_table(result, title: str):
    """Rows: metrics (and fit time); columns: each fold, then mean ± std."""
    from rich.table import Table

    from competition.scoring import METRICS

    table = Table(title=title)
    table.add_column("metric")
    for fold in result.folds:
        table.add_column(f"fold {fold.fold}", justify="right")
    table.add_column("mean ± std", justify="right")
    for name, metric in METRICS.items():
        cells = [metric.format(f.metrics[name]) for f in result.folds]
        table.add_row(name, *cells, _pm(result.mean[name], result.std[name], metric.precision))
    table.add_row("fit time (s)", *(f"{f.fit_time:.1f}" for f in result.folds),
                  _pm(result.mean["fit_time"], result.std["fit_time"], 1))
    table.add_row("test chips", *(str(f.n_test) for f in result.folds), "")
    return table


def cv_comparison_table(results, title: str):
    """Side by side: mean ± std of each metric under each split, and how much each split overstates.

    The reference is the first grouped split given (date or scene); a leaky split's
    excess over it is the optimism that near-duplicate chips on both sides buy.
    """
    from rich.table import Table

    from competition.cv import LEAKY_CV_KINDS
    from competition.scoring import METRICS

    reference = next((r for r in results if r.cv not in LEAKY_CV_KINDS), results[0])
    others = [r for r in results if r is not reference]
    table = Table(title=title, caption=f"difference: the split's mean minus the {reference.cv} split's mean")
    table.add_column("metric")
    for r in results:
        table.add_column(f"{r.cv} ({r.n_splits} folds)", justify="right")
    for r in others:
        table.add_column(f"{r.cv} − {reference.cv}", justify="right")
    for name, metric in METRICS.items():
        cells = [_pm(r.mean[name], r.std[name], metric.precision) for r in results]
        cells += [f"{r.mean[name] - reference.mean[name]:+.{metric.precision}f}" for r in others]
        table.add_row(name, *cells)
    return table


@app.command("list")
def list_command(json_out: JsonOpt = False) -> None:
    """List the baselines that `ships cv`, `ships baseline run` and `ships demo` accept."""
    from rich.table import Table

    from baselines.registry import BASELINES

    if json_out:
        echo_json([{"name": b.name, "module": b.module, "description": b.description} for b in BASELINES.values()])
        return
    table = Table(title="Baselines")
    for col in ("name", "module", "description"):
        table.add_column(col)
    for b in BASELINES.values():
        table.add_row(b.name, b.module, b.description)
    console().print(table)


@dataclass(frozen=True)
class BaselineOutcome:
    """What one baseline run produced."""

    name: str
    cv: object
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


def run_baseline(ws, name: str, *, tracker, submit: bool = False, save: Path | None = None, cv: str = "date",
                 folds: int = 5, seed: int | None = None, n_jobs: int = 1, params: dict | None = None,
                 con=None) -> BaselineOutcome:
    """Grouped CV, fit on all of train, predict the test ids, write (and submit) the file, log to MLflow.

    The submission goes to ``<workspace>/baseline_submissions/NAME.csv``; with ``submit`` it is
    scored through :func:`leaderboard.submit.submit_file` as team ``baseline-NAME``.  Only the
    public part of the workspace is read.
    """
    from joblib import parallel_config

    from baselines.registry import make_baseline

    seed = ws.config.seed if seed is None else seed
    con = con or console(stderr=True)
    train = _load_train(ws)
    _check_folds(folds, train, [cv])
    params = params or {}
    result = _cross_validate(make_baseline(name, random_state=seed, **params), train, cv, folds, seed, n_jobs, con,
                             name)
    con.print(f"{name}: fitting on all {len(train.y)} train chips ...")
    estimator = make_baseline(name, random_state=seed, **params)
    start = time.perf_counter()
    with parallel_config(n_jobs=n_jobs):  # an inner grouped search uses the same number of processes
        estimator.fit(train.X, train.y, groups=train.groups)
    fit_time = time.perf_counter() - start
    path = _write_submission(ws, name, estimator)
    public = submission_id = None
    file_sha256 = ""
    if submit:
        from leaderboard.submit import submit_file

        scored = submit_file(ws, path, team=f"baseline-{name}", message=f"{name} baseline ({cv} CV "
                             f"ROC AUC {result.mean['roc_auc']:.4f})", kind="baseline")
        public, submission_id, file_sha256 = scored.public, scored.record.id, scored.file_sha256
    if save is not None:
        from baselines.persist import save_model

        save_model(estimator, save)
    run_id = tracker.log_baseline(
        name, estimator=estimator, cv=result, public=public, submission=path, file_sha256=file_sha256,
        team=f"baseline-{name}" if submit else "", split_hash=ws.split_hash, metrics={"fit_time": fit_time},
        params={"seed": seed}, X_example=train.X[:2])
    return BaselineOutcome(name, result, fit_time, path, public, submission_id, file_sha256, run_id, save)


def _write_submission(ws, name: str, estimator) -> Path:
    """Predict the test chips and write ``id,ship`` to ``<workspace>/baseline_submissions/NAME.csv``."""
    import numpy as np
    import pandas as pd

    test = ws.load_test()
    y_proba = np.clip(np.asarray(estimator.predict_proba(test.X))[:, 1].astype(np.float64), 0.0, 1.0)
    folder = ws.root / "baseline_submissions"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.csv"
    tmp = folder / f".{name}.csv.tmp"
    pd.DataFrame({"id": test.ids, "ship": y_proba}).to_csv(tmp, index=False, float_format="%.8g", lineterminator="\n")
    os.replace(tmp, path)
    return path


@app.command("run")
def run_command(
    name: ModelArg,
    workspace: WorkspaceOpt,
    submit: Annotated[bool, typer.Option("--submit", help="Score the file through the teams' path, as team baseline-NAME.")] = False,
    save: Annotated[Optional[Path], typer.Option("--save", help="Also save the fitted model here (joblib), for `ships detect --model PATH`.")] = None,
    cv: Annotated[CVKind, typer.Option("--cv", help="Split of the cross-validation reported with the run.")] = CVKind.date,
    folds: FoldsOpt = 5,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = 1,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a baseline: CV, fit on all of train, predict the test ids, write (and --submit) the submission."""
    from baselines.registry import make_baseline

    params = parse_params(param, weights)
    make_baseline(name, **params)  # an unknown name or parameter fails here, before any data is read
    _check_weights(name, params, weights)
    ws = open_workspace(workspace)
    tracker = make_tracker(ws, tracking_uri)
    outcome = run_baseline(ws, name, tracker=tracker, submit=submit, save=save, cv=cv.value, folds=folds, seed=seed,
                           n_jobs=n_jobs, params=params)
    if json_out:
        echo_json(outcome.to_dict())
        return
    out = console()
    out.print(cv_fold_table(outcome.cv, f"{name}: {outcome.cv.splitter}"))
    out.print(f"Fitted on all train chips in {outcome.fit_time:.1f} s; submission written to {outcome.submission}")
    if outcome.public is not None:
        out.print(f"Submitted as team baseline-{name} (submission {outcome.submission_id}): "
                  f"Public ROC AUC {public_auc(outcome.public)}")
    else:
        out.print("Not submitted; re-run with --submit to score it as team baseline-" + name)
    if outcome.model_path is not None:
        out.print(f"Model saved to {outcome.model_path}")
    out.print(f"MLflow run {outcome.run_id} in {tracker.uri}")
