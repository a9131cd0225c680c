"""Teams, quotas, leaderboards, finals, finalize and rescore on the command line.

``app`` holds ``ships status``, ``leaderboard``, ``submissions``, ``select``, ``finalize``
and ``rescore``, and the ``ships team`` group (``team_app``: ``add``, ``list``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ships._common import (PRECEDENCE, JsonOpt, TargetWorkspaceOpt, TrackingOpt, WorkspaceOpt, echo_json, fail,
                           open_workspace, resolve_target, resolve_team_target)

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["app", "team_app"]

app = typer.Typer()
team_app = typer.Typer(no_args_is_help=True, help="Create and list the teams of the competition.")
app.add_typer(team_app, name="team")

OrganiserTeamOpt = Annotated[Optional[str], typer.Option("--team", "-t", help="Team name (case-insensitive); the "
                                                         "organiser's, with a workspace. A team acts as itself.")]
_TIE_NOTE = "≈ marks a team whose 95% group-bootstrap interval overlaps the team ranked just above (a statistical tie)."


@contextmanager
def _opened(workspace) -> Iterator[tuple]:
    """The workspace and its store, closed on exit."""
    from leaderboard.submit import open_store

    ws = open_workspace(workspace)
    with open_store(ws) as store:
        yield ws, store


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _safe(value) -> str:
    """``value`` as text a terminal shows and never obeys: control and invisible characters escaped (``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(value))


def _t(value) -> Text:
    """Literal text for a table cell (team names, file names and messages are never read as markup or escapes)."""
    from rich.text import Text

    return Text("" if value is None else _safe(value))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"


def _score(score, low, high) -> tuple[str, str]:
    if score is None:
        return "n/a", ""
    return f"{score:.4f}", "" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


@team_app.command("add")
def team_add(
    name: Annotated[str, typer.Argument(help="Team name: 1 to 64 printable characters, unique ignoring case.")],
    workspace: WorkspaceOpt,
    json_out: JsonOpt = False,
) -> None:
    """Create a team and print its secret submission token, once."""
    with _opened(workspace) as (_, store):
        token = store.add_team(name)
        if json_out:
            echo_json({"team": name, "token": token})
            return
        typer.echo(f"Team {name!r} created. Its submission token (keep it secret; it will not be shown again):")
        typer.echo(token)


@team_app.command("list")
def team_list(workspace: WorkspaceOpt, json_out: JsonOpt = False) -> None:
    """List the teams and baselines."""
    from rich.table import Table

    with _opened(workspace) as (_, store):
        teams = store.list_teams()
        if json_out:
            echo_json([t.to_dict() for t in teams])
            return
        table = Table(title=_count(len(teams), "team"))
        for col in ("team", "kind", "token", "created"):
            table.add_column(col)
        for t in teams:
            table.add_row(_t(t.name), t.kind, "yes" if t.has_token else "no", _when(t.created_at))
        _console().print(table)


@app.command(help="Show how many submissions a team has used today (UTC), when its quota resets, and "
                  "(for a team) its finals.\n\n" + PRECEDENCE)
def status(workspace: TargetWorkspaceOpt = None, team: OrganiserTeamOpt = None, json_out: JsonOpt = False) -> None:
    target = resolve_team_target(workspace, team, "status")
    if target.remote:
        from ships.remote_views import show_status

        return show_status(target.login, json_out)
    with _opened(target.workspace) as (ws, store):
        q = store.quota_status(team)
        if json_out:
            echo_json(q.to_dict())
            return
        if q.limit is None:
            typer.echo(f"{_safe(q.team)}: {q.used} submissions on {q.day} (UTC); no daily limit.")
            return
        typer.echo(f"{_safe(q.team)}: {q.used} of {q.limit} submissions used on {q.day} (UTC), {q.left} left; "
                   f"the quota resets at {_when(q.resets_at)}.")
        if store.is_finalized():
            typer.echo("The competition is finalized: no more submissions are accepted.")


