"""The web server and the CLI under hostile input: bounded cost, the right status, nothing private, nothing stored.

One uvicorn server on 127.0.0.1 (in a thread of this process, so that the tests can count
scorings and watch memory) serves a light copy of the real workspace.  Every hostile request
of the table gets its status and message, as JSON (API, .json) or as a page, with the security
headers, without an absolute path, and leaves no record, no file and no scoring behind.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import leaderboard.submit as submit_module
from competition.errors import ParameterError, StoreUnavailableError
from leaderboard.store import Store
from leaderboard.submit import submit_file
from leaderboard.web import make_app
from leaderboard.web.upload import BROKEN, UNAVAILABLE
from ships.cli import app as cli
from workspaces import csv_bytes, light_workspace  # tests/workspaces.py

LIMIT = 200_000  # max_upload_bytes of the served workspace
BODY_TIMEOUT = 3.0
QUOTA = 3
BOUNDARY = "hostile"
HEADERS = ("x-content-type-options", "content-security-policy", "referrer-policy", "x-frame-options")


def form(*parts: tuple, close: bool = True) -> bytes:
    """A multipart body of ``(name, value, filename or None)`` parts, in the given order."""
    out = b""
    for name, value, filename in parts:
        value = value.encode() if isinstance(value, str) else value
        disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("utf-8", "surrogateescape")
        out += value + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


@dataclass
class Live:
    ws: object
    store: Store
    tokens: dict
    port: int
    scored: list  # one entry per call of score_parts

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stored(self) -> tuple[int, list[str]]:
        """The number of records and every file (temporary ones included) under submissions/."""
        return len(self.store.submissions()), sorted(p.name for p in self.ws.submissions_dir.iterdir())


def serve(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


@pytest.fixture(scope="module")
def live(real_workspace_path, tmp_path_factory):
    ws = light_workspace(real_workspace_path, tmp_path_factory.mktemp("hostile") / "ws",
                         daily_quota=QUOTA, max_upload_bytes=LIMIT)
    store = Store.open(ws.store_url, ws.rules, busy_timeout=1.0)
    tokens = {name: store.add_team(name) for name in ("alpha", "beta", "spent")}
    for seed in range(QUOTA):
        submit_file(ws, csv_bytes(ws, 100 + seed), team="spent", store=store, filename=f"s{seed}.csv")
    scored = []
    original = submit_module.score_parts
    submit_module.score_parts = lambda *a, **k: scored.append(1) or original(*a, **k)
    server, thread, port = serve(make_app(ws, store=store, body_timeout=BODY_TIMEOUT))
    try:
        yield Live(ws, store, tokens, port, scored)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        submit_module.score_parts = original
        store.close()


# -- the hostile-input table -------------------------------------------------------------------

VALID = "VALID"  # replaced by a valid CSV of the served workspace
API, FORM = "/api/submissions", "/submit"


@dataclass(frozen=True)
class Hostile:
    path: str
    status: int
    fragment: str
    token: str | None = None  # a team of the fixture, "wrong", or None
    parts: tuple = ()
    body: bytes | None = None
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}"
    method: str = "POST"


def file_part(name="mine.csv", data=VALID):
    return ("file", data, name)


TABLE = {
    # token and quota: refused before the body is read
    "api without token": Hostile(API, 401, "missing team token", parts=(file_part(),)),
    "api with a wrong token": Hostile(API, 401, "invalid team token", "wrong", (file_part(),)),
    "api over quota": Hostile(API, 429, f"has used its {QUOTA} submissions", "spent", (file_part(),)),
    "form with a wrong token": Hostile(FORM, 401, "invalid team token", parts=(("token", "wrong", None), file_part())),
    "form without token": Hostile(FORM, 401, "missing team token", parts=(file_part(),)),
    "form over quota": Hostile(FORM, 429, f"has used its {QUOTA} submissions", "spent", (file_part(),)),
    "form token after the file": Hostile(FORM, 401, "invalid team token",
                                         parts=(file_part(), ("token", "wrong", None))),
    # size
    "body above the limit": Hostile(API, 413, "upload is", "alpha", (file_part(data="0" * (LIMIT + 70_000)),)),
    "file above the limit": Hostile(API, 413, f"the limit is {LIMIT:,} bytes", "alpha",
                                    (file_part(data="1" * (LIMIT + 10)),)),
    # message and file name: refused before scoring
    "message too long": Hostile(API, 422, "at most 10000 characters", "alpha",
                                (file_part(), ("message", "m" * 10_001, None))),
    "message with an escape sequence": Hostile(API, 422, "control character", "alpha",
                                               (file_part(), ("message", "hi\x1b[2J\x1b]0;owned\x07", None))),
    "message with a NUL byte": Hostile(FORM, 422, "control character", "alpha",
                                       (file_part(), ("message", "a\x00b", None))),
    "message with a bidi override": Hostile(API, 422, "control character", "alpha",
                                            (file_part(), ("message", "abc\u202edcba", None))),
    "file name with an escape sequence": Hostile(API, 422, "is not printable", "alpha", (file_part("a\x1b[31m.csv"),)),
    "file name with a NUL byte": Hostile(FORM, 422, "is not printable", "alpha", (file_part("a\x00.csv"),)),
    # malformed forms and files
    "not a form": Hostile(API, 400, "multipart/form-data", "alpha", body=b"id,ship\n", content_type="text/csv"),
    "no boundary": Hostile(API, 400, "multipart/form-data", "alpha", body=b"x", content_type="multipart/form-data"),
    "garbage body": Hostile(API, 400, "malformed form", "alpha", body=b"\x00\xff" * 100),
    "body cut before its end": Hostile(API, 400, "malformed form", "alpha", body=form(file_part("a.csv", "id,ship\n"),
                                                                                     close=False)[:-5]),
    "file sent as text": Hostile(API, 400, "must be a file", "alpha", (("file", "id,ship\n", None),)),
    "token sent as a file": Hostile(FORM, 400, "must be text", parts=(("token", "x", "t.txt"), file_part())),
    "two files": Hostile(API, 400, "more than one field 'file'", "alpha", (file_part(), file_part())),
    "too many parts": Hostile(API, 400, "more than 8 parts", "alpha", tuple(("x", "1", None) for _ in range(9))),
    "invalid csv": Hostile(API, 422, "mine.csv:", "alpha", (file_part(data="id,ship\nzz,1.7\n"),)),
    # pages
    "id beyond 64 bits": Hostile("/submissions/9223372036854775808.json", 404, "no submission", method="GET"),
    "id of 5000 digits": Hostile("/submissions/" + "9" * 5000, 404, "no submission", method="GET"),
    "id of 5000 digits, json": Hostile("/submissions/" + "7" * 5000 + ".json", 404, "no submission", method="GET"),
    "id zero": Hostile("/submissions/0.json", 404, "no submission 0", method="GET"),
    "negative id": Hostile("/submissions/-1", 404, "no submission -1", method="GET"),
    "unknown id": Hostile("/submissions/987654.json", 404, "no submission 987654", method="GET"),
    "team with escapes": Hostile("/teams/%1b%5b2J%00.json", 404, "unknown team", method="GET"),
    "post to a page": Hostile("/", 405, "Method Not Allowed", body=b"x=1"),
    "unknown board": Hostile("/leaderboard.json?board=%1b", 400, "board='\\x1b' is invalid", method="GET"),
}


def send(live: Live, row: Hostile):
    token = {"wrong": "not-a-token", None: None}.get(row.token, live.tokens.get(row.token))
    valid = csv_bytes(live.ws, 7)
    parts = tuple((n, valid if v == VALID else v, f) for n, v, f in row.parts)
    if row.path == FORM and token is not None:
        parts = (("token", token, None), *parts)
    body = row.body if row.body is not None else form(*parts) if parts else b""
    headers = {"content-type": row.content_type} if row.method == "POST" else {}
    if row.path == API and token is not None:
        headers["authorization"] = f"Bearer {token}"
    return live.request(row.method, row.path, body, headers)


@pytest.mark.parametrize("name", list(TABLE))
def test_hostile_input_gets_its_status_and_stores_nothing(live, name):
    row = TABLE[name]
    before, scored = live.stored(), len(live.scored)
    status, headers, text = send(live, row)
    assert status == row.status, text[:500]
    if row.path.split("?")[0].endswith(".json") or row.path.startswith("/api/"):
        assert headers["content-type"] == "application/json", headers
        assert row.fragment in json.loads(text)["error"]
    else:
        assert headers["content-type"].startswith("text/html"), headers
        assert row.fragment in text.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
    assert all(h in headers for h in HEADERS), headers
    assert str(live.ws.root) not in text and "Traceback" not in text
    assert live.stored() == before, "a refused request left a record or a file"
    assert len(live.scored) == scored, "a refused request was scored"


def test_a_valid_upload_is_accepted_by_both_routes(live):
    before = live.stored()
    status, _, text = live.request("POST", API, form(file_part(data=csv_bytes(live.ws, 1)), ("message", "two\nlines", None)),
                                   {"content-type": f"multipart/form-data; boundary={BOUNDARY}",
                                    "authorization": f"Bearer {live.tokens['beta']}"})
    assert status == 201, text
    entry = json.loads(text)
    assert live.store.submission(entry["id"]).message == "two\nlines"
    crlf = form(("token", live.tokens["beta"], None), file_part(data=csv_bytes(live.ws, 2)), ("message", "a\r\nb", None))
    status, _, text = live.request("POST", FORM, crlf, {"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert status == 201 and "Accepted" in text, text
    records, files = live.stored()
    assert records == before[0] + 2 and len(files) == len(before[1]) + 2
    assert live.store.submissions("beta")[-1].message == "a\nb"  # the browser's CRLF read as one newline
    assert (live.ws.submissions_dir / f"{entry['file_sha256']}.csv").read_bytes() == csv_bytes(live.ws, 1)


# -- cost: refused before the file is read; slow and huge bodies ------------------------------------

def _raw(live: Live, path: str, head: bytes, declared: int, extra_headers: str = "") -> tuple[socket.socket, float]:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=BODY_TIMEOUT * 3)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                 f"Content-Length: {declared}\r\n{extra_headers}\r\n".encode() + head)
    return sock, time.monotonic()


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _start(route: str, token: str) -> tuple[bytes, str]:
    """The first bytes of an upload's body (the token field for the form, the file's first line) and its header."""
    file_head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nid,ship\n'
    if route == API:
        return file_head.encode(), f"Authorization: Bearer {token}\r\n"
    return form(("token", token, None), close=False) + file_head.encode(), ""


@pytest.mark.parametrize("route, team, status", [(API, "wrong", 401), (API, "spent", 429),
                                                 (FORM, "wrong", 401), (FORM, "spent", 429)])
def test_refusal_comes_before_the_file_is_sent(live, route, team, status):
    """The client sends the headers (and for the form the token field and the file's first bytes), then waits:
    the answer comes at once, not after the body timeout."""
    head, auth = _start(route, live.tokens.get(team, "not-a-token"))
    before = live.stored()
    sock, t0 = _raw(live, route, head, declared=LIMIT, extra_headers=auth)
    with sock:
        answer = _answer(sock)
    elapsed = time.monotonic() - t0
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"connection: close" in answer.lower()
    assert elapsed < BODY_TIMEOUT, f"{elapsed:.2f} s: the server waited for the body"
    assert live.stored() == before


@pytest.mark.parametrize("route", [API, FORM])
def test_a_slow_body_is_cut_with_408(live, route):
    head, auth = _start(route, live.tokens["alpha"])
    before = live.stored()
    sock, t0 = _raw(live, route, head, declared=50_000, extra_headers=auth)
    with sock:
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() - t0 < BODY_TIMEOUT + 10 and not answer:
            try:
                # One byte a second, stopping a second before the cut: a byte still unread when the server
                # closes turns the close into a reset, which may drop the answer before the client reads it.
                if time.monotonic() - t0 < BODY_TIMEOUT - 1:
                    sock.sendall(b"x")
                answer = sock.recv(65536)
            except socket.timeout:
                time.sleep(0.8)
            except OSError:
                break
        elapsed = time.monotonic() - t0
        sock.settimeout(5)
        while answer and (chunk := sock.recv(65536)):  # the rest of the answer, until the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"did not arrive within 3 seconds" in answer
    assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + 5
    assert live.stored() == before


def _rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


def test_urllib_reads_the_413_of_a_100_mb_upload(live):
    """urllib sends the whole body before reading: the server drains it (memory flat) and urllib gets the 413."""
    size, chunk = 100_000_000, b"0" * 65536

    def body():
        for _ in range(size // len(chunk)):
            yield chunk
        yield b"0" * (size % len(chunk))

    before, rss = live.stored(), _rss()
    request = urllib.request.Request(f"http://127.0.0.1:{live.port}{API}", data=body(), method="POST", headers={
        "content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": str(size),
        "authorization": f"Bearer {live.tokens['alpha']}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 413
    assert json.loads(info.value.read())["error"].startswith("upload is 100,000,000 bytes")
    assert _rss() - rss < 30 * 2**20
    assert live.stored() == before


# -- server faults: 503 or 500, nothing private ----------------------------------------------------

def test_a_locked_store_is_503_with_retry_after_quickly(live):
    before, db = live.stored(), live.ws.root / "leaderboard.db"
    holder = sqlite3.connect(db, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        status, headers, text = live.request("POST", API, form(file_part(data=csv_bytes(live.ws, 3))), {
            "content-type": f"multipart/form-data; boundary={BOUNDARY}", "authorization": f"Bearer {live.tokens['alpha']}"})
        elapsed = time.monotonic() - t0
    finally:
        holder.rollback()
        holder.close()
    assert status == 503, text
    assert headers["retry-after"] == "5" and json.loads(text)["error"] == UNAVAILABLE
    assert elapsed < 15 and str(db) not in text and "sqlite" not in text
    assert live.stored() == before  # no record, and the staged file is gone


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_locked_store_is_unavailable_after_its_busy_timeout(backend, tmp_path):
    """The store's busy timeout, on both databases: a write waits that long for another writer, then gives up."""
    import pg
    from sqlalchemy import create_engine, text

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'leaderboard.db'}"
        hold = "BEGIN IMMEDIATE"
    else:
        try:
            url = pg.get_server().new_database()
        except pg.PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL server unavailable: {exc}")
        hold = "SELECT * FROM competition_state FOR UPDATE"
    store = Store.open(url, busy_timeout=0.5)
    store.add_team("alpha")
    holder = create_engine(url, isolation_level="AUTOCOMMIT" if backend == "sqlite" else None).connect()
    try:
        if backend == "postgresql":
            holder.begin()
        holder.execute(text(hold))
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="(?s)is unavailable: .*nothing was changed, try again"):
            store.select_finals("alpha", [])
        assert time.monotonic() - t0 < 5
    finally:
        holder.close()
    assert store.select_finals("alpha", []) == []  # free again
    store.close()


