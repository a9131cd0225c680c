"""``ships data``: import Kaggle's layouts and describe a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import JsonOpt, echo_json

app = typer.Typer(help="Import and describe ShipsNet chip data.", no_args_is_help=True)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A ShipsNet PNG folder, shipsnet.json, or a zip of either.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the chips to (Kaggle's PNG layout).")] = Path("shipsnet-data"),
) -> None:
    """Import chips from what Kaggle distributes into a PNG folder that `ships init --data` reads.

    Nothing is written unless the whole import succeeds: the folder is written beside OUT and
    moved into place once complete.
    """
    from competition.data import load_chips, write_folder
    from competition.errors import DataError

    if out.exists() or out.is_symlink():
        raise DataError(f"{out}: already exists; choose another --out or remove it")
    chips = load_chips(path)
    write_folder(chips, out)
    typer.echo(f"Imported {len(chips)} chips ({int(chips.y.sum())} ship) into {out}; data SHA-256 {chips.data_hash()}")


@app.command()
def info(
    path: Annotated[Optional[Path], typer.Argument(help="Chips to describe (default: the bundled ShipsNet chips).")] = None,
    group_by: Annotated[str, typer.Option("--group-by", help="Grouping to count: date or scene.")] = "date",
    json_out: JsonOpt = False,
) -> None:
    """Counts by label, region, year and group."""
    from competition.data import load_bundled, load_chips, summarize_chips

    chips = load_bundled() if path is None else load_chips(path)
    summary = summarize_chips(chips, group_by=group_by)
    if json_out:
        echo_json(summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ShipsNet chips ({summary['n_chips']}), data SHA-256 {summary['data_sha256'][:12]}...")
    for col in ("", "ship (1)", "no-ship (0)", "total"):
        table.add_column(col, justify="right" if col else "left")
    for section in ("all", "region", "year"):
        for key, row in summary["by_" + section].items() if section != "all" else [("all", summary["all"])]:
            table.add_row(key, str(row["ship"]), str(row["no_ship"]), str(row["total"]))
    Console().print(table)
    g = summary["groups"]
    typer.echo(f"{g['n_groups']} groups by {group_by} ({summary['n_scenes']} scenes); largest group {g['largest']} chips, "
               f"{g['mixed']} groups hold both labels")
