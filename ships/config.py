"""``ships config show|set``: the competition's settings, validated, over ships.toml."""

from __future__ import annotations

from typing import Annotated

import typer

from ships._common import JsonOpt, WorkspaceOpt, echo_json, open_workspace

app = typer.Typer(no_args_is_help=True, help="Show or change the competition's settings (ships.toml).")


@app.command("show")
def show(workspace: WorkspaceOpt, json_out: JsonOpt = False) -> None:
    """Show every setting with its value, whether it can be changed, and what it means."""
    from dataclasses import asdict

    from competition.config import EDITABLE, SETTINGS
    from leaderboard.store.checks import hide_password

    ws = open_workspace(workspace)
    values = {**asdict(ws.config), "store_url": hide_password(ws.config.store_url)}
    if json_out:
        echo_json({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Settings of {ws.root} (ships config set KEY VALUE changes the editable ones)")
    for col in ("key", "value", "editable", "meaning"):
        table.add_column(col, overflow="fold")
    for key, value in values.items():
        shown = "none" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
        table.add_row(key, shown, "yes" if key in EDITABLE else "no", SETTINGS[key].metadata["help"])
    Console(highlight=False).print(table)


@app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="The setting, e.g. metric, daily_quota, deadline, n_finals.")],
    value: Annotated[str, typer.Argument(help="Its new value (a deadline in ISO 8601, UTC unless an offset is "
                                              "given; 'none' removes it).")],
    workspace: WorkspaceOpt,
) -> None:
    """Change one setting of ships.toml, validated; a new metric re-locks the scoring settings."""
    from dataclasses import replace

    from competition.config import EDITABLE, parse_value, scoring_sha256, write_config
    from competition.errors import ConfigError

    ws = open_workspace(workspace)
    parsed = parse_value(key, value)
    if key not in EDITABLE:
        raise ConfigError(f"ships.toml: {key} is fixed at init (it defines the split or a lock); editable "
                          f"settings: {', '.join(EDITABLE)}. A new split needs `ships init --force`")
    config = ws.config.with_changes(**{key: parsed})
    config = replace(config, scoring_sha256=scoring_sha256(config))
    write_config(config, ws.root / "ships.toml")
    shown = "none" if getattr(config, key) is None else getattr(config, key)
    if key == "store_url":
        from leaderboard.store.checks import hide_password

        shown = hide_password(shown)
    typer.echo(f"{key} = {shown} in {ws.root / 'ships.toml'}")
    if key == "metric":
        typer.echo("Run `ships rescore` to rerank the stored submissions under the new metric.")
