"""``ships init``: create the locked competition workspace."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import WorkspaceOpt

app = typer.Typer()


class GroupBy(str, Enum):
    date = "date"
    scene = "scene"


@app.command()
def init(
    workspace: WorkspaceOpt,
    seed: Annotated[Optional[int], typer.Option(
        help="Seed of the split and the folds (default: drawn at random and recorded in ships.toml).")] = None,
    test_size: Annotated[float, typer.Option("--test-size", help="Fraction of chips in the locked test set (whole groups).")] = 0.2,
    public_fraction: Annotated[float, typer.Option("--public-fraction", help="Fraction of test ids scored on the Public leaderboard.")] = 0.3,
    group_by: Annotated[GroupBy, typer.Option("--group-by", help="Leakage unit: acquisition date or scene id.")] = GroupBy.date,
    folds: Annotated[int, typer.Option("--folds", help="Number of official grouped CV folds over train.")] = 5,
    metric: Annotated[str, typer.Option("--metric", help="Primary metric of the leaderboard: roc_auc, log_loss, "
                                        "average_precision, brier_loss, accuracy, precision, recall or f1.")] = "roc_auc",
    daily_quota: Annotated[int, typer.Option("--daily-quota", help="Valid submissions per team per UTC day.")] = 5,
    deadline: Annotated[Optional[str], typer.Option(
        "--deadline", help="Last moment submissions are accepted, ISO 8601 (UTC unless an offset is given), "
                           "e.g. 2026-12-31T23:59:00Z.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Chips to use (folder, shipsnet.json or zip); default: the bundled ones.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing workspace (its submissions are lost).")] = False,
) -> None:
    """Create a competition workspace: public files, the locked solution, an empty leaderboard."""
    import secrets

    from competition.create import init_workspace
    from competition.data import load_chips

    seed = secrets.randbelow(2**31) if seed is None else seed
    settings = dict(test_size=test_size, public_fraction=public_fraction, group_by=group_by.value, n_splits=folds,
                    metric=metric, daily_quota=daily_quota)
    if deadline is not None:
        settings["deadline"] = deadline
    chips = load_chips(data) if data is not None else None
    ws = init_workspace(workspace, chips=chips, seed=seed, force=force, **settings)
    n_train = sum(1 for _ in (ws.public_dir / "train").iterdir())
    n_test = len(ws.test_ids())
    typer.echo(f"Created workspace {ws.root}: {n_train} train chips, {n_test} test chips "
               f"({ws.config.public_fraction:.0%} Public), grouped by {ws.config.group_by}, seed {ws.config.seed}, "
               f"split {ws.split_hash}.")
    typer.echo(f"Primary metric: {ws.rules.metric} ({ws.rules.direction}).")
    typer.echo(f"Teams get {ws.public_dir}/ ; keep {ws.private_dir}/ to yourself.")