def test_an_unexpected_failure_is_500_json_or_a_page_with_the_headers(live, monkeypatch):
    from sqlalchemy.exc import DatabaseError

    def broken(*_a, **_k):
        raise DatabaseError("SELECT", {}, Exception(f"database disk image is malformed: {live.ws.root}"))

    monkeypatch.setattr(live.store, "submission", broken)
    for path, kind in (("/submissions/1.json", "application/json"), ("/submissions/1", "text/html")):
        status, headers, text = live.request("GET", path)
        assert status == 500 and headers["content-type"].startswith(kind), text
        assert all(h in headers for h in HEADERS)
        assert "internal error" in text and str(live.ws.root) not in text and "malformed" not in text


def test_a_changed_solution_tells_a_team_only_that_scoring_is_unavailable(real_workspace_path, tmp_path):
    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    store = Store.open(ws.store_url, ws.rules)
    token = store.add_team("alpha")
    data = csv_bytes(ws, 5)
    with ws.solution_path.open("a") as fh:
        fh.write("\n")
    client = TestClient(make_app(ws, store=store))
    r = client.post(API, headers={"authorization": f"Bearer {token}"}, files={"file": ("mine.csv", data)})
    assert r.status_code == 503 and r.json()["error"] == BROKEN and r.headers["retry-after"] == "5"
    page = client.post(FORM, data={"token": token}, files={"file": ("mine.csv", data)})
    assert page.status_code == 503 and "scoring is unavailable; the organiser has been told" in page.text
    for text in (r.text, page.text):
        assert "solution" not in text and str(ws.root) not in text and ws.config.solution_sha256[:8] not in text
    (tmp_path / "mine.csv").write_bytes(data)
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "mine.csv"), "-w", str(ws.root), "--no-track"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"{ws.solution_path}: changed since `ships init`" in result.output  # the organiser's precise message
    assert store.submissions() == [] and list(ws.submissions_dir.iterdir()) == []
    store.close()


