"""Submission upload over HTTP: a size-capped multipart read, the team from its token, then ``submit_file``.

The JSON API (``POST /api/submissions``) and the HTML form (``POST /submit``) both call
:func:`upload`; it is the only code of the web view that writes, and it writes only
through :func:`leaderboard.submit.accept_submission` (``submit_file``, then the MLflow run),
so validation, scoring, storage, the quota and tracking are exactly those of ``ships score``.

Errors keep the CLI's messages and map to HTTP status codes (:func:`status_for`): an
invalid file 422, a missing or wrong token 401, a used-up quota 429, a finalized
competition or a passed deadline 409, an upload above the size limit 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from competition.errors import AuthError, ParameterError, QuotaError, ShipsError, StoreError, SubmissionError
from leaderboard.submit import SubmitResult, accept_submission

__all__ = ["FORM_SLACK", "UploadError", "Upload", "check_length", "read_upload", "upload", "status_for", "bearer_token"]

FORM_SLACK = 64 * 1024  # bytes of multipart framing and small fields allowed beyond the file's own limit
_TOO_LARGE_FIX = "Submit one row per test id with a short probability (e.g. 0.1234)"


class UploadError(ShipsError):
    """A request that cannot be turned into a submission (too large, malformed form)."""

    def __init__(self, message: str, status: int, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = list(problems or [])


@dataclass(frozen=True)
class Upload:
    """The fields of an upload form: the file's bytes and name, the team's note and token field."""

    data: bytes
    filename: str
    message: str
    token: str | None


def status_for(exc: ShipsError, data: bytes | None = None, limit: int | None = None) -> int:
    """The HTTP status code of a library error raised while submitting."""
    if isinstance(exc, UploadError):
        return exc.status
    if isinstance(exc, SubmissionError):
        too_large = data is not None and limit is not None and len(data) > limit
        return 413 if too_large else 422
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, QuotaError):
        return 429
    if isinstance(exc, StoreError):
        return 409  # finalized, or the deadline passed
    if isinstance(exc, ParameterError):
        return 422  # e.g. a message above the store's length limit
    return 503  # the workspace itself is broken (e.g. the solution changed): not the team's fault


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _too_large(size: int, limit: int) -> UploadError:
    return UploadError(f"upload is {size:,} bytes or more; the limit is {limit:,} bytes for the file "
                       f"(plus {FORM_SLACK:,} for the form). {_TOO_LARGE_FIX}", 413)


def _capped(receive, cap: int, limit: int):
    """``receive`` that stops the request once its body passes ``cap`` bytes, whatever Content-Length said."""
    seen = 0

    async def inner():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise _too_large(seen, limit)
        return message

    return inner


def _clean_filename(name: str | None) -> str:
    """The base name of an uploaded file (no client folder), at most 255 characters."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return (base or "upload.csv")[:255]


def check_length(request: Request, limit: int) -> None:
    """Refuse a request whose declared Content-Length is above ``limit`` plus :data:`FORM_SLACK`.

    Raises
    ------
    UploadError
        413.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise _too_large(int(declared), limit)


async def read_upload(request: Request, limit: int) -> Upload:
    """Read a multipart upload (fields ``file``, ``message``, ``token``) without reading past the cap.

    The cap is ``limit`` plus :data:`FORM_SLACK`; a Content-Length above it is refused before
    any byte is read, and a body that grows past it (chunked, or a lying client) is cut off.

    Raises
    ------
    UploadError
        413 above the cap; 400 for a request that is not a multipart form with a file.
    """
    cap = limit + FORM_SLACK
    check_length(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError("expected a multipart/form-data body with the CSV in the field 'file'", 400)
    capped = Request(request.scope, _capped(request.receive, cap, limit))
    try:
        form = await capped.form(max_files=1, max_fields=4, max_part_size=FORM_SLACK)
    except MultiPartException as exc:
        raise UploadError(f"malformed form: {exc.message}", 400) from exc
    try:
        file, message, token = form.get("file"), form.get("message") or "", form.get("token")
        if not isinstance(file, UploadFile):
            raise UploadError("missing file: send the CSV in the form field 'file'", 400)
        if not isinstance(message, str) or not (token is None or isinstance(token, str)):
            raise UploadError("the fields 'message' and 'token' must be text, not files", 400)
        return Upload(data=await file.read(), filename=_clean_filename(file.filename), message=message,
                      token=token.strip() if token else None)
    finally:
        await form.close()


async def upload(ws, store, token: str | None, form: Upload, *, tracking_uri: str | None = None) -> SubmitResult:
    """Submit an uploaded file for the team holding ``token`` (the team never comes from the form).

    Goes through :func:`leaderboard.submit.accept_submission`; with a ``tracking_uri`` the
    accepted submission is also logged there as an MLflow run (in the background).

    Raises
    ------
    AuthError, SubmissionError, QuotaError, StoreError, ParameterError, WorkspaceError
        As ``submit_file`` raises them; nothing is stored.
    """
    team = await run_in_threadpool(store.team_for_token, token)
    return await run_in_threadpool(accept_submission, ws, form.data, team=team, filename=form.filename,
                                   message=form.message, store=store, tracking_uri=tracking_uri,
                                   track=tracking_uri is not None)
