"""The ``ships`` command line: one typer app per command group, combined here."""

from __future__ import annotations

import typer

from competition.cli._common import ShipsGroup
from competition.cli.baselines import app as baseline_app
from competition.cli.baselines import cv_app
from competition.cli.data import app as data_app
from competition.cli.demo import app as demo_app
from competition.cli.detect import app as detect_app
from competition.cli.init import app as init_app
from competition.cli.leaderboard import app as leaderboard_app
from competition.cli.mlflow_ui import app as ui_app
from competition.cli.scoring import app as scoring_app
from competition.cli.serve import app as serve_app

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
app.add_typer(scoring_app)
app.add_typer(leaderboard_app)
app.add_typer(detect_app)
app.add_typer(serve_app)
app.add_typer(cv_app)
app.add_typer(baseline_app, name="baseline")
app.add_typer(ui_app, name="ui")
app.add_typer(demo_app)


def main() -> None:
    """Console-script entry point."""
    app()
