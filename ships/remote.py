"""A team's side of the competition server: the HTTP client of its API, and the stored login.

Every request goes through :class:`Client`, which turns whatever goes wrong into one
:class:`RemoteError` whose text is the server's own message (``{"error", "problems"}``) or,
when the server does not answer, what was tried and the fix.  The token travels only in the
``Authorization`` header and never appears in a message.  The stored login is a TOML file
(:func:`read_credentials`, :func:`write_credentials`) whose path the CLI chooses.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import tomli_w

from competition.errors import ParameterError, ShipsError

__all__ = ["RemoteError", "Login", "Client", "check_url", "read_credentials", "write_credentials",
           "remove_credentials", "read_upload", "MAX_UPLOAD_BYTES"]

TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=120.0)  # scoring a submission can take a few seconds
MAX_UPLOAD_BYTES = 100_000_000  # the largest max_upload_bytes a workspace may set; the server checks its own
_FIX_401 = "check the token the organiser gave your team, then run 'ships login' again (or fix SHIPS_TOKEN)"


class RemoteError(ShipsError):
    """The competition server refused a request, answered nonsense, or cannot be reached.

    ``status`` is the HTTP status code (None when no answer came) and ``problems`` the
    server's list of problems (an invalid submission's, one per kind).
    """

    def __init__(self, message: str, status: int | None = None, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = list(problems or [])


@dataclass(frozen=True)
class Login:
    """A server address and a team's token; ``source`` says where they came from (for messages)."""

    url: str
    token: str
    source: str

    def __repr__(self) -> str:  # never show the token
        return f"Login(url={self.url!r}, token='***', source={self.source!r})"


