"""Shared pieces of the CLI: error mapping, the workspace option, output helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from competition.errors import ShipsError

__all__ = ["ShipsGroup", "WorkspaceOpt", "TargetWorkspaceOpt", "JsonOpt", "TrackingOpt", "PRECEDENCE", "Target",
           "default_workspace", "credentials_path", "server_url", "find_login", "resolve_target", "resolve_team_target",
           "open_workspace", "echo_json", "fail"]


class ShipsGroup(TyperGroup):
    """Click group that turns a library error into ``Error: ...`` on stderr and exit code 1."""

    def invoke(self, ctx):  # noqa: D102 - click API
        try:
            return super().invoke(ctx)
        except ShipsError as exc:
            fail(str(exc))


def fail(message: str) -> None:
    """Print ``Error: message`` to stderr and exit 1."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def default_workspace() -> Path:
    """``$SHIPS_WORKSPACE`` or ``./workspace`` (read here, at the CLI edge, only)."""
    return Path(os.environ.get("SHIPS_WORKSPACE", "workspace"))


WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        help="Competition workspace folder (default: $SHIPS_WORKSPACE or ./workspace).",
        default_factory=default_workspace,
        show_default=False,
    ),
]

PRECEDENCE = ("Where it acts: --workspace or $SHIPS_WORKSPACE: the organiser's workspace, locally; else a login "
              "($SHIPS_URL and $SHIPS_TOKEN, or the file 'ships login' writes): the competition server; "
              "else ./workspace.")

TargetWorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", show_default=False,
                 help="Act on this workspace, locally (the organiser's); without it, see 'Where it acts' above."),
]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]

TrackingOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        show_envvar=False,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the workspace's mlflow.db).",
    ),
]


def credentials_path() -> Path:
    """``$XDG_CONFIG_HOME/ships/credentials.toml``, by default ``~/.config/ships/credentials.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.environ.get("HOME") or Path.home(), ".config")
    return Path(base) / "ships" / "credentials.toml"


def server_url() -> str | None:
    """The server's address without needing a token (public routes): ``$SHIPS_URL``, else the stored login's."""
    from ships.remote import check_url, read_credentials

    if os.environ.get("SHIPS_URL"):
        return check_url(os.environ["SHIPS_URL"], "SHIPS_URL")
    stored = read_credentials(credentials_path())
    return None if stored is None else check_url(stored["url"], str(credentials_path()))


def find_login():
    """The team's server and token: ``$SHIPS_URL`` and ``$SHIPS_TOKEN`` over the credentials file; None if neither.

    A token is only ever sent to the server it was stored or given with: ``$SHIPS_URL`` alone
    takes the file's token only when the file names the same server.
    """
    from ships.remote import Login, RemoteError, check_url, read_credentials

    path = credentials_path()
    stored = read_credentials(path)
    env_url, env_token = os.environ.get("SHIPS_URL") or None, os.environ.get("SHIPS_TOKEN") or None
    if env_url is None and env_token is None:
        return None if stored is None else Login(check_url(stored["url"], str(path)), stored["token"], str(path))
    url = check_url(env_url, "SHIPS_URL") if env_url else None
    if url is None:
        if stored is None:
            raise RemoteError("SHIPS_TOKEN is set but no server address is known; set SHIPS_URL too, or run "
                              "'ships login --url URL'")
        return Login(check_url(stored["url"], str(path)), env_token, f"SHIPS_TOKEN and {path}")
    if env_token is None:
        if stored is None or check_url(stored["url"], str(path)) != url:
            raise RemoteError(f"SHIPS_URL is set ({url}) but no token for it; set SHIPS_TOKEN too, or run "
                              f"'ships login --url {url} --token TOKEN'")
        return Login(url, stored["token"], f"SHIPS_URL and {path}")
    return Login(url, env_token, "SHIPS_URL and SHIPS_TOKEN")


class Target:
    """Where a command acts: a local workspace folder or a competition server (a login).

    ``fallback`` is True for ``./workspace`` taken because nothing else was named.
    """

    def __init__(self, workspace: Path | None = None, login=None, fallback: bool = False):
        self.workspace, self.login, self.fallback = workspace, login, fallback

    @property
    def remote(self) -> bool:
        return self.login is not None


def resolve_target(workspace: Path | None, *, somewhere: bool = True) -> Target:
    """The one precedence rule (:data:`PRECEDENCE`), read here, at the CLI edge.

    ``somewhere``: fail when nothing was named, no one is logged in and there is no
    ``./workspace`` either (a team that has not logged in, or has logged out), saying what each
    kind of user does; ``ships validate`` passes False, having a downloaded folder to try.
    """
    if workspace is not None:
        return Target(workspace=workspace)
    if os.environ.get("SHIPS_WORKSPACE"):
        return Target(workspace=Path(os.environ["SHIPS_WORKSPACE"]))
    login = find_login()
    if login is not None:
        return Target(login=login)
    if somewhere and not Path("workspace").is_dir():
        fail("not logged in to a competition server, and no workspace at ./workspace: a team runs "
             "'ships login --url URL' first; an organiser passes --workspace DIR (or creates one with 'ships init')")
    return Target(workspace=Path("workspace"), fallback=True)


def resolve_team_target(workspace: Path | None, team: str | None, command: str) -> Target:
    """:func:`resolve_target` for a command about one team: the organiser names it, a team's login is it."""
    target = resolve_target(workspace)
    if target.remote and team is not None:
        fail(f"--team is the organiser's (with --workspace); logged in ({target.login.source}) you act as your "
             f"own team: run 'ships {command}' without --team")
    if not target.remote and team is None:
        raise typer.BadParameter(f"missing; the organiser names the team with a workspace ({target.workspace}); "
                                 "a team logs in first ('ships login --url URL --token TOKEN')", param_hint="'--team'")
    return target


def open_workspace(path: Path):
    """Open an existing workspace (imported lazily to keep ``--help`` fast)."""
    from competition.workspace import Workspace

    return Workspace.open(path)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))
