"""``ships cv`` and ``ships baseline list|run``: cross-validation, a team's own model, and the baselines.

``cv_app`` holds ``ships cv``; ``app`` is the ``ships baseline`` group.  The work is
:mod:`baselines.workflow` (grouped CV on the official folds unless told otherwise, fit on all
of train, predict the test ids, write the submission, log it all to MLflow); this module
parses the options, composes the packages (the submission goes through
:func:`leaderboard.submit.submit_file`, the teams' path), picks joblib's backend (local
processes, or a Dask cluster with ``--scheduler``), draws the progress and formats (the tables
are in :mod:`ships._cv_tables`).
"""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import JsonOpt, TrackingOpt, WorkspaceOpt, echo_json, open_workspace
from ships._cv_tables import cv_comparison_table, cv_fold_table, folds_line, out_of_fold_line, public_auc

__all__ = ["cv_app", "app", "make_tracker", "FoldBar", "baseline_submitter", "console", "parse_params", "on_cluster",
           "folds_line", "cv_fold_table", "cv_comparison_table", "public_auc"]

cv_app = typer.Typer()
TrackOpt = Annotated[bool, typer.Option("--track/--no-track", help="Log the runs to MLflow (default) or not.")]
app = typer.Typer(no_args_is_help=True, help="List the baselines, or run one: grouped CV, fit, predict, submit.")


class CVKind(str, Enum):
    date = "date"
    scene = "scene"
    stratified = "stratified"
    random = "random"


ModelArg = Annotated[str, typer.Argument(help="Baseline name (see `ships baseline list`).", show_default=False)]
CVModelArg = Annotated[str, typer.Argument(
    help="Baseline name (see `ships baseline list`), or the path of your own model: a .py file that defines "
         "make_estimator(random_state) (see submissions/example_model.py).", show_default=False)]
DataOpt = Annotated[Optional[Path], typer.Option(
    "--data", help="Your team's downloaded folder ('ships download': a copy of the workspace's public/) instead of "
                   "--workspace; MLflow runs go to DIR/mlflow.db unless --tracking-uri.")]
SchedulerOpt = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Run the folds and inner searches on the Dask cluster of this scheduler (tcp://HOST:PORT; "
                        "joblib's dask backend); the same seed gives the same numbers as a local run.")]
FoldsOpt = Annotated[Optional[int], typer.Option(
    "--folds", help="Number of CV folds (>= 2; at most the number of groups). Default: the workspace's official "
                    "folds (public/folds.csv); another number draws fresh folds, and the output says so.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the model and of fresh folds "
                                                "(default: the workspace's seed; the official folds are fixed).")]
CVHelp = ("date (by acquisition day), scene (by scene id), stratified or random (both leaky). Default: the "
          "workspace's grouping, on its official folds; another kind draws fresh folds, and the output says so.")
NJobsOpt = Annotated[Optional[int], typer.Option(
    "--n-jobs", help="Folds trained at once (joblib processes); -1: one per CPU core. Default: 1, or every worker "
                     "of the cluster with --scheduler.")]
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


class FoldBar:
    """A rich progress bar of CV folds; the library calls it as ``progress(done, total)``."""

    def __init__(self, con, description: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
                             TimeElapsedColumn(), console=con, transient=False)
        self._task = self._bar.add_task(description, total=None)

    def __enter__(self) -> "FoldBar":
        self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)


def baseline_submitter(ws):
    """``submit(path, team=..., message=...)`` for :func:`baselines.workflow.run_baseline`: the teams' path."""
    from functools import partial

    from leaderboard.submit import submit_file

    return partial(submit_file, ws, kind="baseline")


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
    from baselines.registry import BASELINES, make_baseline
    from competition.errors import ParameterError

    if weights is None or name not in BASELINES:  # a team's make_estimator gets weights=... if it takes it
        return
    if "weights" not in make_baseline(name, **params).get_params(deep=False):
        raise ParameterError(f"--weights applies to baselines that start from pretrained weights (vgg16), not {name!r}; "
                             "pass the baseline's own parameters with --param KEY=VALUE")


