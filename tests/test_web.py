"""The web view: pages and their JSON twins, upload through submit_file, privacy, escaping, `ships serve`."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount
from typer.testing import CliRunner

from competition.workspace import Workspace
from leaderboard.store import Store
from leaderboard.submit import submit_file
from leaderboard.web import make_app
from leaderboard.web.views import ROC_GRID, decode_name, encode_name, interpolate_roc, team_url
from workspaces import light_workspace  # tests/workspaces.py

XSS = "<script>alert(1)</script>"
XSS_MESSAGE = "<img src=x onerror=alert(2)>"
TEAMS = ("alpha", XSS, "a/b.json")
PLAN = (("alpha", 0.30), ("alpha", 0.55), (XSS, 0.40), ("a/b.json", 0.45))  # (team, Private signal strength)
EARLIER = datetime.now(timezone.utc) - timedelta(days=2)  # before today's quota window


def csv_bytes(ids, proba) -> bytes:
    return ("id,ship\n" + "".join(f"{i},{p:.6f}\n" for i, p in zip(ids, proba))).encode()


def predictions(ws, seed: int, strength: float, private_seed: int | None = None) -> bytes:
    """Noise on the Public chips, informative on the Private ones: distinctive Private scores."""
    sol = ws.load_solution()
    p = np.random.default_rng(seed).random(len(sol.ids))
    private = sol.usage == "Private"
    noise = np.random.default_rng(seed if private_seed is None else private_seed).random(private.sum())
    p[private] = strength * sol.y_true[private] + (1 - strength) * noise
    return csv_bytes(sol.ids, p)


def populate(ws) -> tuple[Store, dict[str, str]]:
    """Three teams (one named like a script, one like a path), four submissions and a baseline."""
    store = Store.open(ws.store_url)
    tokens = {name: store.add_team(name) for name in TEAMS}
    for i, (team, strength) in enumerate(PLAN):
        submit_file(ws, predictions(ws, i, strength), team=team, filename=f"sub{i}.csv", store=store,
                    message=XSS_MESSAGE if team == XSS else f"try {i}", now=EARLIER + timedelta(hours=i))
    sample = (ws.public_dir / "sample_submission.csv").read_bytes()
    submit_file(ws, sample, team="dummy", kind="baseline", filename="sample.csv", store=store, now=EARLIER)
    return store, tokens


@pytest.fixture(scope="module")
def site(real_workspace_path, tmp_path_factory):
    """A populated read-only site: (workspace, store, tokens, client)."""
    ws = light_workspace(real_workspace_path, tmp_path_factory.mktemp("web") / "ws")
    store, tokens = populate(ws)
    with TestClient(make_app(ws)) as client:
        yield ws, store, tokens, client
    store.close()


@pytest.fixture
def fresh(real_workspace_path, tmp_path):
    """A populated site of its own, for tests that write: (workspace, store, tokens, client)."""
    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    store, tokens = populate(ws)
    yield ws, store, tokens, TestClient(make_app(ws, revision_ttl=0))
    store.close()


# -- pages and their JSON twins -----------------------------------------------------------------

def test_leaderboard_page_and_twin(site):
    ws, store, _, client = site
    rows = store.leaderboard()
    data = client.get("/leaderboard.json").json()
    assert data["board"] == "public" and not data["finalized"]
    assert [(r["team"], r["rank"], r["score"], r["tied"]) for r in data["rows"]] == \
           [(r.team, r.rank, round(r.score, 4), r.tied) for r in rows]  # rounded before finalize
    assert "move" not in data["rows"][0] and data["n_teams"] == 3
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count('class="baseline"') == 1 and "dummy" in html and ">–<" in html  # a baseline takes no rank
    for r in rows:
        assert f"{r.score:.4f}" in html and f"[{r.score_low:.4f}, {r.score_high:.4f}]" in html
        assert f'href="{team_url(r.team)}"' in html
    assert html.count('class="tie"') == sum(r.tied for r in rows) >= 1
    assert 'href="/leaderboard.json"' in html


def test_leaderboard_cache_follows_every_writer(fresh):
    ws, store, tokens, _ = fresh
    client = TestClient(make_app(ws, revision_ttl=0))
    before = client.get("/leaderboard.json")
    assert client.get("/leaderboard.json", headers={"if-none-match": before.headers["etag"]}).status_code == 304
    other = Store.open(ws.store_url)  # e.g. `ships score` in another process
    submit_file(ws, predictions(ws, 99, 0.2), team="late-comer", store=other, now=EARLIER)
    other.close()
    after = client.get("/leaderboard.json")
    assert after.headers["etag"] != before.headers["etag"]
    assert "late-comer" in [r["team"] for r in after.json()["rows"]] and "late-comer" in client.get("/").text
    patient = TestClient(make_app(ws, revision_ttl=3600))  # reads the revision once an hour...
    assert len(patient.get("/leaderboard.json").json()["rows"]) == 5
    token = store.add_team("newcomer")
    assert _api(patient, token, predictions(ws, 98, 0.2)).status_code == 201
    assert "newcomer" in patient.get("/").text  # ...but at once after a write of its own


def test_leaderboard_is_gzipped_for_clients_that_accept_it(site):
    client = site[3]
    plain = client.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    zipped = client.get("/", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == plain.text
    refused = client.get("/leaderboard.json", headers={"accept-encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.json()["board"] == "public"


def as_team(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def test_a_teams_history_is_seen_by_that_team_only(site):
    _, store, tokens, client = site
    for headers in ({}, as_team(tokens["a/b.json"]), as_team("not-a-token")):
        data = client.get("/teams/alpha.json", headers=headers).json()
        assert data["submissions"] == [] and data["own"] is False and data["rank"] is not None
        html = client.get("/teams/alpha", headers=headers).text
        assert "try 0" not in html and "sign in</a> with its token" in html
        r = client.get(f"/submissions/{store.submissions('alpha')[0].id}.json", headers=headers)
        assert r.status_code == 403 and "seen by its team only" in r.json()["error"]
    assert client.get("/teams/dummy.json").json()["own"] is True  # a baseline is the organiser's reference


def test_signing_in_keeps_the_token_in_a_cookie(fresh):
    _, store, tokens, client = fresh
    wrong = client.post("/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "invalid team token" in wrong.text
    r = client.post("/login", data={"token": tokens["alpha"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/teams/alpha"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("samesite", "SameSite")
    assert client.get("/teams/alpha.json").json()["own"] is True  # the client keeps the cookie
    client.post("/logout")
    assert client.get("/teams/alpha.json").json()["own"] is False


def test_team_page_and_twin(site):
    _, store, tokens, client = site
    data = client.get("/teams/alpha.json", headers=as_team(tokens["alpha"])).json()
    records = store.submissions("alpha")
    assert [s["id"] for s in data["submissions"]] == [r.id for r in records]
    assert [s["public_score"] for s in data["submissions"]] == [round(r.public_score, 4) for r in records]
    assert data["rank"] == next(r.rank for r in store.leaderboard() if r.team == "alpha")
    assert "final" not in data["submissions"][0] and "private_score" not in data["submissions"][0]
    html = client.get("/teams/alpha", headers=as_team(tokens["alpha"])).text
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert svg.count('<circle class="pt"') == 2 and svg.count('class="ci"') == 2 and "best" in svg
    assert all(f'href="/submissions/{r.id}"' in html for r in records)
    assert "baseline" in client.get("/teams/dummy").text
    assert client.get("/teams/ALPHA.json").json()["team"] == "alpha"  # names are case-insensitive


def test_before_finalize_a_submission_shows_its_rounded_primary_score_only(site):
    _, store, tokens, client = site
    record = store.submissions("alpha")[0]
    data = client.get(f"/submissions/{record.id}.json", headers=as_team(tokens["alpha"])).json()
    assert data["public"] == {k: round(record.public[k], 4) for k in ("roc_auc", "roc_auc_low", "roc_auc_high")}
    assert data["team"] == "alpha" and data["roc"] is None
    assert "private" not in data and "final" not in data
    html = client.get(f"/submissions/{record.id}", headers=as_team(tokens["alpha"])).text
    assert f"{record.public['roc_auc']:.4f}" in html and "The ROC curve is shown after finalize" in html
    for name in ("log_loss", "average_precision", "brier_loss", "accuracy", "Confusion matrix", "<svg"):
        assert name not in html


def test_submission_page_and_twin_after_finalize(fresh):
    ws, store, tokens, client = fresh
    store.finalize()
    record = store.submissions("alpha")[0]
    client.headers.update(as_team(tokens["alpha"]))
    data = client.get(f"/submissions/{record.id}.json").json()
    assert data["public"] == record.public and data["team"] == "alpha" and data["private"] == record.private
    import pandas as pd
    from sklearn.metrics import roc_curve

    sol = ws.load_solution()
    public = sol.usage == "Public"
    stored = pd.read_csv(ws.submissions_dir / f"{record.file_sha256}.csv", dtype={"id": str}).set_index("id")
    fpr, tpr, _ = roc_curve(sol.y_true[public], stored["ship"].reindex(sol.ids[public]).to_numpy())
    assert data["roc"]["part"] == "Public" and data["roc"]["fpr"] == list(ROC_GRID)
    assert np.allclose(data["roc"]["tpr"], interpolate_roc(fpr, tpr, ROC_GRID), atol=5e-4)
    html = client.get(f"/submissions/{record.id}").text
    for name in ("roc_auc", "log_loss", "average_precision", "brier_loss", "accuracy", "precision", "recall", "f1"):
        assert name in html
    assert f"{record.public['roc_auc']:.4f}" in html
    assert f"[{record.public['roc_auc_low']:.4f}, {record.public['roc_auc_high']:.4f}]" in html
    for cell in ("tn", "fp", "fn", "tp"):
        assert f">{record.public[cell]}<" in html
    roc_svg = html[html.index("<svg"):html.index("</svg>")]
    assert roc_svg.count("<circle") == len(ROC_GRID) == 21


def test_roc_ignores_private_predictions(fresh):
    """Two files equal on the Public chips and different on the Private ones draw the same ROC curve."""
    ws, store, _, client = fresh
    client.headers.update(as_team(store.add_team("probe")))
    a = submit_file(ws, predictions(ws, 7, 0.2, private_seed=1), team="probe", store=store, now=EARLIER)
    b = submit_file(ws, predictions(ws, 7, 0.9, private_seed=2), team="probe", store=store, now=EARLIER)
    assert a.public == b.public
    store.finalize()  # the ROC curve is shown after finalize only
    roc_a = client.get(f"/submissions/{a.record.id}.json").json()["roc"]
    roc_b = client.get(f"/submissions/{b.record.id}.json").json()["roc"]
    assert roc_a == roc_b and len(roc_a["tpr"]) == 21


def test_interpolate_roc_matches_linear_interpolation():
    fpr = np.array([0.0, 0.0, 0.1, 0.1, 0.4, 1.0])  # vertical rises at 0 and 0.1
    tpr = np.array([0.0, 0.3, 0.3, 0.6, 0.9, 1.0])
    got = interpolate_roc(fpr, tpr, np.array([0.0, 0.05, 0.1, 0.25, 0.7, 1.0]))
    assert np.allclose(got, [0.3, 0.3, 0.6, 0.75, 0.95, 1.0])  # the top of a rise at a grid value


@pytest.mark.parametrize("name", ["alpha", "Harbour Watch", XSS, "a/b.json", "100%~ok?#", "Bateaux à quai ⚓", "~41"])
def test_team_names_round_trip_through_urls(name):
    segment = encode_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_~-]+", segment)
    assert decode_name(segment) == name


def test_team_named_like_a_path_and_json(site):
    _, _, _, client = site
    assert client.get(team_url("a/b.json") + ".json").json()["team"] == "a/b.json"
    assert "a/b.json" in client.get(team_url("a/b.json")).text


@pytest.mark.parametrize("path, status", [
    ("/teams/nobody", 404), ("/teams/nobody.json", 404), ("/submissions/999", 404),
    ("/submissions/999.json", 404), ("/nowhere", 404), ("/?board=other", 400), ("/leaderboard.json?board=private", 403),
])
def test_errors_are_pages_or_json(site, path, status):
    client = site[3]
    r = client.get(path)
    assert r.status_code == status
    if ".json" in path:
        assert set(r.json()) == {"error", "problems"} and r.json()["error"]
    else:
        assert r.headers["content-type"].startswith("text/html") and f"Error {status}" in r.text


# -- privacy and escaping ---------------------------------------------------------------------

def _flat_routes(routes) -> list:
    """The app's routes, those of included routers too."""
    out = []
    for route in routes:
        router = getattr(route, "original_router", None)  # an included APIRouter
        out += _flat_routes(router.routes) if router is not None else [route]
    return out


