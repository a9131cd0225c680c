"""The teams' side: `ships login`, `download`, `validate`, `submit`, `submissions`, `status`, `leaderboard`,
`select` and `logout` against a live server (uvicorn on 127.0.0.1), from a team's own HOME and folder."""

from __future__ import annotations

import hashlib
import shutil
import socket
import stat
import threading
import time
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from competition.errors import DataError
from ships.cli import app
from ships.fetch import MARKER, UnpackLimits, unpack_archive
from ships.remote import Client, RemoteError
from workspaces import light_workspace  # tests/workspaces.py

runner = CliRunner()
TEAM = "Harbour Watch of the Northern Bay Area Research Group 2024"  # wider than its column at 80 columns
SERVER_LIFETIME_S = 300  # a server left by a failed test stops by itself


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CutOnce:
    """ASGI wrapper: records the Range header of every data request, and cuts one response short when armed."""

    def __init__(self, app):
        self.app, self.cut_after, self.ranges = app, None, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/api/data":
            return await self.app(scope, receive, send)
        self.ranges.append(dict(scope["headers"]).get(b"range", b"").decode())
        limit, self.cut_after, sent = self.cut_after, None, 0

        async def cutting(message):
            nonlocal sent
            if limit is not None and message["type"] == "http.response.body":
                body = message.get("body", b"")
                if sent + len(body) >= limit:
                    await send({"type": "http.response.body", "body": body[:limit - sent], "more_body": True})
                    raise ConnectionAbortedError("the test cuts the download here")
                sent += len(body)
            await send(message)

        await self.app(scope, receive, cutting)


