"""The teams' API and the competition pages: /api/me, the data archive, free validation, a team's
own submissions, status and finals; the overview and data pages with their JSON twins."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from fastapi.testclient import TestClient

from competition.public_archive import build_public_archive
from leaderboard.store import Store
from leaderboard.submit import submit_file
from leaderboard.web import make_app
from workspaces import light_workspace


@pytest.fixture
def site(real_workspace_path, tmp_path):
    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    store = Store.open(ws.store_url, ws.rules)
    tokens = {name: store.add_team(name) for name in ("alpha", "beta")}
    sample = (ws.public_dir / "sample_submission.csv").read_bytes()
    ids = {name: submit_file(ws, sample, team=name, store=store, filename=f"{name}.csv",
                             message=f"note of {name}").record.id for name in tokens}
    yield ws, store, tokens, ids, TestClient(make_app(ws, store=store, revision_ttl=0))
    store.close()


def auth(token):
    return {"authorization": f"Bearer {token}"}


def test_me_names_the_team_of_the_token(site):
    _, _, tokens, _, client = site
    me = client.get("/api/me", headers=auth(tokens["beta"])).json()
    assert me["team"] == "beta" and me["competition"]["metric"] == "roc_auc"
    assert me["competition"]["n_finals"] == 2 and me["competition"]["finalized"] is False


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer nope"}, {"authorization": "Basic abc"}])
def test_a_missing_or_wrong_token_is_401_everywhere(site, headers):
    client = site[4]
    for method, path in (("get", "/api/me"), ("get", "/api/submissions"), ("get", "/api/status"),
                         ("post", "/api/finals"), ("post", "/api/validate")):
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (path, r.text)
        assert "token" in r.json()["error"]


def test_the_data_archive_is_the_public_folder_with_a_readme(site):
    ws, _, _, _, client = site
    info = client.get("/api/data/info").json()
    r = client.get("/api/data")
    assert r.status_code == 200 and r.headers["etag"] == f'"{info["sha256"]}"'
    assert hashlib.sha256(r.content).hexdigest() == info["sha256"] and len(r.content) == info["size"]
    names = set(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    public = {p.relative_to(ws.public_dir).as_posix() for p in ws.public_dir.rglob("*") if p.is_file()}
    assert names == public | {"README.md"} and {"train.csv", "test.csv", "folds.csv"} <= names
    assert not any(n.startswith(("private", "/")) or ".." in n for n in names)
    assert build_public_archive(ws).sha256 == info["sha256"]  # built once, the same bytes every time


def test_a_broken_download_resumes_with_range(site):
    client = site[4]
    whole = client.get("/api/data").content
    etag = client.get("/api/data/info").json()["sha256"]
    tail = client.get("/api/data", headers={"range": "bytes=1000-", "if-range": f'"{etag}"'})
    assert tail.status_code == 206 and tail.headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert whole[:1000] + tail.content == whole
    stale = client.get("/api/data", headers={"range": "bytes=1000-", "if-range": '"an-older-archive"'})
    assert stale.status_code == 200 and stale.content == whole  # a changed archive restarts from zero
    assert client.get("/api/data", headers={"if-none-match": f'"{etag}"'}).status_code == 304


def test_validate_costs_nothing(site):
    ws, store, tokens, _, client = site
    before = (len(store.submissions()), sorted(p.name for p in ws.submissions_dir.iterdir()))
    ok = client.post("/api/validate", headers=auth(tokens["alpha"]),
                     files={"file": ("s.csv", (ws.public_dir / "sample_submission.csv").read_bytes())})
    assert ok.status_code == 200 and ok.json() == {"valid": True, "rows": len(ws.test_ids()), "filename": "s.csv"}
    bad = client.post("/api/validate", headers=auth(tokens["alpha"]), files={"file": ("b.csv", b"id,ship\nx,1.7\n")})
    assert bad.status_code == 422 and bad.json()["problems"]
    assert (len(store.submissions()), sorted(p.name for p in ws.submissions_dir.iterdir())) == before
    assert store.quota_status("alpha").used == 1


def test_a_team_sees_its_own_submissions_only(site):
    _, _, tokens, ids, client = site
    mine = client.get("/api/submissions", headers=auth(tokens["alpha"])).json()
    assert mine["team"] == "alpha" and [s["id"] for s in mine["submissions"]] == [ids["alpha"]]
    [row] = mine["submissions"]
    assert row["message"] == "note of alpha" and row["public_score"] == 0.5 and "private_score" not in row
    assert "note of beta" not in str(mine)


def test_status_and_finals(site):
    _, store, tokens, ids, client = site
    status = client.get("/api/status", headers=auth(tokens["alpha"])).json()
    assert (status["team"], status["used"], status["limit"], status["finals"]) == ("alpha", 1, 5, [])
    r = client.post("/api/finals", headers=auth(tokens["alpha"]), json={"ids": [ids["alpha"]]})
    assert r.status_code == 200 and r.json() == {"team": "alpha", "finals": [ids["alpha"]]}
    assert store.final_ids() == {"alpha": [ids["alpha"]]}
    assert client.get("/api/status", headers=auth(tokens["alpha"])).json()["finals"] == [ids["alpha"]]


@pytest.mark.parametrize("body, status, fragment", [
    ({"ids": "1"}, 422, 'expected a JSON body {"ids": [submission id, ...]}'),
    ({"ids": [True]}, 422, 'expected a JSON body'),
    ({"ids": [2**70]}, 422, "submission id 1180591620717411303424 is invalid"),
    ({"ids": [1, 2, 3]}, 422, "at most 2 final submissions per team; got 3"),
    ({"ids": [999]}, 404, "no submission 999"),
])
def test_bad_finals_are_refused_and_change_nothing(site, body, status, fragment):
    _, store, tokens, _, client = site
    r = client.post("/api/finals", headers=auth(tokens["alpha"]), json=body)
    assert r.status_code == status and fragment in r.json()["error"], r.text
    assert store.final_ids() == {}


def test_a_team_cannot_choose_another_teams_submission(site):
    _, store, tokens, ids, client = site
    r = client.post("/api/finals", headers=auth(tokens["alpha"]), json={"ids": [ids["beta"]]})
    assert r.status_code == 403 and "may select only its own submissions" in r.json()["error"]
    assert store.final_ids() == {}


def test_a_large_finals_body_is_refused_unread(site):
    _, _, tokens, _, client = site
    r = client.post("/api/finals", headers={**auth(tokens["alpha"]), "content-type": "application/json"},
                    content=b'{"ids": [' + b"1," * 5000 + b"1]}")
    assert r.status_code == 422 and "at most 4096 bytes" in r.json()["error"]


def test_overview_renders_the_organisers_markdown_safely(site):
    ws, _, _, _, client = site
    (ws.root / "overview.md").write_text("# Harbour watch\n\n<script>alert(1)</script> **bold** "
                                         "[bad](javascript:alert(1)) [good](https://example.org)\n")
    html = client.get("/overview").text
    assert "<h1>Harbour watch</h1>" in html and "<strong>bold</strong>" in html
    assert "<script>alert(1)" not in html and 'href="javascript:' not in html
    assert 'href="https://example.org"' in html
    assert "5 valid submissions per team per UTC day" in html and "up to 2 final submissions" in html
    twin = client.get("/overview.json").json()
    assert twin["evaluation"]["metric"] == "roc_auc" and twin["rules"]["daily_quota"] == 5


def test_data_page_links_the_archive_and_the_sample(site):
    ws, _, _, _, client = site
    html = client.get("/data").text
    info = client.get("/data.json").json()
    assert 'href="/api/data"' in html and info["sha256"] in html
    sample = client.get("/data/sample_submission.csv")
    assert sample.status_code == 200 and sample.content == (ws.public_dir / "sample_submission.csv").read_bytes()