PUBLIC_DATA = ("/api/data", "/data/sample_submission.csv")  # the public data itself: test ids by design


def _get_routes(app, store) -> list[str]:
    """A URL for every GET route of the app, with every real value of its path parameters."""
    values = {"name": [encode_name(t.name) for t in store.list_teams()] + ["nobody"],
              "submission_id": [str(r.id) for r in store.submissions()] + ["999"]}
    urls = ["/?board=public", "/?board=private", "/leaderboard.json?board=private"]
    for route in _flat_routes(app.routes):
        if isinstance(route, Mount):
            urls.append(f"{route.path}/style.css")
            continue
        if "GET" not in route.methods:
            assert route.path in ("/api/submissions", "/submit", "/api/validate", "/api/finals", "/login", "/logout"), \
                f"unchecked route {route.path}"
            continue
        params = list(route.param_convertors)
        assert set(params) <= set(values), f"no values for the parameters of {route.path}"
        if not params:
            urls.append(route.path)
        for param in params:
            urls += [route.path.replace(f"{{{param}:int}}", v).replace(f"{{{param}}}", v) for v in values[param]]
    return urls


def _private_strings(store) -> set[str]:
    """Every continuous Private value of every submission, as pages and JSON would print it."""
    public = {f"{v:.4f}" for r in store.submissions() for v in r.public.values() if isinstance(v, float)}
    out = set()
    for r in store.submissions():
        for key, v in r.private.items():
            if key.split("_")[0] in ("roc", "log", "average", "brier") and isinstance(v, float) and round(v, 3) != v:
                out |= {f"{v:.4f}", json.dumps(v)} - public
    return out


