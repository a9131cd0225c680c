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
    seed: Annotated[int, typer.Option(help="Random seed of the split and the folds.")] = 0,
    test_size: Annotated[float, typer.Option("--test-size", help="Fraction of chips in the locked test set (whole groups).")] = 0.2,
    public_fraction: Annotated[float, typer.Option("--public-fraction", help="Fraction of test ids scored on the Public leaderboard.")] = 0.3,
    group_by: Annotated[GroupBy, typer.Option("--group-by", help="Leakage unit: acquisition date or scene id.")] = GroupBy.date,
    folds: Annotated[int, typer.Option("--folds", help="Number of official grouped CV folds over train.")] = 5,
    daily_quota: Annotated[int, typer.Option("--daily-quota", min=1, help="Valid submissions per team per UTC day.")] = 5,
    data: Annotated[Optional[Path], typer.Option("--data", help="Chips to use (folder, shipsnet.json or zip); default: the bundled ones.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing workspace (its submissions are lost).")] = False,
) -> None:
    """Create a competition workspace: public files, the locked solution, an empty leaderboard."""
    from competition.data import load_chips
    from competition.workspace import init_workspace

    chips = load_chips(data) if data is not None else None
    ws = init_workspace(workspace, chips=chips, seed=seed, test_size=test_size, public_fraction=public_fraction,
                        group_by=group_by.value, n_splits=folds, daily_quota=daily_quota, force=force)
    n_train = sum(1 for _ in (ws.public_dir / "train").iterdir())
    n_test = len(ws.test_ids())
    typer.echo(f"Created workspace {ws.root}: {n_train} train chips, {n_test} test chips "
               f"({ws.config.public_fraction:.0%} Public), grouped by {ws.config.group_by}, split {ws.split_hash}.")
    typer.echo(f"Teams get {ws.public_dir}/ ; keep {ws.private_dir}/ to yourself.")
