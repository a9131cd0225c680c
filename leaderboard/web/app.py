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

The ranked leaderboard and its rendered HTML and JSON (plain and gzipped) are cached and
keyed by ``Store.revision()``, which changes with every submission, rescore, team, final
choice and finalize, also those made by other processes such as the CLI (see
:mod:`leaderboard.web.board`).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from competition.errors import ShipsError, StoreError
from competition.scoring import METRICS
from leaderboard.submit import receipt
from leaderboard.web.charts import roc_chart_svg, score_chart_svg
from leaderboard.store import Store
from leaderboard.web import pages, team_api
from leaderboard.web.board import BoardCache, send_body
from leaderboard.web.upload import bearer_token, check_length, read_upload, status_for, upload
from leaderboard.web.views import (decode_name, leaderboard_view, public_roc, score_points, shown_public,
                                   submission_url, submission_view, team_url, team_view)

__all__ = ["make_app"]

_HERE = Path(__file__).parent
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                 b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_JSON = "application/json"
_BOARDS = {"public": False, "private": True}


def make_app(workspace, *, store: Store | None = None, revision_ttl: float = 0.5,
             tracking_uri: str | None = None) -> FastAPI:
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

    Returns
    -------
    FastAPI
        Serve it with uvicorn (``ships serve``).
    """
    owned = store is None
    site = _Site(workspace, store or Store.open(workspace.store_url, workspace.rules), revision_ttl, tracking_uri)

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
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.state.site = site
    _add_error_handlers(app, site)
    _add_pages(app, site)
    _add_upload(app, site)
    app.include_router(team_api.router)
    app.include_router(pages.router)
    return app


class _SecurityHeaders:
    """ASGI middleware adding the security headers to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


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

    def render(self, template: str, status_code: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**context), status_code=status_code)

    def error(self, request: Request, status: int, message: str, problems=()) -> Response:
        """An error as JSON (``{"error", "problems"}``) for JSON and API routes, else as a page."""
        path = request.url.path
        if path.endswith(".json") or path.startswith("/api/"):
            return JSONResponse({"error": message, "problems": list(problems)}, status_code=status)
        return self.render("error.html", status, status=status, message=message, problems=list(problems),
                           json_url=None)


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


def _add_error_handlers(app: FastAPI, site: _Site) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no page at {request.url.path}; see the leaderboard at /"}.get(exc.status_code, exc.detail)
        return site.error(request, exc.status_code, str(message))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return site.error(request, 400, "invalid request parameters", problems)


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

    def submission(request: Request, submission_id: int, fmt: str) -> Response:
        _, finalized_at = site.board.state()
        finalized = finalized_at is not None
        try:
            record = site.store.submission(submission_id)
            history = site.store.submissions(record.team)
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

    @app.get("/submissions/{submission_id:int}.json")
    def submission_json(request: Request, submission_id: int):
        return submission(request, submission_id, "json")

    @app.get("/submissions/{submission_id:int}")
    def submission_html(request: Request, submission_id: int):
        return submission(request, submission_id, "html")


def _add_upload(app: FastAPI, site: _Site) -> None:
    ws, limit = site.ws, site.ws.config.max_upload_bytes

    def entry(result) -> dict:
        record = result.record
        return {**receipt(site.store, result), "url": submission_url(record.id), "team_url": team_url(record.team)}

    async def submit(request: Request, token_from_form: bool):
        """(entry, None, 201) on success, (None, (message, problems), status) on failure."""
        data = None
        try:
            check_length(request, limit)
            token = None if token_from_form else bearer_token(request)
            if not token_from_form:
                await run_in_threadpool(site.store.team_for_token, token)  # refuse before reading the body
            form = await read_upload(request, limit)
            data = form.data
            result = await upload(ws, site.store, form.token if token_from_form else token, form,
                                  tracking_uri=site.tracking_uri)
            site.board.invalidate()
            answer = await run_in_threadpool(entry, result)
        except ShipsError as exc:
            problems = getattr(exc, "problems", [])
            return None, (str(exc), problems), status_for(exc, data, limit)
        return answer, None, 201

    @app.post("/api/submissions")
    async def api_submit(request: Request):
        ok, error, status = await submit(request, token_from_form=False)
        if ok is not None:
            return JSONResponse(ok, status_code=status)
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": error[0], "problems": error[1]}, status_code=status, headers=headers)

    @app.get("/submit")
    def submit_form(request: Request):
        return site.render("submit.html", json_url=None, finalized=site.store.is_finalized(), entry=None, error=None)

    @app.post("/submit")
    async def submit_via_form(request: Request):
        ok, error, status = await submit(request, token_from_form=True)
        finalized = await run_in_threadpool(site.store.is_finalized)
        return site.render("submit.html", status, json_url=None, finalized=finalized, entry=ok,
                           error=None if error is None else {"message": error[0], "problems": error[1]})