# -- the store's password, ids beyond 64 bits, terminal safety ---------------------------------------

PG_URL = "postgresql+psycopg://ships:s3cret-pw@127.0.0.1:1/ships"


def test_the_store_password_is_never_shown(workspace, monkeypatch):
    with pytest.raises(StoreUnavailableError) as info:
        Store.open(PG_URL, busy_timeout=1)
    assert "s3cret-pw" not in str(info.value) and "ships:***@127.0.0.1:1" in str(info.value)
    assert "\n" not in str(info.value)  # one line, though psycopg's own message has two
    with pytest.raises(Exception) as info:
        Store.open("postgresql://ships:s3cret-pw@host:port/ships")
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)
    toml = workspace.root / "ships.toml"
    toml.write_text(toml.read_text().replace('store_url = ""', f'store_url = "{PG_URL}"'))
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: None)
    for args in (["leaderboard"], ["submissions"], ["serve"], ["serve", "--workers", "2"], ["config", "show"],
                 ["config", "show", "--json"]):
        result = CliRunner().invoke(cli, [*args, "-w", str(workspace.root)], env={"COLUMNS": "200"})
        assert "s3cret-pw" not in result.output, args
        if args[0] != "config":
            assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
            assert result.output.startswith("Error: cannot open the store at postgresql+psycopg://ships:***@")
    shown = CliRunner().invoke(cli, ["config", "show", "--json", "-w", str(workspace.root)]).output
    assert json.loads(shown)["store_url"] == "postgresql+psycopg://ships:***@127.0.0.1:1/ships"


