"""``ships login``, ``ships logout`` and ``ships download``: a team's machine and the competition server.

``login`` checks a server address and a team token against ``GET /api/me`` and stores them
(TOML, mode 0600) where :func:`ships._common.credentials_path` says; ``$SHIPS_URL`` and
``$SHIPS_TOKEN`` override the file.  ``download`` fetches the public data into a folder a
team works in (:mod:`ships.fetch`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ships._common import credentials_path, echo_json, fail, server_url

__all__ = ["app"]

app = typer.Typer()

UrlOpt = Annotated[str, typer.Option("--url", help="The competition server's address, e.g. https://ships.example.org "
                                     "or http://127.0.0.1:8000 (ask the organiser).")]


@app.command()
def login(
    url: UrlOpt,
    token: Annotated[str, typer.Option("--token", prompt="Team token", hide_input=True,
                                       help="The team's secret token ('ships team add' printed it); asked for, "
                                            "unseen, when not given, so that it stays out of the shell history.")],
) -> None:
    """Check a server address and a team token, then store them for the team's commands."""
    from ships.remote import Client, check_url, write_credentials
    from ships.remote_views import rules_of

    url = check_url(url)
    with Client(url, token.strip()) as client:
        me = client.me()
    rules = rules_of(me)
    path = credentials_path()
    write_credentials(path, url, token.strip())
    typer.echo(f"Logged in to {url} as team {me.get('team')}; the login is stored in {path} (readable by you only).")
    c = me["competition"]
    deadline = f"deadline {c['deadline']}" if c.get("deadline") else "no deadline"
    state = "finalized: no more submissions" if c.get("finalized") else deadline
    typer.echo(f"Competition: {rules.metric} ({rules.direction}), {c.get('daily_quota')} submissions a day, "
               f"{c.get('n_finals')} finals; {state}. Next: 'ships download', then 'ships submit FILE -m MSG'.")
    if os.environ.get("SHIPS_URL") or os.environ.get("SHIPS_TOKEN"):
        typer.echo("Note: SHIPS_URL or SHIPS_TOKEN is set in the environment and overrides this login.", err=True)


@app.command()
def logout() -> None:
    """Forget the stored login (the credentials file)."""
    from ships.remote import remove_credentials

    path = credentials_path()
    typer.echo(f"Logged out: removed {path}." if remove_credentials(path) else f"Not logged in: no {path}.")
    if os.environ.get("SHIPS_URL") or os.environ.get("SHIPS_TOKEN"):
        typer.echo("Note: SHIPS_URL or SHIPS_TOKEN is still set in the environment and still logs you in; "
                   "unset them too.", err=True)


@app.command()
def download(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to unpack the public data into (created "
                                      "whole or not at all).")] = Path("shipsnet-data"),
    url: Annotated[Optional[str], typer.Option("--url", help="The server's address (default: $SHIPS_URL, else the "
                                               "login's; the data needs no token).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out folder that does not hold the "
                                        "server's current data (what you saved in it is lost).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")] = False,
) -> None:
    """Download the public data (train, test, folds, sample submission, images), resuming a broken download."""
    from ships.fetch import Archive, fetch_archive, part_path, read_marker, unpack_archive
    from ships.remote import Client, check_url

    base = check_url(url) if url else server_url()
    if base is None:
        fail("no server to download from; pass --url URL, set SHIPS_URL, or run 'ships login --url URL --token TOKEN'")
    with Client(base) as client:
        archive = Archive.from_info(client.data_info(), f"GET {base}/api/data/info")
        held = read_marker(out)
        if held is not None and held.get("sha256") == archive.sha256:
            return _report(out, archive, base, None, json_out)
        if out.exists() and not force:
            what = "an older download" if held is not None else "files that are not this download"
            fail(f"{out} already exists and holds {what}; pass --force to replace it (what you saved in it is "
                 "lost), or --out another folder")
        part = part_path(out)
        with _progress_bar(archive.filename, archive.size) as update:
            fetch_archive(client, archive, part, update)
    n_files = unpack_archive(part, out, replace=force, marker={"sha256": archive.sha256, "size": archive.size,
                                                               "url": f"{base}{archive.path}",
                                                               "filename": archive.filename})
    part.unlink(missing_ok=True)
    _report(out, archive, base, n_files, json_out)


def _report(out: Path, archive, base: str, n_files: int | None, json_out: bool) -> None:
    if json_out:
        echo_json({"out": str(out), "sha256": archive.sha256, "size": archive.size, "url": f"{base}{archive.path}",
                   "files": n_files, "up_to_date": n_files is None})
    elif n_files is None:
        typer.echo(f"{out} is up to date: it holds the data of {base} (SHA-256 {archive.sha256[:12]}...).")
    else:
        typer.echo(f"Downloaded {archive.filename} ({archive.size / 2**20:.1f} MiB, SHA-256 verified) from {base} "
                   f"into {out}: {n_files} files. Train on {out}/train.csv and {out}/train/, predict {out}/test.csv, "
                   "check with 'ships validate FILE', then 'ships submit FILE -m MSG'.")


class _progress_bar:
    """A rich download bar on stderr; the context value is the ``(done, total)`` callback."""

    def __init__(self, name: str, total: int):
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._task = self._bar.add_task(name, total=total)

    def __enter__(self):
        self._bar.start()
        return lambda done, total: self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        self._bar.stop()