def _fetch_all(client, app, store, tokens, ws) -> dict[str, str]:
    bodies = {url: client.get(url).text for url in _get_routes(app, store)}
    ok = client.post("/api/submissions", headers={"authorization": f"Bearer {tokens['alpha']}"},
                     files={"file": ("p.csv", predictions(ws, 50, 0.5))})
    bad = client.post("/submit", data={"token": tokens["alpha"]}, files={"file": ("p.csv", b"id,ship\nzz,2\n")})
    bodies["POST /api/submissions"], bodies["POST /submit"] = ok.text, bad.text
    return bodies


def test_no_private_data_on_any_route_until_finalize(fresh):
    ws, store, tokens, client = fresh
    app = client.app
    before = _fetch_all(client, app, store, tokens, ws)
    assert len(before) > 20
    store.finalize()
    secret = _private_strings(store)
    assert len(secret) > 20
    sol = ws.load_solution()
    for url, body in before.items():
        leaked = sorted(s for s in secret if s in body)
        assert not leaked, f"{url} shows Private values {leaked[:3]}"
        if not url.startswith("POST") and url not in PUBLIC_DATA:  # messages name missing ids, as the CLI does
            assert not [i for i in sol.ids if i in body], f"{url} lists test ids"
        assert "Usage" not in body and "y_true" not in body and '"private_score":0' not in body
        assert '"private' not in body, f"{url} has a Private field"
    after = client.get("/leaderboard.json").json()
    assert after["board"] == "private" and after["finalized"] and "move" in after["rows"][0]
    html = client.get("/").text
    assert "Private leaderboard" in html and sum(s in html for s in secret) >= 3  # the check above can see them
    best = store.leaderboard(private=True)[0]
    assert f"{best.score:.4f}" in html
    team = client.get("/teams/alpha.json", headers=as_team(tokens["alpha"])).json()
    assert all(s["private_score"] is not None for s in team["submissions"])


