"""``ships demo``: the whole competition on the bundled real chips, in a few minutes.

Creates (or reuses) a workspace, runs and submits the classic baselines through the path
teams use, logs everything to MLflow, and prints the leaderboard next to the grouped CV.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import TrackingOpt, WorkspaceOpt

__all__ = ["app", "DEMO_BASELINES", "KERAS_BASELINES"]

app = typer.Typer()

DEMO_BASELINES = ("dummy", "logreg", "knn", "xgboost")
KERAS_BASELINES = ("cnn", "vgg16")


def _workspace(root: Path, seed: int, con):
    """Open the workspace at ``root``, or create it from the bundled chips when there is none."""
    from competition.create import init_workspace
    from competition.workspace import Workspace

    if root.exists():
        ws = Workspace.open(root)
        con.print(f"Reusing workspace {ws.root} (split {ws.split_hash}).")
        return ws
    con.print(f"Creating workspace {root} from the 4000 bundled ShipsNet chips ...")
    ws = init_workspace(root, seed=seed)
    con.print(f"Created {ws.root}: split {ws.split_hash}, {ws.config.test_size:.0%} of the chips locked as the test set.")
    return ws


@app.command()
def demo(
    workspace: WorkspaceOpt,
    with_keras: Annotated[bool, typer.Option("--with-keras", help="Also run the Keras baselines (cnn, vgg16); slow on a CPU.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of a newly created workspace.")] = 0,
    n_jobs: Annotated[Optional[int], typer.Option("--n-jobs", help="Folds trained at once (default: one per CPU core, at most 5).")] = None,
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log every run to MLflow (default) or not.")] = True,
) -> None:
    """Run the competition end to end on the real chips: workspace, baselines, submissions, leaderboard, MLflow."""
    from ships.baselines import console, make_tracker

    con = console()
    started = time.perf_counter()
    ws = _workspace(Path(workspace), seed, con)
    tracker = make_tracker(ws, tracking_uri) if track else None
    names = DEMO_BASELINES + (KERAS_BASELINES if with_keras else ())
    jobs = n_jobs if n_jobs is not None else min(os.cpu_count() or 1, 5)
    outcomes = []
    for k, name in enumerate(names, 1):
        con.rule(f"[{k}/{len(names)}] baseline {name}")
        outcome = _run_one(ws, name, tracker, jobs, con)
        if outcome is None:
            continue
        m = ws.rules.metric
        con.print(f"{name}: {outcome.cv.cv} CV {m} {outcome.cv.mean[m]:.4f} ± {outcome.cv.std[m]:.4f}, "
                  f"Public {m} {outcome.public[m]:.4f}, fit {outcome.fit_time:.1f} s")
        outcomes.append(outcome)
    con.rule("results")
    con.print(_board_table(ws, outcomes))
    con.print(f"Done in {time.perf_counter() - started:.0f} s.  Next:")
    con.print(f"  ships leaderboard --workspace {ws.root}      the Public leaderboard")
    con.print(f"  ships ui mlflow --workspace {ws.root}        every run in the MLflow UI (http://127.0.0.1:5000)"
              if not tracking_uri and tracker is not None
              else f"  MLflow runs are in {tracker.uri}" if tracker is not None else "  (nothing was logged to MLflow)")
    con.print(f"  ships serve --workspace {ws.root}            the leaderboard web view")
    con.print(f"  ships score FILE --workspace {ws.root} --team NAME --create   score your own predictions")


def _run_one(ws, name: str, tracker, jobs: int, con):
    """One baseline of the demo, on the official folds and submitted through the teams' path.

    A Keras baseline that cannot start (no weights, no backend) is skipped.
    """
    from baselines.workflow import run_baseline
    from competition.errors import ModelError
    from ships.baselines import FoldBar, baseline_submitter

    keras = name in KERAS_BASELINES  # Keras trains with every core itself: its folds run one at a time
    done = _submitted(ws, name)
    if done is not None:
        con.print(f"{name}: already run and submitted in this workspace (submission {done}); reused, not run "
                  "again. `ships baseline run NAME --submit` runs it anew.")
        return None
    try:
        with FoldBar(con, f"{name}: CV on the official folds") as bar:
            return run_baseline(ws, name, tracker=tracker, submit=baseline_submitter(ws), n_jobs=1 if keras else jobs,
                                progress=bar, notify=con.print)
    except ModelError as exc:
        if not keras:
            raise
        con.print(f"[yellow]Skipped {name}:[/] {exc}", markup=True, highlight=False)
        return None


def _submitted(ws, name: str) -> int | None:
    """The id of the baseline's submission already stored in the workspace, if any."""
    from baselines.workflow import baseline_team
    from competition.errors import StoreError
    from leaderboard.submit import open_store

    with open_store(ws) as store:
        try:
            records = store.submissions(baseline_team(name))
        except StoreError:  # no such team yet
            return None
    return records[-1].id if records else None


def _board_table(ws, outcomes):
    """The Public leaderboard, each baseline with its grouped CV next to its Public score."""
    from rich.table import Table
    from rich.text import Text

    from baselines.workflow import baseline_team
    from leaderboard.submit import open_store

    by_team = {baseline_team(o.name): o for o in outcomes}
    store = open_store(ws)
    try:
        rows = store.leaderboard(private=False)
    finally:
        store.close()
    splits = sorted({o.cv.splitter for o in outcomes})
    rules = ws.rules
    metric = rules.metric
    table = Table(title=f"Public leaderboard ({metric}, {rules.direction}) with the grouped CV of each baseline",
                  caption=f"baselines take no rank; CV: {', '.join(splits) or 'none'}, train part only")
    for col, justify in (("rank", "right"), ("team", "left"), (f"Public {metric} [95% interval]", "right"),
                         (f"CV {metric} mean ± std", "right"), ("fit (s)", "right")):
        table.add_column(col, justify=justify)
    for row in rows:
        o = by_team.get(row.team)
        interval = "" if row.score_low is None else f" [{row.score_low:.4f}, {row.score_high:.4f}]"
        score = "n/a" if row.score is None else f"{row.score:.4f}{interval}"
        cv = "" if o is None else f"{o.cv.mean[metric]:.4f} ± {o.cv.std[metric]:.4f}"
        fit = "" if o is None else f"{o.fit_time:.1f}"
        table.add_row("-" if row.rank is None else str(row.rank), Text(row.team), score, cv, fit)
    return table
