"""One web app's state: the workspace, the store, the templates, the caches, and who is asking.

``make_app`` builds one :class:`Site` and keeps it on ``app.state.site``; every route reads it
from there.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from competition.errors import AuthError, ShipsError
from competition.scoring import METRICS
from leaderboard.store import Store
from leaderboard.web.board import BoardCache
from leaderboard.web.upload import bearer_token, headers_for, status_for, team_message
from leaderboard.web.views import leaderboard_view, public_roc, submission_url, team_url

__all__ = ["Site", "SESSION_COOKIE", "JSON_TYPE", "json_response", "viewer"]

HERE = Path(__file__).parent
JSON_TYPE = "application/json"
SESSION_COOKIE = "ships_token"
SCORING_TURNS = 1  # uploads scored at once per server process (CPU work under the GIL); more cores: --workers


class Site:
    """The workspace, the store, the templates and the caches of one app."""

    def __init__(self, ws, store: Store, revision_ttl: float, tracking_uri: str | None):
        self.ws, self.store, self.tracking_uri = ws, store, tracking_uri
        self.scoring_turns = asyncio.Semaphore(SCORING_TURNS)  # uploads scored at a time in this process
        self.env = _make_env(ws)
        self.board = BoardCache(store, self._build_board, revision_ttl)
        self.roc = lru_cache(maxsize=1024)(lambda sha: public_roc(ws, sha))

    def _build_board(self, private: bool, finalized_at: datetime | None, rows: list, fmt: str) -> tuple[bytes, str]:
        """The leaderboard page or its JSON twin, encoded."""
        view = leaderboard_view(rows, private=private, finalized_at=finalized_at, rules=self.ws.rules)
        if fmt == "json":
            return json_response(view).body, JSON_TYPE
        default = private == (finalized_at is not None)
        json_url = "/leaderboard.json" + ("" if default else f"?board={'private' if private else 'public'}")
        html = self.env.get_template("leaderboard.html").render(json_url=json_url, **view)
        return html.encode(), "text/html; charset=utf-8"

    def render(self, template: str, status_code: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**context), status_code=status_code,
                            headers=headers)

    def error(self, request: Request, status: int, message: str, problems=(), headers: dict | None = None) -> Response:
        """An error as JSON (``{"error", "problems"}``) for JSON and API routes, else as a page."""
        path = request.url.path
        if path.endswith(".json") or path.startswith("/api/"):
            return JSONResponse({"error": message, "problems": list(problems)}, status_code=status, headers=headers)
        return self.render("error.html", status, headers, status=status, message=message, problems=list(problems),
                           json_url=None)

    def refusal(self, request: Request, exc: ShipsError) -> Response:
        """A library error as the team sees it (:func:`~leaderboard.web.upload.team_message`), with its status."""
        status = status_for(exc)
        message, problems = team_message(exc)
        return self.error(request, status, message, problems, headers=headers_for(status))


def _make_env(ws) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    digits = ws.rules.public_precision  # scores are shown with the precision the rules give teams
    env.filters.update(when=_when, num=lambda v, d=None: _num(v, digits if d is None else d),
                       interval=lambda lo, hi, d=None: _interval(lo, hi, digits if d is None else d))
    config = ws.config
    env.globals.update(
        team_url=team_url, submission_url=submission_url, metrics=list(METRICS.values()),
        primary=ws.rules.primary, rules=ws.rules, daily_quota=config.daily_quota,
        deadline=None if config.deadline is None else f"{config.deadline:%Y-%m-%d %H:%M}",
        max_upload_bytes=config.max_upload_bytes,
    )
    return env


def _when(iso: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM UTC``."""
    return "" if not iso else f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M} UTC"


def _num(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(low, high, digits: int = 4) -> str:
    return "" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def json_response(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, allow_nan=False, separators=(",", ":")).encode(), status_code=status,
                    media_type=JSON_TYPE)




def viewer(site: Site, request: Request) -> str | None:
    """The team whose token the request carries (``Authorization: Bearer`` or the sign-in cookie), or None."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return site.store.team_for_token(token)
    except AuthError:
        return None


