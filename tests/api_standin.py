"""Test helper: the server's team API, as the contract in the README's "For teams" states it.

``with_team_api(make_app(ws, store=store), ws, store, tmp)`` adds to the real web app the
routes a team's client calls that it may not have yet (``/api/me``, ``/api/data/info``,
``/api/data``, ``/api/validate``, ``GET /api/submissions``, ``/api/status``, ``/api/finals``),
built on the same store and submission path.  A route the app already has is kept, so the
tests run against the real server's routes as soon as it has them.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from competition.errors import AuthError, ParameterError, ShipsError, StoreError, SubmissionError
from leaderboard.submit import read_and_validate
from leaderboard.web.upload import bearer_token, read_upload
from leaderboard.web.views import shown_public


def make_data_zip(ws, dest: Path) -> tuple[Path, str]:
    """The public data as one zip (images stored, CSVs deflated), and its SHA-256."""
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(ws.public_dir.rglob("*")):
            if path.is_file():
                kind = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(ws.public_dir).as_posix(), compress_type=kind)
        zf.writestr("README.md", "# ShipsNet public data\n")
    return dest, hashlib.sha256(dest.read_bytes()).hexdigest()


def _error(status: int, message: str, problems=()) -> JSONResponse:
    return JSONResponse({"error": message, "problems": list(problems)}, status_code=status)


def _status(exc: ShipsError) -> int:
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, (SubmissionError, ParameterError)):
        return 422
    if isinstance(exc, StoreError):
        return 404 if str(exc).startswith("no submission") else 409
    return 503


def with_team_api(app: FastAPI, ws, store, tmp: Path) -> FastAPI:
    """``app`` with the team routes of the contract that it lacks."""
    have = {(m, getattr(r, "path", None)) for r in app.routes for m in getattr(r, "methods", ())}
    archive, sha = make_data_zip(ws, tmp / "shipsnet-data.zip")

    def route(method: str, path: str):
        def register(fn):
            if (method, path) in have:
                return fn

            async def endpoint(request: Request):
                try:
                    return JSONResponse(await fn(request))
                except ShipsError as exc:
                    return _error(_status(exc), str(exc), getattr(exc, "problems", []))

            app.add_api_route(path, endpoint, methods=[method])
            return fn
        return register

    def team_of(request: Request) -> str:
        return store.team_for_token(bearer_token(request))

    @route("GET", "/api/me")
    async def me(request):
        team, rules, config = store.team(team_of(request)), ws.rules, ws.config
        return {"team": team.name, "kind": team.kind, "competition": {
            "metric": rules.metric, "greater_is_better": rules.greater_is_better,
            "public_precision": rules.public_precision, "n_finals": rules.n_finals,
            "deadline": None if config.deadline is None else config.deadline.isoformat(),
            "daily_quota": config.daily_quota, "finalized": store.is_finalized()}}

    @route("GET", "/api/data/info")
    async def data_info(request):
        return {"sha256": sha, "size": archive.stat().st_size, "filename": archive.name, "url": "/api/data"}

    if ("GET", "/api/data") not in have:
        @app.get("/api/data")
        async def data(request: Request):
            return FileResponse(archive, media_type="application/zip", filename=archive.name,
                                headers={"etag": f'"{sha}"'})

    @route("POST", "/api/validate")
    async def validate(request):
        team_of(request)
        form = await read_upload(request, ws.config.max_upload_bytes)
        y_proba, _ = await run_in_threadpool(read_and_validate, ws, form.data, filename=form.filename)
        return {"valid": True, "rows": len(y_proba), "filename": form.filename}

    @route("GET", "/api/submissions")
    async def submissions(request):
        team, finalized = team_of(request), store.is_finalized()
        records = store.submissions(team)
        rows = []
        for r, (score, low, high) in zip(records, shown_public(records, ws.rules, finalized=finalized)):
            row = {"id": r.id, "submitted_at": r.submitted_at.isoformat(), "filename": r.filename,
                   "message": r.message, "public_score": score, "public_low": low, "public_high": high,
                   "final": r.final, "url": f"/submissions/{r.id}"}
            if finalized:
                row["private_score"] = r.private_score
            rows.append(row)
        return {"team": team, "finalized": finalized, "submissions": rows}

    @route("GET", "/api/status")
    async def status(request):
        team = team_of(request)
        return {**store.quota_status(team).to_dict(), "finals": store.final_ids().get(team, [])}

    @route("POST", "/api/finals")
    async def finals(request):
        team = team_of(request)
        chosen = store.select_finals(team, (await request.json())["ids"])
        return {"team": team, "finals": [r.id for r in chosen]}

    return app
