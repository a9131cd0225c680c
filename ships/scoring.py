"""``ships validate``, ``ships score`` and its alias ``ships submit``: the light path (no tensorflow or mlflow).

Where they act follows one rule (:data:`ships._common.PRECEDENCE`): ``--workspace`` or
``$SHIPS_WORKSPACE``, the organiser's workspace, locally; else a login, the competition
server; else ``./workspace``.  A team's ``ships validate`` checks a file locally against the
downloaded test ids, with the server's messages; ``--remote`` asks the server instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import (PRECEDENCE, JsonOpt, TargetWorkspaceOpt, TrackingOpt, echo_json, fail, find_login,
                           open_workspace, resolve_target)

app = typer.Typer()

FileArg = Annotated[Path, typer.Argument(help="Submission CSV: header id,ship and one row per test id.")]
DEFAULT_DATA = Path("shipsnet-data")  # where 'ships download' unpacks by default


@app.command(help="Check a submission file without scoring or storing it (never counts to the quota). "
                  "A team checks it against the downloaded test ids (--data, default ./shipsnet-data); "
                  "the organiser against the workspace (--workspace); --remote asks the server.\n\n" + PRECEDENCE)
def validate(
    file: FileArg,
    workspace: TargetWorkspaceOpt = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="A downloaded data folder ('ships download'); its "
                                                 "test.csv gives the test ids (default: ./shipsnet-data).")] = None,
    remote: Annotated[bool, typer.Option("--remote", help="Post the file to the server's /api/validate instead "
                                         "of checking it here (needs a login).")] = False,
) -> None:
    if remote:
        _validate_remote(file, workspace, data)
        return
    if data is not None and workspace is not None:
        fail("--data and --workspace both given; pass --data DIR (a downloaded folder) or --workspace DIR, not both")
    target = resolve_target(workspace, somewhere=False)
    folder = data or _default_data(target)
    if folder is not None:
        _validate_data(file, folder)
        return
    from leaderboard.submit import read_and_validate

    ws = open_workspace(target.workspace)
    y_proba, _ = read_and_validate(ws, file)
    typer.echo(f"{file}: valid, {len(y_proba)} rows for {len(y_proba)} test ids.")


def _default_data(target) -> Path | None:
    """The downloaded folder a team validates against when neither --data nor a workspace is named."""
    if target.workspace is not None and not target.fallback:
        return None  # --workspace or $SHIPS_WORKSPACE: the organiser's
    if target.remote or DEFAULT_DATA.is_dir() or not target.workspace.exists():
        return DEFAULT_DATA
    return None  # ./workspace, with no login and no download: the organiser's default


def _validate_data(file: Path, folder: Path) -> None:
    from competition.submission import read_submission_file, read_test_ids
    from competition.validation import validate_submission
    from ships.remote import MAX_UPLOAD_BYTES

    test_csv = folder / "test.csv"
    if not folder.is_dir():
        fail(f"{folder}: no downloaded data there; run 'ships download' (a team) or pass --data DIR, "
             "or --workspace DIR (the organiser)")
    ids = read_test_ids(test_csv)
    y_proba = validate_submission(read_submission_file(file, max_bytes=MAX_UPLOAD_BYTES), ids)
    typer.echo(f"{file}: valid, {len(y_proba)} rows for {len(ids)} test ids (checked here against {test_csv}; "
               "nothing was sent).")


def _validate_remote(file: Path, workspace: Path | None, data: Path | None) -> None:
    from ships.remote import Client, read_upload

    if workspace is not None or data is not None:
        fail("--remote asks the server, which knows its own test ids; drop --workspace and --data")
    login = find_login()
    if login is None:
        fail("--remote needs a login; run 'ships login --url URL --token TOKEN' or set SHIPS_URL and SHIPS_TOKEN")
    with Client(login.url, login.token) as client:
        answer = client.validate(read_upload(file), file.name)
    typer.echo(f"{file}: valid on {login.url}, {answer.get('rows')} rows; it was not scored or stored and does "
               "not count to the quota.")


@app.command(help="Submit a file: validate, score on the Public part and record it (Private scores stay hidden). "
                  "A team's file goes to the server it logged into; the organiser scores locally with "
                  "--workspace.\n\n" + PRECEDENCE)
def score(
    file: FileArg,
    workspace: TargetWorkspaceOpt = None,
    team: Annotated[Optional[str], typer.Option("--team", help="Team the submission is recorded for (local scoring "
                                                "only; default 'local'); an unknown team is refused unless --create.")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create --team if it does not exist yet (local scoring; "
                                         "a typo would otherwise become a new, ranked team).")] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="A note stored with the submission.")] = "",
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the scored submission as an MLflow run "
                                        "(local scoring; the server logs its own).")] = True,
    json_out: JsonOpt = False,
) -> None:
    target = resolve_target(workspace)
    if target.remote:
        if team is not None:
            fail("--team is for the organiser's workspace; a team submits as the team of its token "
                 f"({target.login.source}); drop --team, or pass --workspace DIR to score locally")
        _submit_remote(file, message, target.login, json_out)
        return
    from leaderboard.submit import accept_submission, open_store, receipt

    ws = open_workspace(target.workspace)
    if team is not None and not create:
        _check_team_exists(ws, team)
    result = accept_submission(ws, file, team=team or "local", message=message, tracking_uri=tracking_uri,
                               track=track)
    with open_store(ws) as store:
        answer = receipt(store, result, ws)
    if json_out:
        echo_json(answer)
    else:
        typer.echo(f"Scored in workspace {ws.root}")
        print_receipt(answer, ws.rules)


app.command("submit", help="Alias of 'ships score' (Kaggle's 'submit -f FILE -m MSG'): "
                           "submit FILE to the server you logged into.\n\n" + PRECEDENCE)(score)


def _check_team_exists(ws, team: str) -> None:
    """Refuse an unknown --team: a typo would silently make a new team, ranked."""
    from competition.errors import StoreError, StoreUnavailableError
    from leaderboard.submit import open_store

    with open_store(ws) as store:
        try:
            store.team(team)
        except StoreUnavailableError:
            raise
        except StoreError:
            fail(f"unknown team {team!r} in workspace {ws.root}; check the name with 'ships team list', "
                 "or pass --create to create it")


def _submit_remote(file: Path, message: str, login, json_out: bool) -> None:
    from ships.remote import Client, read_upload
    from ships.remote_views import rules_of

    data = read_upload(file)
    with Client(login.url, login.token) as client:
        rules = rules_of(client.me())
        answer = client.submit(data, file.name, message)
    if json_out:
        echo_json(answer)
        return
    typer.echo(f"Submitted to {login.url} as team {answer.get('team')}")
    print_receipt(answer, rules)
    if answer.get("url"):
        typer.echo(f"Details: {login.url}{answer['url']}")


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
    for warning in answer.get("warnings", []):
        typer.echo(f"Warning: {warning}.")