def check_url(url: str, where: str = "--url") -> str:
    """``url`` without its trailing slash, or ParameterError if it is not an http(s) address."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ParameterError(f"{where} {url!r} is invalid; expected the server's address, "
                             "http://HOST[:PORT] or https://HOST[/PATH], e.g. http://127.0.0.1:8000")
    return url.strip().rstrip("/")


class Client:
    """The API of one competition server (see the README's "For teams"), as a team uses it.

    Parameters
    ----------
    url : str
        The server's address, e.g. ``http://127.0.0.1:8000``.
    token : str, optional
        The team's token; the public routes (data, leaderboard) need none.
    timeout : httpx.Timeout
    transport : httpx.BaseTransport, optional
        For tests.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: httpx.Timeout = TIMEOUT, transport=None):
        self.url = check_url(url)
        headers = {"user-agent": "ships-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport,
                                  follow_redirects=True)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def me(self) -> dict:
        """``GET /api/me``: the team, its kind and the competition's rules."""
        return self._json("GET", "/api/me")

    def data_info(self) -> dict:
        """``GET /api/data/info``: sha256, size and filename of the public data archive."""
        return self._json("GET", "/api/data/info")

    def validate(self, data: bytes, filename: str) -> dict:
        """``POST /api/validate``: the server's verdict on a file; never counts to the quota."""
        return self._json("POST", "/api/validate", files={"file": (filename, data, "text/csv")})

    def submit(self, data: bytes, filename: str, message: str = "") -> dict:
        """``POST /api/submissions``: score and record a file; the receipt."""
        return self._json("POST", "/api/submissions", files={"file": (filename, data, "text/csv")},
                          data={"message": message} if message else None)

    def submissions(self) -> dict:
        """``GET /api/submissions``: the team's own submissions, oldest first."""
        return self._json("GET", "/api/submissions")

    def status(self) -> dict:
        """``GET /api/status``: today's quota and the team's finals."""
        return self._json("GET", "/api/status")

    def select(self, ids: list[int]) -> dict:
        """``POST /api/finals``: choose the team's final submissions."""
        return self._json("POST", "/api/finals", json={"ids": [int(i) for i in ids]})

    def leaderboard(self, private: bool = False) -> dict:
        """``GET /leaderboard.json``: the Public board, or the Private one (after finalize)."""
        return self._json("GET", "/leaderboard.json", params={"board": "private" if private else "public"})

    @contextmanager
    def stream(self, path: str, headers: dict | None = None):
        """A streamed ``GET path`` whose status is below 400 (else RemoteError); the caller reads the body."""
        with self._calling("GET", path):
            with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refusal("GET", path, response)
                yield response

    def describe(self, exc: httpx.HTTPError, method: str, path: str) -> RemoteError:
        """The RemoteError for a request that got no (complete) answer."""
        where = f"{method} {self.url}{path}"
        if isinstance(exc, httpx.TimeoutException):
            kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
            return RemoteError(f"{self.url} did not {kind} in time ({where}: {type(exc).__name__}); "
                               "check the address, or try again when the server is less busy")
        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"cannot reach {self.url} ({_reason(exc)}); check the address or whether the "
                               "server is running, then try again or run 'ships login --url URL' with the right one")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return RemoteError(f"{self.url} is not a server address ({_reason(exc)}); expected http://HOST[:PORT]")
        return RemoteError(f"the connection to {self.url} broke ({where}: {_reason(exc)}); try again")

    def _json(self, method: str, path: str, **kwargs) -> dict:
        with self._calling(method, path):
            response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._refusal(method, path, response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RemoteError(f"{method} {self.url}{path} answered HTTP {response.status_code} with something that "
                              f"is not the JSON of a ships server; check that {self.url} is the competition's "
                              "address ('ships serve')", response.status_code)
        return body

    @contextmanager
    def _calling(self, method: str, path: str):
        try:
            yield
        except httpx.HTTPError as exc:
            raise self.describe(exc, method, path) from None

    def _refusal(self, method: str, path: str, response: httpx.Response) -> RemoteError:
        """The server's own message for an HTTP error, with the fix where the client knows one."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return RemoteError(f"{method} {self.url}{path} answered HTTP {status} {response.reason_phrase}; "
                               f"check that {self.url} is the competition's address ('ships serve') and that "
                               "it is up to date", status)
        message, problems = body["error"], [str(p) for p in body.get("problems") or []]
        missing = [p for p in problems if p not in message]
        if missing:
            message += "\n" + "\n".join(missing)
        if status == 401:
            message += f"; {_FIX_401}"
        elif status == 503 and response.headers.get("retry-after"):
            message += f"; try again in {response.headers['retry-after']} seconds"
        return RemoteError(message, status, problems)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def read_upload(path: Path) -> bytes:
    """The bytes of a file to upload, read only if it is a regular file under :data:`MAX_UPLOAD_BYTES`."""
    from competition.errors import SubmissionError

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(str(path), ["not a regular file; expected a CSV file"])
        if info.st_size > MAX_UPLOAD_BYTES:
            raise SubmissionError(str(path), [f"the file is {info.st_size:,} bytes; no server accepts more than "
                                              f"{MAX_UPLOAD_BYTES:,}; expected one short row per test id"])
        with open(path, "rb") as fh:
            return fh.read(MAX_UPLOAD_BYTES + 1)
    except OSError as exc:
        raise SubmissionError(str(path), [f"cannot be read ({exc.strerror or exc}); check the path"]) from None


def read_credentials(path: Path) -> dict | None:
    """``{"url", "token"}`` from the credentials file, None when there is none.

    Raises
    ------
    RemoteError
        If the file cannot be read, is not TOML, or lacks ``url`` or ``token``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RemoteError(f"{path}: cannot be read ({exc}); fix it or remove it with 'ships logout'") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RemoteError(f"{path}: not valid TOML ({exc}); run 'ships login' again to rewrite it") from None
    bad = [k for k in ("url", "token") if not isinstance(data.get(k), str) or not data[k]]
    if bad:
        raise RemoteError(f"{path}: missing {' and '.join(bad)}; expected url = \"http://...\" and token = "
                          "\"...\"; run 'ships login --url URL --token TOKEN' again")
    return {"url": data["url"], "token": data["token"]}


def write_credentials(path: Path, url: str, token: str) -> None:
    """Write the credentials file atomically, readable by its owner only (mode 0600, folder 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            tomli_w.dump({"url": url, "token": token}, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_credentials(path: Path) -> bool:
    """Remove the credentials file; False when there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
