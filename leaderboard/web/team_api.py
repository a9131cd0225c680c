"""The teams' API: who am I, the public data, checking a file for free, my submissions, my quota, my finals.

Every route but the data is authenticated by the team's token (``Authorization: Bearer``);
a team acts only as itself and sees only its own submissions.  Errors are JSON
``{"error": ..., "problems": [...]}`` with the status of :func:`status_of`.  The app keeps its
state on ``app.state.site`` (``ws``, ``store``); this router only reads it.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from competition.errors import ParameterError, ShipsError, StoreError
from competition.public_archive import build_public_archive
from leaderboard.submit import read_and_validate
from leaderboard.web.upload import bearer_token, check_length, headers_for, read_upload, status_for, team_message
from leaderboard.web.views import shown_public, submission_url

__all__ = ["router", "status_of"]

router = APIRouter()
_MAX_JSON_BODY = 4096


def status_of(exc: ShipsError) -> int:
    """The HTTP status of a library error on the teams' API (that of an upload, plus 403 and 404)."""
    if isinstance(exc, StoreError) and "belongs to team" in str(exc):
        return 403
    if isinstance(exc, StoreError) and ("no submission" in str(exc) or "unknown team" in str(exc)):
        return 404
    return status_for(exc)


def _error(exc: ShipsError) -> JSONResponse:
    """The error as JSON: the team's own mistakes in full, the server's faults only as such."""
    status = status_of(exc)
    message, problems = team_message(exc)
    return JSONResponse({"error": message, "problems": problems}, status_code=status, headers=headers_for(status))


async def _team(request: Request) -> str:
    return await run_in_threadpool(request.app.state.site.store.team_for_token, bearer_token(request))


@router.get("/api/me")
async def me(request: Request):
    site = request.app.state.site
    try:
        name = await _team(request)
        team = await run_in_threadpool(site.store.team, name)
        finalized = await run_in_threadpool(site.store.is_finalized)
    except ShipsError as exc:
        return _error(exc)
    rules = site.ws.rules
    return {"team": team.name, "kind": team.kind, "competition": {
        "metric": rules.metric, "greater_is_better": rules.greater_is_better,
        "public_precision": rules.public_precision, "feedback": rules.feedback,
        "deadline": None if rules.deadline is None else rules.deadline.isoformat(),
        "daily_quota": rules.daily_quota, "n_finals": rules.n_finals, "finalized": finalized}}


@router.get("/api/data/info")
async def data_info(request: Request):
    archive = await run_in_threadpool(build_public_archive, request.app.state.site.ws)
    return {**archive.to_dict(), "url": "/api/data"}


@router.api_route("/api/data", methods=["GET", "HEAD"])
async def data(request: Request):
    """The public data as one zip, with its SHA-256 as ETag; ``Range`` resumes a broken download."""
    archive = await run_in_threadpool(build_public_archive, request.app.state.site.ws)
    etag = f'"{archive.sha256}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    return FileResponse(archive.path, media_type="application/zip", filename=archive.filename,
                        headers={"etag": etag, "x-content-sha256": archive.sha256, "cache-control": "no-cache"})


@router.post("/api/validate")
async def validate(request: Request):
    """Check a file as the upload would, without scoring, storing or counting it."""
    site = request.app.state.site
    limit = site.ws.config.max_upload_bytes
    try:
        await _team(request)
        check_length(request, limit)
        upload = await read_upload(request, limit)
        y_proba, _ = await run_in_threadpool(read_and_validate, site.ws, upload.data, filename=upload.filename)
    except ShipsError as exc:
        return _error(exc)
    return {"valid": True, "rows": int(len(y_proba)), "filename": upload.filename}


@router.get("/api/submissions")
async def my_submissions(request: Request):
    site = request.app.state.site
    try:
        name = await _team(request)
        records, finalized = await run_in_threadpool(_history, site.store, name)
    except ShipsError as exc:
        return _error(exc)
    shown = shown_public(records, site.ws.rules, finalized=finalized)
    rows = []
    for r, (score, low, high) in zip(records, shown):
        row = {"id": r.id, "submitted_at": r.submitted_at.isoformat(), "filename": r.filename,
               "message": r.message, "public_score": score, "public_low": low, "public_high": high,
               "final": r.final, "url": submission_url(r.id)}
        if finalized:
            row.update(private_score=r.private_score, private_low=r.private_low, private_high=r.private_high)
        rows.append(row)
    return {"team": name, "finalized": finalized, "submissions": rows}


def _history(store, team: str):
    return store.submissions(team), store.is_finalized()


@router.get("/api/status")
async def status(request: Request):
    site = request.app.state.site
    try:
        name = await _team(request)
        quota = await run_in_threadpool(site.store.quota_status, name)
        finals = await run_in_threadpool(site.store.final_ids)
    except ShipsError as exc:
        return _error(exc)
    return {**quota.to_dict(), "finals": finals.get(quota.team, [])}


@router.post("/api/finals")
async def select_finals(request: Request):
    """Choose the team's own final submissions: ``{"ids": [int, ...]}``."""
    site = request.app.state.site
    try:
        name = await _team(request)
        ids = _ids(await _small_body(request))
        chosen = await run_in_threadpool(site.store.select_finals, name, ids)
    except ShipsError as exc:
        return _error(exc)
    return {"team": name, "finals": [r.id for r in chosen]}


async def _small_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > _MAX_JSON_BODY):
        raise ParameterError(f"request body too large; expected a JSON object of at most {_MAX_JSON_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_JSON_BODY:
            raise ParameterError(f"request body too large; expected a JSON object of at most {_MAX_JSON_BODY} bytes")
    return body


def _ids(body: bytes) -> list[int]:
    """``{"ids": [int, ...]}`` → the ids, each a positive int that fits a database id."""
    try:
        doc = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    ids = doc.get("ids") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ParameterError('expected a JSON body {"ids": [submission id, ...]}, e.g. {"ids": [12, 15]}')
    bad = [i for i in ids if not 0 < i < 2**63]
    if bad:
        raise ParameterError(f"submission id {bad[0]} is invalid; expected a positive id from `ships submissions`")
    return ids
