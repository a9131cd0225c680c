"""Submission upload over HTTP: the team and its quota first, then the body, then ``accept_submission``.

The JSON API (``POST /api/submissions``) and the HTML form (``POST /submit``) both call
:func:`receive_upload`.  Before any byte of the file is parsed or scored, the team comes
from its token (the ``Authorization`` header, or the form's ``token`` field read as the body
streams in, see :mod:`leaderboard.web.form`) and :func:`leaderboard.submit.check_can_submit`
refuses a passed deadline, a finalized competition or a used-up quota.  It is the only code
of the web view that writes, and it writes only through
:func:`leaderboard.submit.accept_submission` (``submit_file``, then the MLflow run), so
validation, scoring, storage, the quota (checked again in the recording transaction) and
tracking are exactly those of ``ships score``.

Errors keep the CLI's messages and map to HTTP status codes (:func:`status_for`): a
malformed form 400, a missing or wrong token 401, a passed deadline or a finalized
competition 409, a body that came too slowly 408, an upload above the size limit 413, an
invalid file, message or file name 422, a used-up quota 429.  The server's own faults are
503 and tell a team only that (:func:`team_message`): a busy or unreachable store ("try
again", with ``Retry-After``), a workspace whose locked files changed ("scoring is
unavailable; the organiser has been told"); their precise message, which names files and
the store, goes to the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from competition.errors import (AuthError, ParameterError, QuotaError, ShipsError, StoreError, StoreUnavailableError,
                                SubmissionError)
from leaderboard.submit import SubmitResult, accept_submission, check_can_submit
from leaderboard.web.form import FORM_SLACK, Upload, UploadError, check_length, read_upload

__all__ = ["FORM_SLACK", "RETRY_AFTER", "UploadError", "Upload", "check_length", "read_upload", "receive_upload",
           "status_for", "team_message", "headers_for", "bearer_token"]

RETRY_AFTER = 5  # seconds a client is asked to wait after a 503
UNAVAILABLE = "the leaderboard is busy or unavailable; nothing was changed. Try again in a few seconds"
BROKEN = "scoring is unavailable; the organiser has been told. Nothing was stored; try again later"
_log = logging.getLogger("leaderboard.web")


def status_for(exc: ShipsError) -> int:
    """The HTTP status code of a library error raised while submitting."""
    if isinstance(exc, UploadError):
        return exc.status
    if isinstance(exc, (SubmissionError, ParameterError)):
        return 422  # an invalid file; a message or file name too long or with control characters
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, QuotaError):
        return 429
    if isinstance(exc, StoreUnavailableError):
        return 503
    if isinstance(exc, StoreError):
        return 409  # finalized, or the deadline passed
    return 503  # the workspace itself is broken (e.g. the solution changed): not the team's fault


def team_message(exc: ShipsError) -> tuple[str, list[str]]:
    """What a team is told of an error: its own message, or, for the server's faults, only that.

    The precise message of a server fault (it names files, the store or hashes) is logged
    for the organiser.
    """
    if isinstance(exc, (UploadError, SubmissionError, ParameterError)) or (
            isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailableError)):
        return str(exc), list(getattr(exc, "problems", []))
    _log.error("web request refused (%s): %s", type(exc).__name__, exc)
    return (UNAVAILABLE if isinstance(exc, StoreUnavailableError) else BROKEN), []


def headers_for(status: int) -> dict | None:
    """Extra headers of an error status: how to authenticate (401), when to try again (503)."""
    return {401: {"www-authenticate": "Bearer"}, 503: {"retry-after": str(RETRY_AFTER)}}.get(status)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _admit(ws, store, token: str | None) -> str:
    """The team holding ``token``, if it may submit now (deadline, finalize, quota)."""
    team = store.team_for_token(token)
    check_can_submit(ws, store, team)
    return team


async def receive_upload(request: Request, ws, store, *, token_from_form: bool,
                         tracking_uri: str | None = None, turns: asyncio.Semaphore | None = None) -> SubmitResult:
    """Admit the team, read its upload and submit it for that team (never for a team named in the form).

    Parameters
    ----------
    token_from_form : bool
        True: the token is the form's ``token`` field (``/submit``); False: the
        ``Authorization: Bearer`` header (``/api/submissions``), checked before any byte of
        the body is read.
    tracking_uri : str, optional
        When given, the accepted submission is also logged there as an MLflow run (in the background).
    turns : asyncio.Semaphore, optional
        Uploads of this process scored at a time.  Scoring is CPU work under the GIL: a few
        at a time score faster than many interleaved (several processes use several cores),
        and the others wait their turn, body read and team admitted, while pages are served.

    Raises
    ------
    UploadError, AuthError, ClosedError, QuotaError, ParameterError, SubmissionError, StoreError, WorkspaceError
        As :func:`read_upload` and ``submit_file`` raise them; nothing is stored.
    """
    limit = ws.config.max_upload_bytes
    check_length(request, limit)
    admitted: list[str] = []
    typed: dict[str, str] = {}  # what the form held, for the page to offer again after an error

    async def admit(token: str | None) -> None:
        typed["token"] = token or ""
        admitted.append(await run_in_threadpool(_admit, ws, store, token))

    try:
        if not token_from_form:
            await admit(bearer_token(request))
        form = await read_upload(request, limit, on_token=admit if token_from_form else None)
        typed["message_typed"] = form.message
        try:
            async with turns or contextlib.nullcontext():
                return await run_in_threadpool(accept_submission, ws, form.data, team=admitted[0],
                                               filename=form.filename, message=form.message, store=store,
                                               tracking_uri=tracking_uri, track=tracking_uri is not None)
        except SubmissionError as exc:
            if len(form.data) > limit:  # within the form's slack but above the file's limit: the CLI's message
                raise UploadError(str(exc), 413, exc.problems) from None
            raise
    except ShipsError as exc:
        exc.typed = typed
        raise
