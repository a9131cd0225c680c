"""The web view: read-only leaderboard, team and submission pages, each with a JSON twin, and upload.

Routes (team names in URLs are tilde-encoded, see :func:`leaderboard.web.views.encode_name`)::

    GET  /                       the leaderboard: Public while open; after finalize the Private
                                 one with each team's move (``?board=public`` for the Public one)
    GET  /leaderboard.json       its JSON twin (same ``board`` parameter)
    GET  /teams/NAME             a team: standing, score-over-time chart, submission history
    GET  /teams/NAME.json
    GET  /submissions/ID         a submission: metrics with intervals, confusion matrix, coarse ROC
    GET  /submissions/ID.json
    GET  /submit                 the upload form
    POST /submit                 upload through the form (fields token, file, message)
    POST /api/submissions        upload: field file (and message), header Authorization: Bearer TOKEN
    GET  /static/style.css

Only the two upload routes write, and only through ``accept_submission`` (``submit_file``).  Nothing private is
served: the store hides Private scores until finalize, the views add Private fields only
once finalized, no route serves a stored file or the solution, and the ROC curve is read
on a coarse grid from the Public part only.  Templates are autoescaped, the charts escape
their text, and every response carries a Content-Security-Policy that allows no script.

Every error is JSON (``{"error", "problems"}``) on the API and ``.json`` routes and a page
elsewhere, 5xx included, with the security headers.  A busy or unreachable store is 503 with
``Retry-After`` after a short busy timeout; a broken workspace is 503 "scoring is
unavailable"; any other exception is 500 with no detail (the traceback goes to the server's
log).  No path, hash, store URL or traceback reaches a team.  Request bodies are bounded in
size and time (:mod:`leaderboard.web.guard`, :mod:`leaderboard.web.form`).

The ranked leaderboard and its rendered HTML and JSON (plain and gzipped) are cached and
keyed by ``Store.revision()``, which changes with every submission, rescore, team, final
choice and finalize, also those made by other processes such as the CLI (see
:mod:`leaderboard.web.board`).
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool

from competition.errors import ShipsError, StoreError, StoreUnavailableError
from competition.scoring import METRICS
from leaderboard.store.checks import MAX_ID
from leaderboard.submit import receipt
from leaderboard.web.charts import roc_chart_svg, score_chart_svg
from leaderboard.store import Store
from leaderboard.web import pages, team_api
from leaderboard.web.board import BoardCache, send_body
from leaderboard.web.errors import add_error_handlers
from leaderboard.web.guard import Guard
from leaderboard.web.upload import headers_for, receive_upload, status_for, team_message
from leaderboard.web.views import (decode_name, leaderboard_view, public_roc, score_points, shown_public,
                                   submission_url, submission_view, team_url, team_view)

__all__ = ["make_app"]

_HERE = Path(__file__).parent
_JSON = "application/json"
_BOARDS = {"public": False, "private": True}
_ID = re.compile(r"[0-9]{1,19}")  # a submission id in a URL: never int() of 5000 digits


def make_app(workspace, *, store: Store | None = None, revision_ttl: float = 0.5,
             tracking_uri: str | None = None, body_timeout: float = 60.0, busy_timeout: float = 3.0) -> FastAPI:
    """The FastAPI application of the web view of one competition workspace.

    Parameters
    ----------
    workspace : Workspace
        An open workspace; its config gives the quota, the deadline and the upload size limit.
    store : Store, optional
        The leaderboard store; default: the workspace's own (opened here, closed at shutdown).
    revision_ttl : float
        Seconds during which the leaderboard reuses its last reading of ``Store.revision()``:
        a write made elsewhere (the CLI, another server) shows within that delay; one made
        through this app shows at once.  0 reads the revision on every request.
    tracking_uri : str, optional
        When given, every accepted upload is logged as an MLflow run there
        (:func:`leaderboard.submit.accept_submission`, as ``ships score`` does), by the
        workspace's tracking writer, a thread this app runs from startup to shutdown.
    body_timeout : float
        Seconds within which a request's body must have arrived; a slower upload gets 408.
    busy_timeout : float
        Seconds a request waits for a store locked by another writer before it gets 503 with
        ``Retry-After`` (the workspace's own store only; a given ``store`` keeps its own).

    Returns
    -------
    FastAPI
        Serve it with uvicorn (``ships serve``).
    """
    owned = store is None
    store = store or Store.open(workspace.store_url, workspace.rules, busy_timeout=busy_timeout)
    site = _Site(workspace, store, revision_ttl, tracking_uri)

    @asynccontextmanager
    async def lifespan(_app):
        writer = None
        if tracking_uri is not None:  # the workspace's one tracking writer while the server runs
            from competition.tracking.writer import TrackingWriter

            writer = TrackingWriter(workspace.root, uri=tracking_uri).start()
        try:
            yield
        finally:
            if writer is not None:
                writer.stop()
            if owned:
                site.store.close()

    app = FastAPI(title="ShipsNet challenge", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(Guard, body_timeout=body_timeout)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.state.site = site
    add_error_handlers(app, site)
    _add_pages(app, site)
    _add_upload(app, site)
    app.include_router(team_api.router)
    app.include_router(pages.router)
    return app


class _Site:
    """The workspace, the store, the templates and the caches of one app."""

    def __init__(self, ws, store: Store, revision_ttl: float, tracking_uri: str | None):
        self.ws, self.store, self.tracking_uri = ws, store, tracking_uri
        self.env = _make_env(ws)
        self.board = BoardCache(store, self._build_board, revision_ttl)
        self.roc = lru_cache(maxsize=1024)(lambda sha: public_roc(ws, sha))

    def _build_board(self, private: bool, finalized_at: datetime | None, rows: list, fmt: str) -> tuple[bytes, str]:
        """The leaderboard page or its JSON twin, encoded."""
        view = leaderboard_view(rows, private=private, finalized_at=finalized_at, rules=self.ws.rules)
        if fmt == "json":
            return _json(view).body, _JSON
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
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True, undefined=StrictUndefined,
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


def _json(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, allow_nan=False, separators=(",", ":")).encode(), status_code=status,
                    media_type=_JSON)


def _add_pages(app: FastAPI, site: _Site) -> None:
    def leaderboard(request: Request, fmt: str) -> Response:
        """The leaderboard or its twin, reading the revision (and building the page) if needed."""
        try:
            return exact_board(request, fmt)
        finally:
            site.board.refreshed()

    def exact_board(request: Request, fmt: str) -> Response:
        revision, finalized_at = site.board.state()
        board = request.query_params.get("board")
        if board is not None and board not in _BOARDS:
            return site.error(request, 400, f"board={board!r} is invalid; expected 'public' or 'private'")
        private = finalized_at is not None if board is None else _BOARDS[board]
        try:
            body = site.board.body(revision, finalized_at, private, fmt)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # the Private board before finalize
            return site.error(request, 403, str(exc))
        return send_body(request, body)

    async def serve_board(request: Request, fmt: str) -> Response:
        """From memory when the cached body is current; else in a worker thread."""
        board = request.query_params.get("board")
        body = site.board.peek(_BOARDS.get(board), fmt) if board is None or board in _BOARDS else None
        if body is not None:
            return send_body(request, body)
        return await run_in_threadpool(leaderboard, request, fmt)

    @app.get("/leaderboard.json")
    async def leaderboard_json(request: Request):
        return await serve_board(request, "json")

    @app.get("/")
    async def leaderboard_html(request: Request):
        return await serve_board(request, "html")

    def team(request: Request, name: str, fmt: str) -> Response:
        revision, finalized_at = site.board.state()
        finalized = finalized_at is not None
        try:
            team = site.store.team(decode_name(name))
            records = site.store.submissions(team.name)
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            return site.error(request, 404, str(exc))
        row = next((r for r in site.board.rows(revision, finalized) if r.team == team.name), None)
        rules = site.ws.rules
        view = team_view(team, records, row, rules=rules, finalized=finalized)
        if fmt == "json":
            return _json(view)
        chart = score_chart_svg(score_points(records, rules=rules, finalized=finalized),
                                label=f"Scores of {team.name} over time", greater_is_better=rules.greater_is_better,
                                bounds=(rules.primary.minimum, rules.primary.maximum))
        return site.render("team.html", json_url=team_url(team.name) + ".json", chart=chart, **view)

    @app.get("/teams/{name}.json")
    def team_json(request: Request, name: str):
        return team(request, name, "json")

    @app.get("/teams/{name}")
    def team_html(request: Request, name: str):
        return team(request, name, "html")

    def submission(request: Request, text: str, fmt: str) -> Response:
        if not _ID.fullmatch(text) or not 1 <= int(text) <= MAX_ID:
            shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
            return site.error(request, 404, f"no submission {shown}; submission ids are integers from 1 to {MAX_ID}")
        _, finalized_at = site.board.state()
        finalized = finalized_at is not None
        try:
            record = site.store.submission(int(text))
            history = site.store.submissions(record.team)
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            return site.error(request, 404, str(exc))
        shown = dict(zip((r.id for r in history), shown_public(history, site.ws.rules, finalized=finalized)))
        view = submission_view(record, rules=site.ws.rules, shown=shown[record.id], finalized=finalized,
                               roc=site.roc(record.file_sha256) if finalized else None)
        if fmt == "json":
            return _json(view)
        roc = view["roc"]
        chart = roc_chart_svg(roc["fpr"], roc["tpr"], label=f"Public ROC curve of submission {record.id}") if roc else ""
        return site.render("submission.html", json_url=submission_url(record.id) + ".json", chart=chart, **view)

    @app.get("/submissions/{submission_id}.json")
    def submission_json(request: Request, submission_id: str):
        return submission(request, submission_id, "json")

    @app.get("/submissions/{submission_id}")
    def submission_html(request: Request, submission_id: str):
        return submission(request, submission_id, "html")


def _add_upload(app: FastAPI, site: _Site) -> None:
    def entry(result) -> dict:
        record = result.record
        return {**receipt(site.store, result), "url": submission_url(record.id), "team_url": team_url(record.team)}

    async def submit(request: Request, token_from_form: bool):
        """(entry, None, 201) on success, (None, refusal, status) on failure: see :mod:`leaderboard.web.upload`."""
        try:
            result = await receive_upload(request, site.ws, site.store, token_from_form=token_from_form,
                                          tracking_uri=site.tracking_uri)
        except ShipsError as exc:
            message, problems = team_message(exc)
            return None, {"message": message, "problems": problems}, status_for(exc)
        site.board.invalidate()
        return await run_in_threadpool(entry, result), None, 201

    @app.post("/api/submissions")
    async def api_submit(request: Request):
        ok, error, status = await submit(request, token_from_form=False)
        if ok is not None:
            return JSONResponse(ok, status_code=status)
        return JSONResponse({"error": error["message"], "problems": error["problems"]}, status_code=status,
                            headers=headers_for(status))

    @app.get("/submit")
    def submit_form(request: Request):
        return site.render("submit.html", json_url=None, finalized=site.store.is_finalized(), entry=None, error=None)

    @app.post("/submit")
    async def submit_via_form(request: Request):
        ok, error, status = await submit(request, token_from_form=True)
        finalized = await run_in_threadpool(site.store.is_finalized)
        return site.render("submit.html", status, headers_for(status), json_url=None, finalized=finalized, entry=ok,
                           error=error)
