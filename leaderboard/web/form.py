"""Reading an upload form as it streams in: the token first, the file only for a team that may submit.

:func:`read_upload` feeds the request body, chunk by chunk, to python-multipart's streaming
parser and never holds more than the file's limit plus :data:`FORM_SLACK`.  As soon as the
``token`` field is complete it awaits ``on_token`` (which looks the team up and checks its
quota): a refusal raised there stops the read, so a wrong token or a used-up quota costs the
bytes that came before the token, not the file.  The upload form sends the token before the
file; a client that sends it after the file (or not at all) is checked once the body is read,
still before any scoring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from competition.errors import ShipsError

__all__ = ["FORM_SLACK", "UploadError", "Upload", "check_length", "read_upload"]

FORM_SLACK = 64 * 1024  # bytes of multipart framing and small fields allowed beyond the file's own limit
MAX_PARTS = 8  # file, token, message and a few ignored fields
_TOO_LARGE_FIX = "Submit one row per test id with a short probability (e.g. 0.1234)"


class UploadError(ShipsError):
    """A request that cannot be turned into a submission (too large, too slow, malformed form)."""

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


def _too_large(size: int, limit: int) -> UploadError:
    return UploadError(f"upload is {size:,} bytes or more; the limit is {limit:,} bytes for the file "
                       f"(plus {FORM_SLACK:,} for the form). {_TOO_LARGE_FIX}", 413)


def _malformed(reason: str) -> UploadError:
    return UploadError(f"malformed form: {reason}; send a multipart/form-data body with the CSV in the field "
                       "'file' (e.g. curl -F file=@submission.csv)", 400)


def check_length(request: Request, limit: int) -> None:
    """Refuse a request whose declared Content-Length is above ``limit`` plus :data:`FORM_SLACK`.

    Raises
    ------
    UploadError
        413.
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit():
        size = int(declared) if len(declared) <= 18 else 10**18
        if size > limit + FORM_SLACK:
            raise _too_large(size, limit)


def _clean_filename(name: str | None) -> str:
    """The base name of an uploaded file (no client folder), at most 255 characters."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
    return (base or "upload.csv")[:255]


class _Parts:
    """python-multipart callbacks that keep the file, the token and the message, within bounds."""

    def __init__(self):
        self.text: dict[str, str] = {}
        self.file: bytes | None = None
        self.filename: str | None = None
        self.ended = False
        self._count = 0
        self._header = [b"", b""]
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end, "on_end": self.on_end}

    def on_part_begin(self) -> None:
        self._count += 1
        if self._count > MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        self._disposition, self._name, self._is_file, self._data = b"", None, False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def on_header_end(self) -> None:
        if self._header[0].strip().lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise _malformed("a part has no Content-Disposition name")
        self._name = options[b"name"].decode("utf-8", "replace")
        self._is_file = b"filename" in options
        if self._name == "file":
            if not self._is_file:
                raise UploadError("the field 'file' must be a file (curl -F file=@submission.csv), not text", 400)
            if self.file is not None:
                raise _malformed("more than one field 'file'")
            self.filename = _clean_filename(options[b"filename"].decode("utf-8", "replace"))
        elif self._is_file and self._name in ("token", "message"):
            raise UploadError("the fields 'message' and 'token' must be text, not files", 400)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._name != "file" and len(self._data) > FORM_SLACK:
            raise _malformed(f"the field {self._name!r} is over {FORM_SLACK:,} bytes")

    def on_part_end(self) -> None:
        if self._name == "file":
            self.file = bytes(self._data)
        elif self._name in ("token", "message") and self._name not in self.text:
            self.text[self._name] = self._data.decode("utf-8", "replace")
        self._data = bytearray()

    def on_end(self) -> None:
        self.ended = True


async def _chunks(receive, cap: int, limit: int) -> AsyncIterator[bytes]:
    """The request body's chunks; 413 once it passes ``cap`` bytes, whatever Content-Length said."""
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise UploadError("the client closed the connection before the whole body arrived", 400)
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > cap:
            raise _too_large(seen, limit)
        yield chunk
        if not message.get("more_body", False):
            return


async def read_upload(request: Request, limit: int,
                      on_token: Callable[[str | None], Awaitable[None]] | None = None) -> Upload:
    """Read a multipart upload (fields ``file``, ``message``, ``token``) as it streams, within bounds.

    Parameters
    ----------
    request : Request
    limit : int
        The file's size limit; the body may hold :data:`FORM_SLACK` more bytes of framing and fields.
    on_token : async callable, optional
        Awaited with the ``token`` field (None if absent) as soon as it is complete, or once the
        body is read when it comes after the file; whatever it raises stops the read.

    Raises
    ------
    UploadError
        413 above the cap (from Content-Length before any byte is read, or as the body grows);
        400 for a request that is not a well-formed multipart form with one file.
    """
    cap = limit + FORM_SLACK
    check_length(request, limit)
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError("expected a multipart/form-data body with the CSV in the field 'file'", 400)
    parts = _Parts()
    try:
        parser = MultipartParser(params[b"boundary"], parts.callbacks(), max_header_count=8, max_header_size=4096)
        checked = on_token is None
        async for chunk in _chunks(request.receive, cap, limit):
            parser.write(chunk)
            if not checked and "token" in parts.text:
                checked = True
                await on_token(parts.text["token"].strip() or None)
        parser.finalize()
    except FormParserError as exc:
        raise _malformed(str(exc)) from None
    if not parts.ended:
        raise _malformed("the body ended before the closing boundary")
    token = (parts.text.get("token") or "").strip() or None
    if not checked:
        await on_token(token)
    if parts.file is None:
        raise UploadError("missing file: send the CSV in the form field 'file'", 400)
    message = parts.text.get("message", "").replace("\r\n", "\n")  # browsers send a textarea's newlines as CRLF
    return Upload(data=parts.file, filename=parts.filename or "upload.csv", message=message, token=token)
