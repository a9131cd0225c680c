"""``ships validate`` and ``ships score``: the light path (no tensorflow, xgboost or mlflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ships._common import JsonOpt, TrackingOpt, WorkspaceOpt, echo_json, open_workspace

app = typer.Typer()

FileArg = Annotated[Path, typer.Argument(help="Submission CSV: header id,ship and one row per test id.")]


@app.command()
def validate(file: FileArg, workspace: WorkspaceOpt) -> None:
    """Check a submission file without scoring or storing it."""
    from leaderboard.submit import read_and_validate

    ws = open_workspace(workspace)
    y_proba, _ = read_and_validate(ws, file)
    typer.echo(f"{file}: valid, {len(y_proba)} rows for {len(y_proba)} test ids.")


@app.command()
def score(
    file: FileArg,
    workspace: WorkspaceOpt,
    team: Annotated[str, typer.Option("--team", help="Team the submission is recorded for (created if new).")] = "local",
    message: Annotated[str, typer.Option("--message", "-m", help="A note stored with the submission.")] = "",
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the scored submission as an MLflow run.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Validate, score on the Public part, and record a submission (Private scores stay hidden)."""
    from leaderboard.submit import accept_submission

    ws = open_workspace(workspace)
    result = accept_submission(ws, file, team=team, message=message, tracking_uri=tracking_uri, track=track)
    if json_out:
        echo_json({"id": result.record.id, "team": team, "file_sha256": result.file_sha256, "public": result.public})
    else:
        print_public(result.public, title=f"Submission {result.record.id} by {team}: Public score")


def print_public(public: dict, title: str) -> None:
    """Print the Public metrics with their group-bootstrap intervals as a table."""
    from rich.console import Console
    from rich.table import Table

    from competition.scoring import METRICS

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% interval (group bootstrap)", justify="right")
    for metric in METRICS.values():
        v, lo, hi = (public.get(metric.name + s) for s in ("", "_low", "_high"))
        digits = metric.precision
        interval = "" if lo is None else f"[{lo:.{digits}f}, {hi:.{digits}f}]"
        table.add_row(metric.name, "n/a" if v is None else f"{v:.{digits}f}", interval)
    Console().print(table)
    typer.echo(f"confusion at 0.5: tn={public['tn']} fp={public['fp']} fn={public['fn']} tp={public['tp']} "
               f"({public['n']} Public chips)")
