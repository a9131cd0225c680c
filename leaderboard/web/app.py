"""The web view: read-only leaderboard, team and submission pages, each with a JSON twin, and upload.

Routes (team names in URLs are tilde-encoded, see :func:`leaderboard.web.views.encode_name`)::

    GET  /                       the leaderboard: Public while open; after finalize the Private
                                 one with each team's move (``?board=public`` for the Public one)
    GET  /leaderboard.json       its JSON twin (same ``board`` parameter)
    GET  /teams/NAME             a team: standing; its history, chart and messages to that team only
    GET  /teams/NAME.json
    GET  /submissions/ID         a submission, to its team: before finalize the shown score; after it
                                 every metric with intervals, confusion matrix, coarse ROC
    GET  /submissions/ID.json
    GET  /login, POST /login     sign in with a team's token (an HttpOnly cookie); POST /logout
    GET  /overview, /data        the competition's overview and data pages (:mod:`leaderboard.web.pages`)
    /api/...                     the teams' API (:mod:`leaderboard.web.team_api`)
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

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from competition.errors import ShipsError
from leaderboard.store import Store
from leaderboard.submit import receipt
from leaderboard.web import pages, routes, team_api
from leaderboard.web.errors import add_error_handlers
from leaderboard.web.guard import Guard
from leaderboard.web.site import HERE as _HERE
from leaderboard.web.site import Site
from leaderboard.web.upload import headers_for, receive_upload, status_for, team_message
from leaderboard.web.views import submission_url, team_url

__all__ = ["make_app"]


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
    site = Site(workspace, store, revision_ttl, tracking_uri)

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
    app.include_router(routes.router)
    _add_upload(app, site)
    app.include_router(team_api.router)
    app.include_router(pages.router)
    return app


def _add_upload(app: FastAPI, site: Site) -> None:
    def entry(result) -> dict:
        record = result.record
        return {**receipt(site.store, result, site.ws), "url": submission_url(record.id), "team_url": team_url(record.team)}

    async def submit(request: Request, token_from_form: bool):
        """(entry, None, 201) on success, (None, refusal, status) on failure: see :mod:`leaderboard.web.upload`."""
        try:
            result = await receive_upload(request, site.ws, site.store, token_from_form=token_from_form,
                                          tracking_uri=site.tracking_uri, turns=site.scoring_turns)
        except ShipsError as exc:
            message, problems = team_message(exc)
            return None, {"message": message, "problems": problems, **getattr(exc, "typed", {})}, status_for(exc)
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
        return site.render("submit.html", json_url=None, finalized=site.store.is_finalized(), entry=None, error=None,
                           base_url=str(request.base_url).rstrip("/"))

    @app.post("/submit")
    async def submit_via_form(request: Request):
        ok, error, status = await submit(request, token_from_form=True)
        finalized = await run_in_threadpool(site.store.is_finalized)
        return site.render("submit.html", status, headers_for(status), json_url=None, finalized=finalized, entry=ok,
                           error=error, base_url=str(request.base_url).rstrip("/"))