def test_names_and_messages_are_escaped_everywhere(site):
    ws, store, tokens, client = site
    xss_ids = [r.id for r in store.submissions(XSS)]
    pages = ["/", "/?board=public", team_url(XSS), *[f"/submissions/{i}" for i in xss_ids]]
    for url in pages:
        html = client.get(url, headers=as_team(tokens[XSS])).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
        assert "<script" not in html and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", ""), url
    assert "&lt;img src=x onerror=alert(2)&gt;" in client.get(team_url(XSS), headers=as_team(tokens[XSS])).text
    csp = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert client.get("/teams/alpha.json").headers["x-content-type-options"] == "nosniff"


# -- upload -------------------------------------------------------------------------------------

def _api(client, token, data: bytes, **fields):
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return client.post("/api/submissions", headers=headers, files={"file": ("mine.csv", data)}, data=fields)


def test_api_upload_goes_through_submit_file(fresh):
    ws, store, tokens, client = fresh
    n = len(store.submissions())
    r = _api(client, tokens["alpha"], predictions(ws, 11, 0.5), message="from the API", team="a/b.json")
    assert r.status_code == 201, r.text
    out = r.json()
    record = store.submission(out["id"])
    assert record.team == "alpha"  # the team comes from the token, never from a form field
    assert record.message == "from the API" and record.filename == "mine.csv"
    assert out["public"] == {k: round(record.public[k], 4) for k in ("roc_auc", "roc_auc_low", "roc_auc_high")}
    assert "private" not in r.text and "log_loss" not in r.text and '"tp"' not in r.text
    assert out["best"] in (True, False) and out["quota"]["limit"] == ws.config.daily_quota
    assert (ws.submissions_dir / f"{out['file_sha256']}.csv").read_bytes() == predictions(ws, 11, 0.5)
    assert len(store.submissions()) == n + 1
    assert client.get(out["url"], headers=as_team(tokens["alpha"])).status_code == 200


