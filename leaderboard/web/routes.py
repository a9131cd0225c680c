"""The pages: the leaderboard, a team, a submission (each with its JSON twin), and signing in.

The leaderboard is public; a team's submissions, messages and scores are seen by that team
only (its token as ``Authorization: Bearer``, or the cookie that ``/login`` sets), and the
baselines' by everyone.  Every route reads the app's :class:`~leaderboard.web.site.Site`
from ``app.state.site``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from competition.errors import AuthError, StoreError, StoreUnavailableError
from leaderboard.store.checks import MAX_ID
from leaderboard.web.board import send_body
from leaderboard.web.charts import roc_chart_svg, score_chart_svg
from leaderboard.web.site import SESSION_COOKIE, Site, json_response, viewer
from leaderboard.web.views import (decode_name, score_points, shown_public, submission_url, submission_view, team_url,
                                   team_view)

__all__ = ["router"]

router = APIRouter()
_BOARDS = {"public": False, "private": True}
_ID = re.compile(r"[0-9]{1,19}")  # a submission id in a URL: never int() of 5000 digits


def _site(request: Request) -> Site:
    return request.app.state.site


# -- the leaderboard --------------------------------------------------------------------------

def _board(site: Site, request: Request, fmt: str) -> Response:
    """The leaderboard or its twin, reading the revision (and building the page) if needed."""
    try:
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
    finally:
        site.board.refreshed()


async def _serve_board(request: Request, fmt: str) -> Response:
    """From memory when the cached body is current; else in a worker thread."""
    site = _site(request)
    board = request.query_params.get("board")
    body = site.board.peek(_BOARDS.get(board), fmt) if board is None or board in _BOARDS else None
    if body is not None:
        return send_body(request, body)
    return await run_in_threadpool(_board, site, request, fmt)


@router.get("/leaderboard.json")
async def leaderboard_json(request: Request):
    return await _serve_board(request, "json")


@router.get("/")
async def leaderboard_html(request: Request):
    return await _serve_board(request, "html")


# -- a team -----------------------------------------------------------------------------------

def _team(request: Request, name: str, fmt: str) -> Response:
    site = _site(request)
    revision, finalized_at = site.board.state()
    finalized = finalized_at is not None
    try:
        team = site.store.team(decode_name(name))
        own = team.kind == "baseline" or viewer(site, request) == team.name
        records = site.store.submissions(team.name) if own else []
    except StoreUnavailableError:
        raise
    except StoreError as exc:
        return site.error(request, 404, str(exc))
    row = next((r for r in site.board.rows(revision, finalized) if r.team == team.name), None)
    rules = site.ws.rules
    view = {**team_view(team, records, row, rules=rules, finalized=finalized), "own": own}
    if fmt == "json":
        return json_response(view)
    chart = score_chart_svg(score_points(records, rules=rules, finalized=finalized),
                            label=f"Scores of {team.name} over time", greater_is_better=rules.greater_is_better,
                            bounds=(rules.primary.minimum, rules.primary.maximum))
    return site.render("team.html", json_url=team_url(team.name) + ".json", chart=chart, **view)


@router.get("/teams/{name}.json")
def team_json(request: Request, name: str):
    return _team(request, name, "json")


@router.get("/teams/{name}")
def team_html(request: Request, name: str):
    return _team(request, name, "html")


# -- a submission -----------------------------------------------------------------------------

def _submission(request: Request, text: str, fmt: str) -> Response:
    site = _site(request)
    if not _ID.fullmatch(text) or not 1 <= int(text) <= MAX_ID:
        shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
        return site.error(request, 404, f"no submission {shown}; submission ids are integers from 1 to {MAX_ID}")
    _, finalized_at = site.board.state()
    finalized = finalized_at is not None
    try:
        record = site.store.submission(int(text))
        if record.kind != "baseline" and viewer(site, request) != record.team:
            return site.error(request, 403, f"submission {record.id} is seen by its team only; sign in at "
                                            "/login with your team's token (the leaderboard is public)")
        history = site.store.submissions(record.team)
    except StoreUnavailableError:
        raise
    except StoreError as exc:
        return site.error(request, 404, str(exc))
    shown = dict(zip((r.id for r in history), shown_public(history, site.ws.rules, finalized=finalized)))
    view = submission_view(record, rules=site.ws.rules, shown=shown[record.id], finalized=finalized,
                           roc=site.roc(record.file_sha256) if finalized else None)
    if fmt == "json":
        return json_response(view)
    roc = view["roc"]
    chart = roc_chart_svg(roc["fpr"], roc["tpr"], label=f"Public ROC curve of submission {record.id}") if roc else ""
    return site.render("submission.html", json_url=submission_url(record.id) + ".json", chart=chart, **view)


@router.get("/submissions/{submission_id}.json")
def submission_json(request: Request, submission_id: str):
    return _submission(request, submission_id, "json")


@router.get("/submissions/{submission_id}")
def submission_html(request: Request, submission_id: str):
    return _submission(request, submission_id, "html")


# -- signing in -------------------------------------------------------------------------------

@router.get("/login")
def login_form(request: Request):
    site = _site(request)
    return site.render("login.html", json_url=None, team=viewer(site, request), error=None)


@router.post("/login")
async def login(request: Request):
    """Keep a team's token in an HttpOnly, same-site cookie so that its own pages show its history."""
    site = _site(request)
    form = await request.form(max_files=0, max_fields=2, max_part_size=1024)
    token = str(form.get("token") or "").strip()
    try:
        team = await run_in_threadpool(site.store.team_for_token, token)
    except AuthError as exc:
        return site.render("login.html", 401, json_url=None, team=None, error=str(exc))
    response = RedirectResponse(team_url(team), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", max_age=30 * 24 * 3600)
    return response


@router.post("/logout")
def logout(request: Request):
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
