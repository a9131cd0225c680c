"""A team's own view, from the competition server: submissions, status, leaderboard, finals.

The bodies of ``ships submissions``, ``status``, ``leaderboard`` and ``select`` when they act on
a server (see :data:`ships._common.PRECEDENCE`): one request each, printed as the local
commands print the workspace's records.  Team names and messages are literal text that folds
rather than being cut.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import typer

from ships._common import echo_json
from ships.remote import Client, Login, RemoteError

__all__ = ["rules_of", "show_submissions", "show_status", "show_leaderboard", "select_finals"]


def rules_of(me: dict):
    """The rules a team's receipt is printed with, from ``GET /api/me``'s competition."""
    from competition.errors import ParameterError
    from competition.rules import Rules

    competition = me.get("competition") if isinstance(me, dict) else None
    try:
        return Rules(metric=competition["metric"], public_precision=int(competition.get("public_precision", 4)))
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        raise RemoteError(f"GET /api/me: the competition's metric is missing or unknown to this version of ships "
                          f"({exc}); update ships (pip install -U ships)") from None


def _at(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM UTC``."""
    if not iso:
        return ""
    try:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        return str(iso)


def _cell(value):
    """Literal text for a table cell, folded (never cut) when the column is narrow."""
    from rich.text import Text

    return Text("" if value is None else str(value), overflow="fold")


def _score(score, low, high) -> tuple[str, str]:
    if score is None:
        return "n/a", ""
    return f"{score:.4f}", "" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def _field(data: dict, key: str, where: str):
    if not isinstance(data, dict) or key not in data:
        raise RemoteError(f"{where}: the answer lacks {key!r}; check that the server is up to date")
    return data[key]


def show_submissions(login: Login, json_out: bool) -> None:
    """``ships submissions`` for a team: its own, newest first."""
    from rich.console import Console
    from rich.table import Table

    with Client(login.url, login.token) as client:
        data = client.submissions()
    if json_out:
        echo_json(data)
        return
    records = list(reversed(_field(data, "submissions", "GET /api/submissions")))
    finalized = bool(data.get("finalized"))
    noun = "submission" if len(records) == 1 else "submissions"
    table = Table(title=_cell(f"{len(records)} {noun} of {data.get('team')} on {login.url} (newest first)"))
    cols = ["id", "submitted", "file", "public", "95% interval", *(["private"] if finalized else []), "final",
            "message"]
    for col in cols:
        table.add_column(col, justify="right" if col in ("id", "public", "private") else "left", overflow="fold")
    for r in records:
        cells = [str(r.get("id")), _at(r.get("submitted_at")), _cell(r.get("filename")),
                 *_score(r.get("public_score"), r.get("public_low"), r.get("public_high"))]
        if finalized:
            cells.append(_score(r.get("private_score"), None, None)[0])
        table.add_row(*cells, "yes" if r.get("final") else "", _cell(r.get("message")))
    Console(highlight=False).print(table)


def show_status(login: Login, json_out: bool) -> None:
    """``ships status`` for a team: today's quota and its finals."""
    with Client(login.url, login.token) as client:
        q = client.status()
    if json_out:
        echo_json(q)
        return
    team, where = _field(q, "team", "GET /api/status"), f"on {login.url}"
    if q.get("limit") is None:
        typer.echo(f"{team}: {q.get('used')} submissions on {q.get('day')} (UTC) {where}; no daily limit.")
    else:
        typer.echo(f"{team}: {q.get('used')} of {q['limit']} submissions used on {q.get('day')} (UTC) {where}, "
                   f"{q.get('left')} left; the quota resets at {_at(q.get('resets_at'))}.")
    finals = q.get("finals") or []
    typer.echo(f"Final submissions: {', '.join(map(str, finals))}." if finals else
               "No final submissions selected: at finalize your best Public ones count ('ships select ID...').")


def show_leaderboard(url: str, private: bool, json_out: bool) -> None:
    """``ships leaderboard`` from the server's ``/leaderboard.json`` (public: no token sent)."""
    from competition.rules import Rules
    from ships.leaderboard import _print_board

    with Client(url) as client:
        data = client.leaderboard(private)
    if json_out:
        echo_json(data)
        return
    rows = [_row(r) for r in _field(data, "rows", "GET /leaderboard.json")]
    try:
        rules = Rules(metric=data.get("metric"))
    except ValueError as exc:
        raise RemoteError(f"GET /leaderboard.json: unknown metric ({exc}); update ships") from None
    _print_board(rows, private, rules)


def _row(r: dict) -> SimpleNamespace:
    """A leaderboard row of the JSON as the local table reads a store's row."""
    at = r.get("last_submitted_at")
    return SimpleNamespace(**{**{k: r.get(k) for k in ("rank", "team", "kind", "score", "score_low", "score_high",
                                                        "tied", "entries", "public_rank", "move")},
                              "last_submitted_at": datetime.fromisoformat(at) if at else None})


def select_finals(login: Login, ids: list[int], json_out: bool) -> None:
    """``ships select ID...`` for a team: its own finals."""
    with Client(login.url, login.token) as client:
        answer = client.select(ids)
    if json_out:
        echo_json(answer)
        return
    finals = _field(answer, "finals", "POST /api/finals")
    typer.echo(f"{answer.get('team')}: final submissions {', '.join(map(str, finals))} on {login.url}. "
               "They replace any earlier choice.")