def test_ladder_shows_the_standing_interval_not_the_submissions_own(real_workspace_path, tmp_path):
    """Under the Ladder an upload that does not move the standing value is shown the standing
    submission's interval everywhere: its own interval would give its score away."""
    ws = light_workspace(real_workspace_path, tmp_path / "ws", feedback="ladder")
    sol = ws.load_solution()
    public = sol.usage == "Public"
    ship, no_ship = (int(np.flatnonzero(public & (sol.y_true == label))[0]) for label in (1, 0))
    with Store.open(ws.store_url, ws.rules) as store:
        token = store.add_team("alpha")
    client = TestClient(make_app(ws, revision_ttl=0), headers={"authorization": f"Bearer {token}"})
    replies = []
    for chip in (ship, no_ship):  # one chip above a tied rest: AUC up for a ship, down for a no-ship
        proba = np.full(len(sol.ids), 0.5)
        proba[chip] = 1.0
        r = _api(client, token, csv_bytes(sol.ids, proba))
        assert r.status_code == 201, r.text
        replies.append(r.json())
    first, second = (reply["public"] for reply in replies)
    assert first["roc_auc_low"] < first["roc_auc_high"]
    assert second == first
    assert client.get(f"/submissions/{replies[1]['id']}.json").json()["public"] == first
    history = client.get("/teams/alpha.json").json()["submissions"]
    assert [(s["public_score"], s["public_low"], s["public_high"]) for s in history] == [tuple(first.values())] * 2


def test_api_errors_carry_the_cli_messages(fresh, tmp_path):
    from ships.cli import app as cli

    ws, store, tokens, client = fresh
    bad = b"id,ship\nzz,1.7\nzz,0.1\n"
    n = len(store.submissions())
    r = _api(client, tokens["alpha"], bad)
    assert r.status_code == 422
    path = tmp_path / "mine.csv"
    path.write_bytes(bad)
    cli_out = CliRunner().invoke(cli, ["validate", str(path), "-w", str(ws.root)])
    assert cli_out.exit_code == 1
    error, problems = r.json()["error"], r.json()["problems"]
    assert cli_out.output.strip() == f"Error: {error}"
    assert len(problems) >= 2 and all(p in error for p in problems)
    for token, message in ((None, "missing team token"), ("not-a-token", "invalid team token")):
        r = _api(client, token, predictions(ws, 12, 0.5))
        assert r.status_code == 401 and message in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/api/submissions", headers={"authorization": f"Bearer {tokens['alpha']}"}, data={"x": "1"})
    assert r.status_code == 400 and "field 'file'" in r.json()["error"]
    assert len(store.submissions()) == n  # nothing stored


