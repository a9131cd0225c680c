"""Shared pieces of the CLI: error mapping, the workspace option, output helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from competition.errors import ShipsError

__all__ = ["ShipsGroup", "WorkspaceOpt", "JsonOpt", "TrackingOpt", "default_workspace", "open_workspace", "echo_json", "fail"]


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


def open_workspace(path: Path):
    """Open an existing workspace (imported lazily to keep ``--help`` fast)."""
    from competition.workspace import Workspace

    return Workspace.open(path)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))