def test_select_of_an_id_beyond_64_bits_is_one_error_line(workspace):
    runner = CliRunner()
    assert runner.invoke(cli, ["team", "add", "alpha", "-w", str(workspace.root)]).exit_code == 0
    for sid in ("99999999999999999999", "9223372036854775808", "0"):
        result = runner.invoke(cli, ["select", sid, "--team", "alpha", "-w", str(workspace.root)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.output.strip() == f"Error: submission id {sid} is invalid; expected an integer from 1 to " \
                                        f"9223372036854775807; see 'ships submissions' for the ids"


def test_the_store_refuses_control_characters(workspace):
    store = Store.open(workspace.store_url, workspace.rules)
    for name in ("a\x1b[2Jb", "a\x00", "abc\u202e"):
        with pytest.raises(ParameterError, match="not printable"):
            store.add_team(name)
    data = csv_bytes(workspace, 9)
    for kwargs, match in (({"message": "\x1b]0;x\x07"}, "control character"),
                          ({"message": "a\u2028b"}, "control character"),
                          ({"filename": "evil\x1b[31m.csv"}, "not printable"), ({"message": "m" * 10_001}, "10000")):
        with pytest.raises(ParameterError, match=match):
            submit_file(workspace, data, team="alpha", store=store, **kwargs)
    assert store.submissions() == [] and list(workspace.submissions_dir.iterdir()) == []
    store.close()


def test_the_cli_shows_control_characters_of_older_records_escaped(workspace, monkeypatch):
    """Records written before the checks (or by another writer) are printed escaped, never obeyed."""
    import leaderboard.store.submissions as part
    import leaderboard.store.teams as teams

    monkeypatch.setattr(teams, "check_name", lambda name: name)
    monkeypatch.setattr(part, "check_message", lambda message: message)
    monkeypatch.setattr(part, "check_filename", lambda filename: filename)
    monkeypatch.setattr(submit_module, "check_can_submit", lambda *a, **k: None)
    store = Store.open(workspace.store_url, workspace.rules)
    store.add_team("red\x1b[31m")
    submit_file(workspace, csv_bytes(workspace, 4), team="red\x1b[31m", store=store, message="clear\x1b[2J\x00",
                filename="f\x1b]0;t\x07.csv")
    store.close()
    for args in (["submissions"], ["leaderboard"], ["team", "list"], ["status", "--team", "red\x1b[31m"]):
        result = CliRunner().invoke(cli, [*args, "-w", str(workspace.root)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x00" not in result.output and "\x07" not in result.output, args
        assert "red\\x1b[31m" in result.output, (args, result.output)
    shown = CliRunner().invoke(cli, ["submissions", "-w", str(workspace.root)], env={"COLUMNS": "250"}).output
    assert "clear\\x1b[2J\\x00" in shown and "f\\x1b]0;t\\x07.csv" in shown