@pytest.fixture
def server(real_workspace_path, tmp_path):
    """The organiser's light workspace (a few images) served on 127.0.0.1, with two teams."""
    import uvicorn

    from leaderboard.store import Store
    from leaderboard.web import make_app

    ws = light_workspace(real_workspace_path, tmp_path / "organiser" / "ws", daily_quota=3)
    shutil.copy(real_workspace_path / "public" / "LICENSE-DATA.md", ws.public_dir)
    for part in ("train", "test"):
        (ws.public_dir / part).mkdir()
        for png in sorted((real_workspace_path / "public" / part).glob("*.png"))[:5]:
            shutil.copy(png, ws.public_dir / part)
    store = Store.open(ws.store_url, ws.rules)
    tokens = {TEAM: store.add_team(TEAM), "rival": store.add_team("rival")}
    wrapped = CutOnce(make_app(ws, store=store, revision_ttl=0))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(wrapped, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    stopper = threading.Timer(SERVER_LIFETIME_S, lambda: setattr(uv, "should_exit", True))
    stopper.daemon = True
    thread.start()
    stopper.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", ws=ws, store=store, tokens=tokens, cut=wrapped)
    uv.should_exit = True
    stopper.cancel()
    thread.join(timeout=15)
    store.close()


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A team's machine: its own HOME, config folder and working folder, no ships variables."""
    for name in ("SHIPS_URL", "SHIPS_TOKEN", "SHIPS_WORKSPACE", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    (tmp_path / "team").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "team")
    return SimpleNamespace(credentials=home / ".config" / "ships" / "credentials.toml", folder=tmp_path / "team")


def ships(*args, env=None):
    """Run ``ships ARGS`` in an 80-column terminal."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "80", **(env or {})})


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def error_of(result) -> str:
    """The ``Error: ...`` text of a failed command (exit 1, no traceback)."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exit_code, result.output)
    lines = result.output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    assert len(starts) == 1, result.output
    return "\n".join(lines[starts[0]:])


def predictions(ws, path: Path, quality: float, seed: int = 0) -> Path:
    """A submission of about the given quality (the test writes it from the solution)."""
    sol = ws.load_solution()
    rng = np.random.default_rng(seed)
    ship = (quality * sol.y_true + rng.random(len(sol.ids))) / (1 + quality)
    path.write_text("id,ship\n" + "".join(f"{i},{p:.4f}\n" for i, p in zip(sol.ids, ship)))
    return path


def column(table: str, index: int) -> list[str]:
    """The words of one column of a rich table's body, its folded lines joined."""
    cells = [line.split("│")[index] for line in table.splitlines() if line.startswith("│")]
    return " ".join(cells).split()


def test_a_team_from_login_to_the_private_board(server, team):
    url, token, ws, store = server.url, server.tokens[TEAM], server.ws, server.store
    outputs = []

    def run(*args):
        result = ships(*args)
        outputs.append(result.output)
        return result

    assert "invalid team token" in error_of(run("login", "--url", url, "--token", "not-the-token"))
    assert not team.credentials.exists()
    assert f"Logged in to {url} as team {TEAM}" in ok(run("login", "--url", url + "/", "--token", token))
    assert stat.S_IMODE(team.credentials.stat().st_mode) == 0o600
    assert tomllib.loads(team.credentials.read_text()) == {"url": url, "token": token}

    result = run("download")
    out, data = ok(result), Path("shipsnet-data")
    info = httpx.get(f"{url}/api/data/info").json()
    assert f"into {data}: 16 files" in out and f"{info['filename']} ━" in result.stderr  # the bar, on stderr
    assert sorted(p.name for p in data.iterdir()) == sorted([MARKER, "LICENSE-DATA.md", "README.md", "folds.csv",
                                                             "sample_submission.csv", "test", "test.csv", "train",
                                                             "train.csv"])
    assert (data / "test.csv").read_bytes() == (ws.public_dir / "test.csv").read_bytes()
    assert len(list((data / "train").glob("*.png"))) == 5 and not Path("shipsnet-data.zip.part").exists()
    assert "is up to date" in ok(run("download"))

    bad = Path("bad.csv")
    bad.write_text("".join((data / "sample_submission.csv").read_text().splitlines(keepends=True)[:50]))
    here, there = error_of(run("validate", bad)), error_of(run("validate", "--remote", bad))
    assert here == there and "bad.csv: 49 rows but the test set has" in here  # the server's own messages
    assert "nothing was sent" in ok(run("validate", predictions(ws, Path("good.csv"), 0.8)))
    assert "does not count to the quota" in ok(run("validate", "--remote", "good.csv"))

    out = ok(run("submit", "good.csv", "-m", "first try"))
    first = store.submissions(TEAM)[-1]
    assert out.splitlines()[0] == f"Submitted to {url} as team {TEAM}"
    assert f"Submission {first.id} by {TEAM}: Public roc_auc {first.public_score:.4f} [" in out
    assert "your best so far; rank 1 on the Public leaderboard" in out
    assert "2 of 3 submissions left today; the quota resets at" in out
    out = ok(run("score", predictions(ws, Path("worse.csv"), 0.1, seed=1), "-m", "second"))
    assert "not your best; rank 1" in out and "1 of 3 submissions left today" in out
    second = store.submissions(TEAM)[-1]
    assert first.message == "first try" and second.message == "second"

    out = ok(run("submissions"))
    assert column(out, 1) == [str(second.id), str(first.id)]  # newest first
    assert column(out, 7) == ["second", "first", "try"] and f"of {TEAM}" in " ".join(out.split())
    assert "2 of 3 submissions used" in ok(run("status"))
    out = ok(run("leaderboard"))
    assert "Public leaderboard" in out and column(out, 2) == TEAM.split()  # folded, never cut

    assert "no submission 999" in error_of(run("select", 999))
    assert f"final submissions {first.id}" in ok(run("select", first.id))
    assert store.final_ids()[TEAM] == [first.id]
    assert f"Final submissions: {first.id}." in ok(run("status"))
    assert "Private" in error_of(run("leaderboard", "--private"))  # not before finalize

    store.finalize()
    out = ok(run("leaderboard", "--private"))
    assert "Private leaderboard" in out and "".join(column(out, 2)) == TEAM.replace(" ", "") and "move" in out
    assert "private" in ok(run("submissions"))
    assert "finalized" in error_of(run("submit", "good.csv"))
    assert all(token not in text for text in outputs)


def test_a_broken_download_resumes_where_it_stopped(server, team):
    info = httpx.get(f"{server.url}/api/data/info").json()
    server.cut.cut_after = info["size"] // 3
    message = error_of(ships("download", "--url", server.url))
    assert "was interrupted after" in message and "run 'ships download' again to resume" in message
    part = Path("shipsnet-data.zip.part")
    assert part.stat().st_size == info["size"] // 3 and not Path("shipsnet-data").exists()
    assert "16 files" in ok(ships("download", "--url", server.url))
    assert server.cut.ranges == ["", f"bytes={info['size'] // 3}-"]
    assert not part.exists() and (Path("shipsnet-data") / "test.csv").is_file()


def test_a_corrupt_download_is_refused_and_removed(server, team):
    whole = httpx.get(f"{server.url}/api/data").content
    part = Path("shipsnet-data.zip.part")
    part.write_bytes(whole[:100] + bytes([whole[100] ^ 0xFF]) + whole[101:len(whole) // 2])
    message = error_of(ships("download", "--url", server.url))
    assert "is corrupt" in message and hashlib.sha256(whole).hexdigest() in message
    assert not part.exists() and not Path("shipsnet-data").exists()
    assert not list(team.folder.glob(".shipsnet-data-*"))  # no temporary folder left
    ok(ships("download", "--url", server.url))


def test_download_keeps_a_folder_that_is_not_its_own(server, team):
    Path("shipsnet-data").mkdir()
    Path("shipsnet-data/notes.txt").write_text("mine")
    assert "pass --force" in error_of(ships("download", "--url", server.url))
    assert Path("shipsnet-data/notes.txt").read_text() == "mine"
    ok(ships("download", "--url", server.url, "--force"))
    assert not Path("shipsnet-data/notes.txt").exists() and Path("shipsnet-data/train.csv").is_file()


def test_download_into_a_place_that_cannot_be_written(server, team):
    Path("a-file").write_text("")
    message = error_of(ships("download", "--url", server.url, "--out", "a-file/data"))
    assert message == ("Error: a-file/data.zip.part: cannot write (Not a directory); check the folder's permissions "
                       "and the free space, or pass --out another folder")


def test_the_quota_is_the_servers(server, team):
    ok(ships("login", "--url", server.url, "--token", server.tokens["rival"]))
    good = predictions(server.ws, Path("good.csv"), 0.5)
    for _ in range(3):
        ok(ships("submit", good))
    assert "quota" in error_of(ships("submit", good)).lower()


def test_environment_overrides_the_stored_login(server, team):
    ok(ships("login", "--url", server.url, "--token", server.tokens[TEAM]))
    assert ok(ships("status")).startswith(TEAM)
    rival = {"SHIPS_TOKEN": server.tokens["rival"]}
    assert ok(ships("status", env=rival)).startswith("rival:")
    both = {"SHIPS_URL": server.url, "SHIPS_TOKEN": server.tokens["rival"]}
    assert ok(ships("status", env=both)).startswith("rival:")
    other = f"http://127.0.0.1:{_free_port()}"
    message = error_of(ships("status", env={"SHIPS_URL": other}))
    assert f"SHIPS_URL is set ({other}) but no token for it" in message  # the stored token is not sent elsewhere
    assert "--team is the organiser's" in error_of(ships("status", "--team", "rival"))


def test_the_precedence_rule(server, team, monkeypatch):
    ok(ships("login", "--url", server.url, "--token", server.tokens[TEAM]))
    good = predictions(server.ws, Path("good.csv"), 0.5)
    ws = str(server.ws.root)
    out = ok(ships("score", good, "--workspace", ws, "--team", "organiser-test", "--create", "--no-track"))
    assert out.splitlines()[0] == f"Scored in workspace {ws}"
    out = ok(ships("score", good, "--team", "organiser-test", "--create", "--no-track", env={"SHIPS_WORKSPACE": ws}))
    assert out.splitlines()[0] == f"Scored in workspace {ws}"
    n = len(server.ws.test_ids())
    assert ok(ships("validate", good, "--workspace", ws)).strip() == f"good.csv: valid, {n} rows for {n} test ids."
    assert "--team is for the organiser's workspace" in error_of(ships("score", good, "--team", "x"))
    assert ok(ships("submit", good)).startswith(f"Submitted to {server.url} as team {TEAM}")
    assert "Logged out" in ok(ships("logout")) and not team.credentials.exists()
    assert "Not logged in" in ok(ships("logout"))
    message = error_of(ships("validate", good))  # no login, no download, no ./workspace
    assert "shipsnet-data: no downloaded data there; run 'ships download'" in message
    for args in (("status",), ("leaderboard",), ("submissions",), ("select", "1"), ("submit", good)):
        result = ships(*args)  # logged out, and no ./workspace: what a team does, and what an organiser does
        assert result.exit_code == 1, (args, result.output)
        assert error_of(result) == ("Error: not logged in to a competition server, and no workspace at ./workspace: "
                                    "a team runs 'ships login --url URL' first; an organiser passes --workspace DIR "
                                    "(or creates one with 'ships init')"), args


@pytest.mark.parametrize("args", [
    ("login", "--url", "{url}", "--token", "t0ken-never-shown"),
    ("download", "--url", "{url}"),
    ("submit", "x.csv"),
    ("submissions",),
    ("status",),
    ("leaderboard",),
    ("select", "1"),
    ("validate", "--remote", "x.csv"),
])
def test_an_unreachable_server_is_one_error_line(team, args):
    url = f"http://127.0.0.1:{_free_port()}"
    Path("x.csv").write_text("id,ship\n")
    result = ships(*(a.format(url=url) for a in args), env={"SHIPS_URL": url, "SHIPS_TOKEN": "t0ken-never-shown"})
    message = error_of(result)
    assert message.startswith(f"Error: cannot reach {url} (") and "check the address" in message
    assert "\n" not in message and "t0ken-never-shown" not in result.output


@pytest.mark.parametrize("url, expected", [
    ("ftp://example.org", "--url 'ftp://example.org' is invalid; expected the server's address"),
    ("127.0.0.1:8000", "--url '127.0.0.1:8000' is invalid"),
    ("http://", "--url 'http://' is invalid"),
    ("{url}/not-the-api", "answered HTTP 404 Not Found; check that"),
])
def test_a_bad_address_is_refused(server, team, url, expected):
    assert expected in error_of(ships("login", "--url", url.format(url=server.url), "--token", "x"))
    assert not team.credentials.exists()


@pytest.mark.parametrize("args, test_csv, expected", [
    (("validate", "f.csv"), "name\nx\n", "shipsnet-data/test.csv: no 'id' column; expected the header 'id'"),
    (("validate", "f.csv", "--data", "elsewhere"), None, "elsewhere: no downloaded data there"),
    (("validate", "f.csv", "--data", "shipsnet-data", "--workspace", "ws"), "id\nx\n", "--data and --workspace"),
    (("validate", "f.csv", "--remote"), None, "--remote needs a login; run 'ships login"),
    (("download",), None, "no server to download from; pass --url URL"),
])
def test_a_team_without_what_a_command_needs(team, args, test_csv, expected):
    Path("f.csv").write_text("id,ship\nx,0.5\n")
    if test_csv is not None:
        Path("shipsnet-data").mkdir()
        Path("shipsnet-data/test.csv").write_text(test_csv)
    assert expected in error_of(ships(*args))


# -- the client's handling of answers, and the unpacking, without a server ---------------------------

def _client(status: int, body: bytes, headers=None) -> Client:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers))
    return Client("http://ships.test", "secret", transport=transport)


@pytest.mark.parametrize("status, body, headers, expected", [
    (401, b'{"error": "invalid team token", "problems": []}', None, "invalid team token; check the token"),
    (503, b'{"error": "scoring is unavailable", "problems": []}', {"retry-after": "30"}, "try again in 30 seconds"),
    (422, b'{"error": "f.csv: bad", "problems": ["f.csv: bad", "extra"]}', None, "f.csv: bad\nextra"),
    (502, b"<html>Bad Gateway</html>", None, "answered HTTP 502 Bad Gateway"),
    (200, b"<html>a login page</html>", None, "is not the JSON of a ships server"),
])
def test_the_servers_answers_become_one_error(status, body, headers, expected):
    with pytest.raises(RemoteError) as caught, _client(status, body, headers) as client:
        client.status()
    assert expected in str(caught.value) and "secret" not in str(caught.value)


def _zip(path: Path, members: dict, links=()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


GOOD = {"train.csv": "id\n", "test.csv": "id\n", "folds.csv": "id\n", "sample_submission.csv": "id,ship\n"}


@pytest.mark.parametrize("members, links, limits, expected", [
    ({**GOOD, "/etc/evil": "x"}, (), UnpackLimits(), "'/etc/evil' has an absolute path"),
    ({**GOOD, "../evil": "x"}, (), UnpackLimits(), "'../evil' has an empty, '.' or '..' path component"),
    ({**GOOD, "train/../../evil": "x"}, (), UnpackLimits(), "'train/../../evil' has an empty"),
    ({**GOOD, "..\\evil": "x"}, (), UnpackLimits(), "has a backslash"),
    ({**GOOD, "C:/evil": "x"}, (), UnpackLimits(), "'C:/evil' has an absolute path"),
    (GOOD, ("train/link",), UnpackLimits(), "'train/link' is a symbolic link"),
    ({**GOOD, "TEST.csv": "x"}, (), UnpackLimits(), "'TEST.csv' appears twice"),
    ({**GOOD, "big.bin": "x" * 5000}, (), UnpackLimits(max_member_bytes=4096), "declares 5.0 kB; at most 4.1 kB"),
    (GOOD, (), UnpackLimits(max_members=3), "holds 4 files; at most 3"),
    ({**GOOD, "a": "x" * 3000, "b": "x" * 3000}, (), UnpackLimits(max_total_bytes=4096), "expands past"),
    ({"train.csv": "id\n"}, (), UnpackLimits(), "lacks test.csv, folds.csv, sample_submission.csv at its root"),
])
def test_unsafe_archives_are_refused_whole(tmp_path, members, links, limits, expected):
    archive = _zip(tmp_path / "a.zip", members, links)
    out = tmp_path / "dest" / "data"
    with pytest.raises(DataError) as caught:
        unpack_archive(archive, out, marker={"url": "http://ships.test/api/data"}, limits=limits)
    assert expected in str(caught.value)
    assert not out.exists() and list((tmp_path / "dest").iterdir()) == []  # nothing left, no temporary folder
    assert not (tmp_path / "evil").exists()


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"<html>not a zip</html>")
    with pytest.raises(DataError, match="not a readable zip"):
        unpack_archive(tmp_path / "a.zip", tmp_path / "out", marker={})
    assert not (tmp_path / "out").exists()
