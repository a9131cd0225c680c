"""``ships cv`` and ``ships baseline list|run``: cross-validation and the baselines.

``cv_app`` holds ``ships cv``; ``app`` is the ``ships baseline`` group.  The work is
:mod:`baselines.workflow` (grouped CV on the official folds unless told otherwise, fit on all
of train, predict the test ids, write the submission, log it all to MLflow); this module
parses the options, composes the packages (the submission goes through
:func:`leaderboard.submit.submit_file`, the teams' path), draws the progress and formats.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import JsonOpt, TrackingOpt, WorkspaceOpt, echo_json, open_workspace

__all__ = ["cv_app", "app", "make_tracker", "FoldBar", "baseline_submitter", "console", "parse_params",
           "folds_line", "cv_fold_table", "cv_comparison_table", "public_auc"]

cv_app = typer.Typer()
app = typer.Typer(no_args_is_help=True, help="List the baselines, or run one: grouped CV, fit, predict, submit.")


class CVKind(str, Enum):
    date = "date"
    scene = "scene"
    stratified = "stratified"
    random = "random"


ModelArg = Annotated[str, typer.Argument(help="Baseline name (see `ships baseline list`).", show_default=False)]
FoldsOpt = Annotated[Optional[int], typer.Option(
    "--folds", help="Number of CV folds (>= 2; at most the number of groups). Default: the workspace's official "
                    "folds (public/folds.csv); another number draws fresh folds, and the output says so.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the model and of fresh folds "
                                                "(default: the workspace's seed; the official folds are fixed).")]
CVHelp = ("date (by acquisition day), scene (by scene id), stratified or random (both leaky). Default: the "
          "workspace's grouping, on its official folds; another kind draws fresh folds, and the output says so.")
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
    from baselines.registry import make_baseline
    from competition.errors import ParameterError

    if weights is not None and "weights" not in make_baseline(name, **params).get_params(deep=False):
        raise ParameterError(f"--weights applies to baselines that start from pretrained weights (vgg16), not {name!r}; "
                             "pass the baseline's own parameters with --param KEY=VALUE")


@cv_app.command("cv")
def cv_command(
    model: ModelArg,
    workspace: WorkspaceOpt,
    cv: Annotated[Optional[list[CVKind]], typer.Option(
        "--cv", help=f"Split: {CVHelp} Give it twice to compare side by side, e.g. --cv random --cv date.")] = None,
    folds: FoldsOpt = None,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = 1,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cross-validate a baseline on the train part: per-fold and mean ± std of every metric."""
    from baselines.registry import make_baseline
    from baselines.workflow import cross_validate_baseline, load_train_part, plan_cv

    params = parse_params(param, weights)
    make_baseline(model, **params)  # an unknown name or parameter fails here, before any data is read
    _check_weights(model, params, weights)
    ws = open_workspace(workspace)
    train = load_train_part(ws)
    kinds = list(dict.fromkeys(k.value for k in cv)) if cv else [None]
    plans = [plan_cv(ws, cv=kind, n_splits=folds, train=train, name="--folds") for kind in kinds]
    tracker = make_tracker(ws, tracking_uri)
    con = console(stderr=True)
    runs = []
    for plan in plans:
        with FoldBar(con, f"{model}: {plan.cv} CV") as bar:
            runs.append(cross_validate_baseline(ws, model, plan=plan, seed=seed, n_jobs=n_jobs, params=params,
                                                train=train, tracker=tracker, progress=bar))
    if json_out:
        echo_json({"model": model, "n_chips": len(train.y), "tracking_uri": tracker.uri,
                   "results": [run.to_dict() for run in runs]})
        return
    out = console()
    for run in runs:
        out.print(cv_fold_table(run.result, f"ships cv {model} on {len(train.y)} train chips: {folds_line(run.result)}"))
    if len(runs) > 1:
        out.print(cv_comparison_table([run.result for run in runs], f"{model}: how much each split says"))
    out.print(f"MLflow runs {', '.join(run.run_id for run in runs)} in {tracker.uri}")


def folds_line(result) -> str:
    """The splitter and whether its folds are the workspace's official ones (and if not, why)."""
    if result.official_folds:
        return f"{result.splitter}, {result.n_splits} folds"
    reason = f": {result.fresh_folds_reason}" if result.fresh_folds_reason else ""
    return f"{result.splitter}, {result.n_splits} fresh folds, NOT the official ones{reason}"


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


@app.command("run")
def run_command(
    name: ModelArg,
    workspace: WorkspaceOpt,
    submit: Annotated[bool, typer.Option("--submit", help="Score the file through the teams' path, as team baseline-NAME.")] = False,
    save: Annotated[Optional[Path], typer.Option("--save", help="Also save the fitted model here (joblib), for `ships detect --model PATH`.")] = None,
    cv: Annotated[Optional[CVKind], typer.Option("--cv", help=f"Split of the cross-validation reported with the run: {CVHelp}")] = None,
    folds: FoldsOpt = None,
    seed: SeedOpt = None,
    n_jobs: NJobsOpt = 1,
    param: ParamOpt = None,
    weights: WeightsOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a baseline: CV, fit on all of train, predict the test ids, write (and --submit) the submission."""
    from baselines.registry import make_baseline
    from baselines.workflow import baseline_team, load_train_part, plan_cv, run_baseline

    params = parse_params(param, weights)
    make_baseline(name, **params)  # an unknown name or parameter fails here, before any data is read
    _check_weights(name, params, weights)
    ws = open_workspace(workspace)
    tracker = make_tracker(ws, tracking_uri)
    train = load_train_part(ws)
    plan = plan_cv(ws, cv=None if cv is None else cv.value, n_splits=folds, train=train, name="--folds")
    con = console(stderr=True)
    with FoldBar(con, f"{name}: {plan.cv} CV") as bar:
        outcome = run_baseline(ws, name, tracker=tracker, submit=baseline_submitter(ws) if submit else None,
                               save=save, plan=plan, seed=seed, n_jobs=n_jobs, params=params, train=train,
                               progress=bar, notify=con.print)
    if json_out:
        echo_json(outcome.to_dict())
        return
    out = console()
    out.print(cv_fold_table(outcome.cv, f"{name}: {folds_line(outcome.cv)}"))
    out.print(f"Fitted on all train chips in {outcome.fit_time:.1f} s; submission written to {outcome.submission}")
    if outcome.public is not None:
        out.print(f"Submitted as team {baseline_team(name)} (submission {outcome.submission_id}): "
                  f"Public ROC AUC {public_auc(outcome.public)}")
    else:
        out.print(f"Not submitted; re-run with --submit to score it as team {baseline_team(name)}")
    if outcome.model_path is not None:
        out.print(f"Model saved to {outcome.model_path}")
    out.print(f"MLflow run {outcome.run_id} in {tracker.uri}")