@app.command(help="Show the Public leaderboard (each team's best), or the Private one after finalize.\n\n" + PRECEDENCE)
def leaderboard(
    workspace: TargetWorkspaceOpt = None,
    private: Annotated[bool, typer.Option("--private", help="Show the Private leaderboard (after 'ships finalize' only).")] = False,
    json_out: JsonOpt = False,
) -> None:
    target = resolve_target(workspace)
    if target.remote:
        from ships.remote_views import show_leaderboard

        return show_leaderboard(target.login.url, private, json_out)
    with _opened(target.workspace) as (ws, store):
        rows = store.leaderboard(private=private)
        if json_out:
            echo_json({"board": "private" if private else "public", "finalized": store.is_finalized(),
                       "metric": ws.rules.metric, "greater_is_better": ws.rules.greater_is_better,
                       "rows": [r.to_dict() for r in rows]})
            return
        _print_board(rows, private, ws.rules)


def _print_board(rows, private: bool, rules) -> None:
    """A leaderboard as a rich table; Private adds the public rank and the move."""
    from rich.table import Table

    name = "Private" if private else "Public"
    if not rows:
        typer.echo(f"The {name} leaderboard is empty: no submissions yet.")
        return
    caption = _TIE_NOTE if any(r.tied for r in rows) else None
    table = Table(title=f"{name} leaderboard ({rules.metric}, {rules.direction})", caption=caption)
    for col, justify in (("rank", "right"), ("team", "left"), ("kind", "left"), ("score", "right"),
                         ("95% interval", "right"), ("entries", "right"), ("last submission", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # a long team name folds, never cut
    if private:
        table.add_column("public rank", justify="right")
        table.add_column("move", justify="right")
    for r in rows:
        rank = "-" if r.rank is None else f"{r.rank}{' ≈' if r.tied else ''}"
        cells = [rank, _t(r.team), r.kind, *_score(r.score, r.score_low, r.score_high), str(r.entries),
                 _when(r.last_submitted_at)]
        if private:
            cells += ["-" if r.public_rank is None else str(r.public_rank), "" if r.move is None else f"{r.move:+d}" if r.move else "0"]
        table.add_row(*cells)
    _console().print(table)


@app.command(help="List submissions with their Public scores (Private ones after finalize): a team its own, "
                  "newest first; the organiser every team's.\n\n" + PRECEDENCE)
def submissions(
    workspace: TargetWorkspaceOpt = None,
    team: Annotated[Optional[str], typer.Option("--team", "-t", help="Only this team's submissions (the "
                                                "organiser's, with a workspace).")] = None,
    json_out: JsonOpt = False,
) -> None:
    from rich.table import Table

    target = resolve_target(workspace)
    if target.remote:
        from ships.remote_views import show_submissions

        resolve_team_target(workspace, team, "submissions")
        return show_submissions(target.login, json_out)
    with _opened(target.workspace) as (_, store):
        records = store.submissions(team)
        if json_out:
            echo_json([r.to_dict() for r in records])
            return
        finalized = store.is_finalized()
        title = (_count(len(records), "submission") + (f" of {records[0].team}" if team and records else "")
                 + " (newest first)")
        table = Table(title=_t(title))
        cols = ["id", "team", "submitted", "file", "public", "95% interval"]
        cols += ["private", "95% interval "] if finalized else []
        for col in cols + ["final", "message"]:
            table.add_column(col, justify="right" if col in ("id", "public", "private") else "left", overflow="fold")
        for r in reversed(records):
            cells = [str(r.id), _t(r.team), _when(r.submitted_at), _t(r.filename),
                     *_score(r.public_score, r.public_low, r.public_high)]
            if finalized:
                cells += list(_score(r.private_score, r.private_low, r.private_high))
            state = "yes" if r.final else "" if r.invalidated is None else f"invalidated: {r.invalidated}"
            table.add_row(*cells, _t(state), _t(r.message))
        _console().print(table)


@app.command(help="Choose a team's final submissions (at most n_finals of ships.toml, 2 by default), replacing "
                  "any earlier choice: a team its own; the organiser any team's with --team.\n\n" + PRECEDENCE)
def select(
    ids: Annotated[list[int], typer.Argument(help="The team's final submission ids (at most n_finals of ships.toml, 2 by default).")],
    workspace: TargetWorkspaceOpt = None,
    team: OrganiserTeamOpt = None,
    json_out: JsonOpt = False,
) -> None:
    target = resolve_team_target(workspace, team, "select")
    if target.remote:
        from ships.remote_views import select_finals

        return select_finals(target.login, ids, json_out)
    with _opened(target.workspace) as (_, store):
        chosen = store.select_finals(team, ids)
        if json_out:
            echo_json({"team": chosen[0].team, "finals": [r.id for r in chosen]})
            return
        listed = ", ".join(f"{r.id} (Public {r.public_score:.4f})" for r in chosen)
        typer.echo(f"{_safe(chosen[0].team)}: final submissions {listed}. They replace any earlier choice.")


@app.command()
def finalize(
    workspace: WorkspaceOpt,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Add the revealed metrics to the submissions' "
                                        "MLflow runs (default) or not.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Close submissions, pick finals for teams that chose none, and reveal the Private leaderboard."""
    with _opened(workspace) as (ws, store):
        if not yes:
            typer.confirm("Finalize closes submissions for good and reveals the Private scores. Continue?",
                          abort=True, err=True)
        result = store.finalize()
        if json_out:
            echo_json(result.to_dict())
        else:
            typer.echo(f"Finalized at {_when(result.finalized_at)}: submissions are closed.")
            if result.auto_selected:
                typer.echo(f"Picked as finals ({ws.rules.n_finals} best Public) for teams that selected none: "
                           + ", ".join(map(str, result.auto_selected)))
            _print_board(result.leaderboard, private=True, rules=ws.rules)
        if track:
            _log_private(tracking_uri or ws.tracking_uri, store.submissions())


def _log_private(tracking_uri: str, records) -> None:
    """Add the now revealed metrics (all Public, all Private) to every submission's MLflow run (a warning on failure)."""
    from competition.errors import TrackingError
    from competition.tracking import Tracker

    rows = [{"team": r.team, "file_sha256": r.file_sha256, "private": r.private, "public": r.public,
             "submission_id": r.id,
             "split_hash": r.split_hash} for r in records if r.private]
    try:
        Tracker(tracking_uri).log_private(rows)
    except TrackingError as exc:
        typer.echo(f"Warning: finalized, but the Private scores were not logged to MLflow: {exc}", err=True)


@app.command()
def rescore(workspace: WorkspaceOpt, json_out: JsonOpt = False) -> None:
    """Recompute every stored submission from its file and report any rank that changed."""
    from leaderboard.rescore import rescore_submissions

    with _opened(workspace) as (ws, store):
        report = rescore_submissions(ws, store)
        if json_out:
            echo_json(report.to_dict())
            return
        typer.echo(f"Rescored {report.checked} submissions: {len(report.rescored)} changed"
                   + (f" ({', '.join(map(str, report.rescored))})" if report.rescored else "") + ".")
        for name, changes in (("Public", report.public_changes), ("Private", report.private_changes)):
            if changes is None:
                continue
            if not changes:
                typer.echo(f"No {name} rank changed.")
            for c in changes:
                typer.echo(f"{name} rank of {_safe(c.team)}: {c.before or '-'} -> {c.after or '-'}")
        for sid, problem in report.problems.items():
            typer.echo(f"Submission {sid} not rescored: {problem}", err=True)
        if report.problems:
            fail(f"{len(report.problems)} of {report.checked} submissions could not be rescored (listed above)")