@contextmanager
def on_cluster(scheduler: str | None, n_jobs: int | None):
    """joblib's backend for the work and its n_jobs: the cluster of ``--scheduler`` (connected first), or local."""
    if scheduler is None:
        yield 1 if n_jobs is None else n_jobs
        return
    from competition.cluster import connect_scheduler, dask_backend

    client = connect_scheduler(scheduler, name="--scheduler")
    try:
        with dask_backend(client):
            yield -1 if n_jobs is None else n_jobs
    finally:
        client.close()


def _bar_label(name: str, plan, scheduler: str | None) -> str:
    return f"{name}: {plan.cv} CV" + (f" on {scheduler}" if scheduler else "")


def _open_source(ctx: typer.Context, workspace: Path, data: Path | None):
    """The team's folder of ``--data``, or the workspace; both given explicitly is an error."""
    from competition.errors import ParameterError
    from competition.public import PublicData

    if data is None:
        return open_workspace(workspace)
    if getattr(ctx.get_parameter_source("workspace"), "name", None) == "COMMANDLINE":  # typer may vendor click
        raise ParameterError("--data and --workspace both given; pass --data DIR (a downloaded folder) or --workspace "
                             "DIR, not both")
    return PublicData.open(data)


@cv_app.command("cv")
def cv_command(
    ctx: typer.Context,
    model: CVModelArg,
    workspace: WorkspaceOpt,
    data: DataOpt = None,
    cv: Annotated[Optional[list[CVKind]], typer.Option(
        "--cv", help=f"Split: {CVHelp} Give it twice to compare side by side, e.g. --cv random --cv date.")] = None,
    folds: FoldsOpt = None,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = None,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    scheduler: SchedulerOpt = None,
    predict_test: Annotated[Optional[Path], typer.Option(
        "--predict-test", help="Then fit on all of train and write the test ids' predictions to this file (id,ship): "
                               "a submission to check with `ships validate` and send with `ships score`.")] = None,
    tracking_uri: TrackingOpt = None,
    track: TrackOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Cross-validate a baseline or your own model on the official folds: metrics per fold, mean ± std, intervals."""
    from baselines.resolve import resolve_factory
    from baselines.workflow import cross_validate_estimator, fit_estimator, load_train_part, plan_cv, write_predictions

    params = parse_params(param, weights)
    name, make = resolve_factory(model, params=params, name="MODEL")  # fails here, before any data is read
    _check_weights(model, params, weights)
    ws = _open_source(ctx, workspace, data)
    con, runs = console(stderr=True), []
    with on_cluster(scheduler, n_jobs) as jobs:  # an unreachable scheduler fails here, before any work
        train = load_train_part(ws)
        kinds = list(dict.fromkeys(k.value for k in cv)) if cv else [None]
        plans = [plan_cv(ws, cv=kind, n_splits=folds, train=train, name="--folds") for kind in kinds]  # checked
        tracker = make_tracker(ws, tracking_uri) if track else None  # then the tracking store, before any fit
        for plan in plans:
            with FoldBar(con, _bar_label(name, plan, scheduler)) as bar:
                runs.append(cross_validate_estimator(ws, name, make, plan=plan, seed=seed, n_jobs=jobs, train=train,
                                                     tracker=tracker, progress=bar))
        if predict_test is not None:
            con.print(f"{name}: fitting on all {len(train.y)} train chips ...")
            estimator, _ = fit_estimator(ws, make, seed=seed, n_jobs=jobs, train=train)
            write_predictions(predict_test, ws.load_test(), estimator)
    _print_cv(name, runs, n_chips=len(train.y), tracker=tracker, scheduler=scheduler, predict_test=predict_test,
              json_out=json_out)


def _print_cv(name: str, runs, *, n_chips: int, tracker, scheduler, predict_test, json_out: bool) -> None:
    """The CV results as JSON or as tables, with the out-of-fold intervals and where the runs went."""
    if json_out:
        echo_json({"model": name, "n_chips": n_chips, "tracking_uri": None if tracker is None else tracker.uri,
                   "scheduler": scheduler,
                   "predict_test": None if predict_test is None else str(predict_test),
                   "results": [run.to_dict() for run in runs]})
        return
    out = console()
    for run in runs:
        out.print(cv_fold_table(run.result, f"ships cv {name} on {n_chips} train chips: {folds_line(run.result)}"))
        out.print(out_of_fold_line(run.result))
    if len(runs) > 1:
        out.print(cv_comparison_table([run.result for run in runs], f"{name}: how much each split says"))
    if predict_test is not None:
        out.print(f"Test predictions written to {predict_test}; check it with `ships validate {predict_test}`, "
                  f"then submit it with `ships score {predict_test}`")
    out.print("Not logged to MLflow (--no-track)" if tracker is None
              else f"MLflow runs {', '.join(run.run_id for run in runs)} in {tracker.uri}")


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


@app.command("run")
def run_command(
    name: ModelArg,
    workspace: WorkspaceOpt,
    submit: Annotated[bool, typer.Option("--submit", help="Score the file through the teams' path, as team baseline-NAME.")] = False,
    save: Annotated[Optional[Path], typer.Option("--save", help="Also save the fitted model here (joblib), for `ships detect --model PATH`.")] = None,
    cv: Annotated[Optional[CVKind], typer.Option("--cv", help=f"Split of the cross-validation reported with the run: {CVHelp}")] = None,
    folds: FoldsOpt = None,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = None,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    scheduler: SchedulerOpt = None,
    tracking_uri: TrackingOpt = None,
    track: TrackOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Run a baseline: CV, fit on all of train, predict the test ids, write (and --submit) the submission."""
    from baselines.registry import make_baseline
    from baselines.workflow import baseline_team, load_train_part, plan_cv, run_baseline

    params = parse_params(param, weights)
    make_baseline(name, **params)  # an unknown name or parameter fails here, before any data is read
    _check_weights(name, params, weights)
    ws = open_workspace(workspace)
    con = console(stderr=True)
    with on_cluster(scheduler, n_jobs) as jobs:  # an unreachable scheduler fails here, before any work
        train = load_train_part(ws)
        plan = plan_cv(ws, cv=None if cv is None else cv.value, n_splits=folds, train=train, name="--folds")
        tracker = make_tracker(ws, tracking_uri) if track else None  # after the folds are checked, before any fit
        with FoldBar(con, _bar_label(name, plan, scheduler)) as bar:
            outcome = run_baseline(ws, name, tracker=tracker, submit=baseline_submitter(ws) if submit else None,
                                   save=save, plan=plan, seed=seed, n_jobs=jobs, params=params, train=train,
                                   progress=bar, notify=con.print)
    if json_out:
        echo_json(outcome.to_dict())
        return
    out = console()
    out.print(cv_fold_table(outcome.cv, f"{name}: {folds_line(outcome.cv)}"))
    out.print(out_of_fold_line(outcome.cv))
    out.print(f"Fitted on all train chips in {outcome.fit_time:.1f} s; submission written to {outcome.submission}")
    if outcome.public is not None:
        out.print(f"Submitted as team {baseline_team(name)} (submission {outcome.submission_id}): "
                  f"Public ROC AUC {public_auc(outcome.public)}")
    else:
        out.print(f"Not submitted; re-run with --submit to score it as team {baseline_team(name)}")
    if outcome.model_path is not None:
        out.print(f"Model saved to {outcome.model_path}")
    out.print("Not logged to MLflow (--no-track)" if tracker is None else f"MLflow run {outcome.run_id} in {tracker.uri}")
