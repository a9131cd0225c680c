"""The web view in a real browser: Playwright driving Debian's chromium against a live uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from workspaces import light_workspace  # tests/workspaces.py

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
XSS = "<script>alert(1)</script>"
SERVER_LIFETIME_S = 180  # the server stops by itself after this, whatever happens to the test

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium package)"),
]


def _csv(ids, proba) -> bytes:
    return ("id,ship\n" + "".join(f"{i},{p:.5f}\n" for i, p in zip(ids, proba))).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(real_workspace_path, tmp_path_factory):
    """A populated workspace served by uvicorn on 127.0.0.1: (base url, workspace, tokens)."""
    import uvicorn

    from leaderboard.store import Store
    from leaderboard.submit import submit_file
    from leaderboard.web import make_app

    ws = light_workspace(real_workspace_path, tmp_path_factory.mktemp("browser") / "ws")
    store = Store.open(ws.store_url)
    tokens = {name: store.add_team(name) for name in ("alpha", "bravo", XSS)}
    ids, rng = ws.test_ids(), np.random.default_rng(0)
    earlier = datetime.now(timezone.utc) - timedelta(days=1)
    for i, team in enumerate(["alpha", "bravo", "alpha", XSS]):
        submit_file(ws, _csv(ids, rng.random(len(ids))), team=team, filename=f"run{i}.csv", store=store,
                    message=f"run {i}", now=earlier + timedelta(hours=i))
    submit_file(ws, (ws.public_dir / "sample_submission.csv").read_bytes(), team="dummy", kind="baseline",
                store=store, now=earlier)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(ws, store=store), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    stopper = threading.Timer(SERVER_LIFETIME_S, lambda: setattr(server, "should_exit", True))
    stopper.daemon = True
    thread.start()
    stopper.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ws, tokens
    server.should_exit = True
    stopper.cancel()
    thread.join(timeout=15)
    store.close()


@pytest.fixture
def page():
    """A chromium page that records dialogs (a script that ran) and console errors (e.g. CSP refusals)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 900})
            pg.set_default_timeout(20_000)
            pg.dialogs, pg.errors = [], []
            pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
            pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
            yield pg
        finally:
            browser.close()


def test_leaderboard_then_a_team(live, page, tmp_path):
    base, _, _ = live
    page.goto(base + "/")
    assert page.inner_text("h1") == "Public leaderboard"
    rows = page.locator("table.board tbody tr")
    assert rows.count() == 4  # three teams and the baseline
    assert page.locator("tr.baseline").inner_text().startswith("–")
    assert XSS in page.inner_text("table.board")  # shown as text, not run
    assert page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor") == "rgb(13, 44, 79)"
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.click("table.board >> text=alpha")
    page.wait_for_url("**/teams/alpha")
    assert page.inner_text("h1") == "alpha"
    assert page.locator("figure.chart-box svg circle.pt").count() == 2
    assert page.locator("table.history tbody tr").count() == 2
    page.click("table.history tbody tr >> nth=0 >> a")
    page.wait_for_url("**/submissions/*")
    # before finalize a team sees its rounded score only: no curve, no other metric
    assert page.locator("figure.roc svg circle").count() == 0
    assert "The ROC curve is shown after finalize" in page.inner_text("main")
    assert "log_loss" not in page.inner_text("main")
    page.goto(base + "/teams/" + "~3Cscript~3Ealert~281~29~3C~2Fscript~3E")
    assert page.inner_text("h1").startswith(XSS)
    assert page.dialogs == [] and page.errors == []


def test_upload_valid_and_invalid_files_through_the_form(live, page, tmp_path):
    base, ws, tokens = live
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    ids = ws.test_ids()
    good.write_bytes(_csv(ids, np.random.default_rng(5).random(len(ids))))
    bad.write_bytes(b"id,prob\n" + b"".join(f"{i},0.5\n".encode() for i in ids))
    page.goto(base + "/submit")
    page.fill("#token", tokens["bravo"])
    page.set_input_files("#file", str(good))
    page.fill("#message", "from the browser")
    page.click("form.upload button[type=submit]")
    ok = page.locator(".alert.ok")
    ok.wait_for()
    assert "Accepted: submission" in ok.inner_text() and "bravo" in ok.inner_text()
    ok.locator("a").first.click()
    page.wait_for_url("**/submissions/*")
    assert "from the browser" in page.inner_text("dl.meta")
    page.goto(base + "/teams/bravo")
    assert page.locator("table.history tbody tr").count() == 2
    assert "from the browser" in page.inner_text("table.history")
    page.goto(base + "/submit")
    page.fill("#token", tokens["bravo"])
    page.set_input_files("#file", str(bad))
    page.click("form.upload button[type=submit]")
    error = page.locator(".alert.error")
    error.wait_for()
    assert "bad.csv: missing column 'ship'" in error.inner_text()
    page.goto(base + "/teams/bravo")
    assert page.locator("table.history tbody tr").count() == 2  # the invalid file was not recorded
    assert page.dialogs == [] and [e for e in page.errors if "status of 422" not in e] == []
