"""The ``ships`` command line: one typer app per command group, combined here."""

from __future__ import annotations

from typing import Annotated

import typer

from ships._common import ShipsGroup
from ships.baselines import app as baseline_app
from ships.baselines import cv_app
from ships.config import app as config_app
from ships.data import app as data_app
from ships.demo import app as demo_app
from ships.detect import app as detect_app
from ships.init import app as init_app
from ships.leaderboard import app as leaderboard_app
from ships.mlflow_ui import app as ui_app
from ships.organiser import submission_app
from ships.scoring import app as scoring_app
from ships.serve import app as serve_app
from ships.team import app as team_app

__all__ = ["app", "main"]

app = typer.Typer(
    cls=ShipsGroup,
    name="ships",
    help="ShipsNet competition harness: locked test set, scoring, baselines, MLflow and a leaderboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(init_app)
app.add_typer(config_app, name="config")
app.add_typer(team_app)
app.add_typer(scoring_app)
app.add_typer(leaderboard_app)
app.add_typer(submission_app, name="submission")
app.add_typer(detect_app)
app.add_typer(serve_app)
app.add_typer(cv_app)
app.add_typer(baseline_app, name="baseline")
app.add_typer(ui_app, name="ui")
app.add_typer(demo_app)


def _version(value: bool) -> None:
    if value:
        from ships import __version__

        typer.echo(f"ships {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """ShipsNet competition harness: locked test set, scoring, baselines, MLflow and a leaderboard."""


def main() -> None:
    """Console-script entry point."""
    app()