def test_quota_deadline_and_finalize(fresh, real_workspace_path, tmp_path):
    ws, store, tokens, _ = fresh
    one_a_day = TestClient(make_app(Workspace(ws.root, replace(ws.config, daily_quota=1))))
    assert _api(one_a_day, tokens["alpha"], predictions(ws, 20, 0.5)).status_code == 201
    r = _api(one_a_day, tokens["alpha"], predictions(ws, 21, 0.5))
    assert r.status_code == 429 and "has used its 1 submissions" in r.json()["error"]
    late = TestClient(make_app(Workspace(ws.root, replace(ws.config, deadline=datetime(2020, 1, 1, tzinfo=timezone.utc)))))
    r = _api(late, tokens[XSS], predictions(ws, 22, 0.5))
    assert r.status_code == 409 and "deadline passed" in r.json()["error"]
    store.finalize()
    r = _api(TestClient(make_app(ws)), tokens[XSS], predictions(ws, 23, 0.5))
    assert r.status_code == 409 and "finalized" in r.json()["error"]
    assert "no more submissions" in TestClient(make_app(ws)).get("/submit").text


def test_size_limit(fresh):
    ws, store, tokens, _ = fresh
    data = predictions(ws, 30, 0.5)
    small = TestClient(make_app(Workspace(ws.root, replace(ws.config, max_upload_bytes=len(data) - 1))))
    n = len(store.submissions())
    r = _api(small, tokens["alpha"], data)  # the file alone is 1 byte too many: the CLI's message
    assert r.status_code == 413 and f"file is {len(data):,} bytes; the limit is {len(data) - 1:,} bytes" in r.json()["error"]
    tiny = TestClient(make_app(Workspace(ws.root, replace(ws.config, max_upload_bytes=1000))))
    r = _api(tiny, tokens["alpha"], data)  # within the form's slack: read, then refused by submit_file
    assert r.status_code == 413 and "the limit is 1,000 bytes" in r.json()["error"]
    r = _api(tiny, None, data * 5)  # refused from its Content-Length, before the token is looked at
    assert r.status_code == 413 and r.json()["error"].startswith("upload is ")
    assert len(store.submissions()) == n


def test_body_is_cut_off_at_the_limit_whatever_the_client_says(fresh):
    """A chunked body with no Content-Length is not read past the limit plus the form's slack."""
    from leaderboard.web.upload import FORM_SLACK

    ws, store, tokens, _ = fresh
    app = make_app(Workspace(ws.root, replace(ws.config, max_upload_bytes=100_000)))
    chunk, sent, out = b"x" * 65536, [0], []
    head = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n")

    async def receive():
        sent[0] += 1
        return {"type": "http.request", "body": head if sent[0] == 1 else chunk, "more_body": sent[0] < 200}

    async def send(message):
        out.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/submissions", "raw_path": b"/api/submissions",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "server": ("test", 80), "client": ("test", 1),
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"),
                         (b"authorization", f"Bearer {tokens['alpha']}".encode())]}
    asyncio.run(app(scope, receive, send))
    assert out[0]["status"] == 413
    assert (sent[0] - 1) * len(chunk) <= 100_000 + FORM_SLACK + len(chunk)  # stopped near the cap, not at 13 MB
    assert json.loads(out[1]["body"])["error"].startswith("upload is")


def test_form_upload_shows_the_entry_or_the_error(fresh):
    ws, store, tokens, client = fresh
    r = client.post("/submit", data={"token": tokens[XSS], "message": "via the form", "team": "alpha"},
                    files={"file": ("form.csv", predictions(ws, 40, 0.5))})
    assert r.status_code == 201 and "Accepted" in r.text
    record = store.submissions(XSS)[-1]
    assert record.message == "via the form" and f'href="/submissions/{record.id}"' in r.text
    assert f"{record.public_score:.4f}" in r.text and tokens[XSS] not in r.text
    r = client.post("/submit", data={"token": tokens[XSS], "message": "second <try>"},
                    files={"file": ("form.csv", b"id,ship\n")})
    assert r.status_code == 422 and "Not accepted" in r.text and "form.csv:" in r.text
    # the form keeps what the team typed, escaped, so that it only picks a better file
    assert f'value="{tokens[XSS]}"' in r.text and ">second &lt;try&gt;</textarea>" in r.text
    r = client.post("/submit", data={"token": "wrong"}, files={"file": ("form.csv", predictions(ws, 41, 0.5))})
    assert r.status_code == 401 and "invalid team token" in r.text
    assert client.get("/submit").status_code == 200


