"""The organiser's controls over teams and submissions: rename, remove, a new token, invalidate.

``ships team rename|remove|reset-token`` join the ``ships team`` group; ``ships submission
invalidate`` records, append-only, that a submission no longer counts.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ships._common import JsonOpt, WorkspaceOpt, echo_json
from ships.leaderboard import _opened, team_app

__all__ = ["submission_app"]

submission_app = typer.Typer(no_args_is_help=True, help="The organiser's actions on one submission.")
NameArg = Annotated[str, typer.Argument(help="The team's name (case-insensitive).")]


@team_app.command("rename")
def team_rename(name: NameArg, new_name: Annotated[str, typer.Argument(help="Its new name: 1 to 64 printable "
                                                                        "characters, unique ignoring case.")],
                workspace: WorkspaceOpt) -> None:
    """Rename a team; its token, submissions and finals stay with it."""
    with _opened(workspace) as (_, store):
        team = store.rename_team(name, new_name)
    typer.echo(f"Team {name!r} is now {team.name!r}.")


@team_app.command("remove")
def team_remove(name: NameArg, workspace: WorkspaceOpt) -> None:
    """Remove a team that has no submission (submissions are kept: invalidate them instead)."""
    with _opened(workspace) as (_, store):
        store.remove_team(name)
    typer.echo(f"Team {name!r} removed.")


@team_app.command("reset-token")
def team_reset_token(name: NameArg, workspace: WorkspaceOpt, json_out: JsonOpt = False) -> None:
    """Give a team a new secret token (the old one stops working) and print it, once."""
    with _opened(workspace) as (_, store):
        team = store.team(name)
        token = store.reset_token(team.name)
    if json_out:
        echo_json({"team": team.name, "token": token})
        return
    typer.echo(f"New token of team {team.name!r} (the old one no longer works; it will not be shown again):")
    typer.echo(token)


@submission_app.command("invalidate")
def invalidate(
    submission_id: Annotated[int, typer.Argument(help="The submission's id (see `ships submissions`).",
                                                 min=1, max=2**63 - 1)],
    reason: Annotated[str, typer.Option("--reason", help="Why it no longer counts; shown with the submission.")],
    workspace: WorkspaceOpt,
    json_out: JsonOpt = False,
) -> None:
    """Record that a submission no longer counts: it leaves the leaderboards and cannot be a final."""
    with _opened(workspace) as (_, store):
        record = store.invalidate(submission_id, reason)
    if json_out:
        echo_json(record.to_dict())
        return
    typer.echo(f"Submission {record.id} of {record.team} invalidated: {record.invalidated}. "
               "It no longer counts on any leaderboard; `ships rescore` keeps it out too.")
