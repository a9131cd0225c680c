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
    from leaderboard.submit import accept_submission, open_store, receipt

    ws = open_workspace(workspace)
    result = accept_submission(ws, file, team=team, message=message, tracking_uri=tracking_uri, track=track)
    with open_store(ws) as store:
        answer = receipt(store, result)
    if json_out:
        echo_json(answer)
    else:
        typer.echo(f"Scored in workspace {ws.root}")
        print_receipt(answer, ws.rules)


def print_receipt(answer: dict, rules) -> None:
    """The reply to a submission: the shown Public score, best or not, rank, and the quota left."""
    public, metric = answer["public"], rules.metric
    score, low, high = (public.get(metric + k) for k in ("", "_low", "_high"))
    interval = "" if low is None or high is None else f" [{rules.format_score(low)}, {rules.format_score(high)}]"
    best = "your best so far" if answer["best"] else "not your best"
    rank = "no rank (baseline)" if answer["rank"] is None else f"rank {answer['rank']} on the Public leaderboard"
    typer.echo(f"Submission {answer['id']} by {answer['team']}: Public {metric} {rules.format_score(score)}"
               f"{interval} (95% group-bootstrap interval; {rules.direction}), {best}; {rank}.")
    quota = answer["quota"]
    if quota["limit"] is not None:
        typer.echo(f"{quota['left']} of {quota['limit']} submissions left today; the quota resets at "
                   f"{quota['resets_at'][:16].replace('T', ' ')} UTC.")