# -- ships serve --------------------------------------------------------------------------------

def test_serve_command_runs_uvicorn_on_the_app(site, monkeypatch):
    import typer
    import uvicorn
    from fastapi import FastAPI

    from ships._common import ShipsGroup
    from ships.serve import app as serve_app

    root = typer.Typer(cls=ShipsGroup)
    root.add_typer(serve_app)
    import socket

    calls = []
    # uvicorn.Config points uvicorn's log handlers at sys.stderr, here CliRunner's stream, closed after the call
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda config: None)
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda server, sockets: calls.append((server.config, [s.getsockname() for s in sockets])))
    ws = site[0]
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(root, ["serve", "-w", str(ws.root), "--host", "127.0.0.1", "--port", str(port)])
    assert result.exit_code == 0, result.output
    [(config, [bound])] = calls
    assert isinstance(config.app, FastAPI) and config.host == "127.0.0.1" and config.port == port
    assert bound == ("127.0.0.1", port)  # the socket is bound by ships, and handed to uvicorn
    assert f"http://127.0.0.1:{port}/" in result.output
    with socket.socket() as taken:  # a port in use: one Error: line, exit 1, before "Serving"
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = CliRunner().invoke(root, ["serve", "-w", str(ws.root), "--port", str(taken.getsockname()[1])])
    assert busy.exit_code == 1 and busy.output.startswith("Error: cannot listen on 127.0.0.1:"), busy.output
    assert "pass another --port" in busy.output and "Serving" not in busy.output
    missing = CliRunner().invoke(root, ["serve", "-w", str(ws.root.parent / "missing")])
    assert missing.exit_code == 1 and "Error:" in missing.output
    assert CliRunner().invoke(root, ["serve", "--port", "0"]).exit_code == 2
    help_text = CliRunner().invoke(root, ["serve", "--help"]).output
    assert all(opt in help_text for opt in ("--workspace", "--host", "--port"))


def test_charts_escape_their_text():
    from leaderboard.web.charts import ScorePoint, roc_chart_svg, score_chart_svg

    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    svg = score_chart_svg([ScorePoint(1, at, 0.7, 0.6, 0.8, url="/submissions/1")], label=f"Scores of {XSS}")
    assert "<script" not in svg and "&lt;script&gt;" in svg and svg.count("<circle") == 1
    assert score_chart_svg([]) == ""
    roc = roc_chart_svg(list(ROC_GRID), list(ROC_GRID), label=XSS)
    assert "<script" not in roc and roc.count("<circle") == 21


def test_a_process_scores_one_upload_at_a_time(real_workspace_path, tmp_path, monkeypatch):
    """Scoring is CPU work under the GIL: concurrent uploads take turns (the others wait with their
    body read), and every one is scored and recorded."""
    import threading
    import time

    import httpx

    from leaderboard import submit as submit_module

    ws = light_workspace(real_workspace_path, tmp_path / "ws", daily_quota=20)
    store = Store.open(ws.store_url)
    tokens = [store.add_team(f"team {i}") for i in range(4)]
    running, most, lock = [0], [0], threading.Lock()
    original = submit_module.score_parts

    def watched(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)  # long enough for the other uploads to arrive meanwhile
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(submit_module, "score_parts", watched)
    app = make_app(ws, store=store)

    async def upload_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await asyncio.gather(*(
                client.post("/api/submissions", headers={"authorization": f"Bearer {token}"},
                            files={"file": ("s.csv", predictions(ws, 50 + i, 0.3))})
                for i, token in enumerate(tokens)))

    answers = asyncio.run(upload_all())
    assert [a.status_code for a in answers] == [201] * 4
    assert most[0] == 1
    assert len(store.submissions()) == 4
    store.close()
