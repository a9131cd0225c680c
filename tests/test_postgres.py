"""The store on a real PostgreSQL server (Debian's postgresql, started by tests/pg.py on 127.0.0.1).

The whole store contract already runs on PostgreSQL through the parametrised fixtures of
test_store.py and test_reliability.py; here are the PostgreSQL-specific parts: the server and its
append-only triggers, a session time zone other than UTC, credentials hidden in the URL,
an unreachable server.
Skipped, with the reason, only where no server can be started.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

import pg
from competition.errors import StoreError
from competition.rules import Rules
from leaderboard.store import Store

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 5, 1, 23, 30, tzinfo=timezone.utc)
SHA = "cd" * 32


def metrics(score):
    return {"roc_auc": score, "roc_auc_low": score - 0.01, "roc_auc_high": score + 0.01}


@pytest.fixture(scope="module")
def server():
    try:
        return pg.get_server()
    except pg.PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL server unavailable: {exc}")


@pytest.fixture
def url(server):
    return server.new_database()


def submit(store, team, score, at=T0, quota=None):
    store.rules = Rules(daily_quota=10**9 if quota is None else quota)
    return store.add_submission(team=team, file_sha256=SHA, filename="s.csv", message="", public=metrics(score),
                                private=metrics(score), split_hash="s", submitted_at=at)


def test_the_server_is_postgresql(url):
    with Store.open(url) as store:
        assert store.url.startswith("postgresql+psycopg://ships@127.0.0.1:")
        with store._engine.connect() as conn:
            assert "PostgreSQL" in conn.execute(text("SELECT version()")).scalar_one()
            triggers = conn.execute(text("SELECT DISTINCT event_object_table, trigger_name FROM information_schema.triggers "
                                         "WHERE trigger_schema = current_schema() ORDER BY 1")).all()
            assert [tuple(t) for t in triggers] == [("invalidations", "invalidations_append_only"),
                                                    ("replicates", "replicates_append_only"),
                                                    ("rescores", "rescores_append_only"),
                                                    ("submissions", "submissions_append_only")]


def test_times_and_utc_days_ignore_the_session_time_zone(url):
    with Store.open(url) as store:
        store.add_team("alpha")
        submit(store, "alpha", 0.8, at=T0, quota=1)
    tokyo = url + "%20-ctimezone%3DAsia/Tokyo"  # 2024-05-02 08:30 in Tokyo: still 1 May in UTC
    with Store.open(tokyo) as store:
        with store._engine.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar_one() == "Asia/Tokyo"
        assert store.submission(1).submitted_at == T0
        with pytest.raises(StoreError, match="for 2024-05-01 \\(UTC\\)"):
            submit(store, "alpha", 0.9, at=T0 + timedelta(minutes=10), quota=1)
        assert submit(store, "alpha", 0.9, at=T0 + timedelta(minutes=30), quota=1).id == 2  # 00:00 UTC


def test_password_is_hidden_in_the_url(server):
    with Store.open(server.url().replace("ships@", "ships:secret@")) as store:
        assert "secret" not in store.url and "***" in store.url


def test_unreachable_server_is_a_store_error(server):
    with pytest.raises(StoreError, match="cannot open the store at"):
        Store.open(f"postgresql+psycopg://ships@127.0.0.1:{pg._free_port()}/nowhere?connect_timeout=2")


def test_helper_says_why_when_no_server_can_start(monkeypatch):
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    with pytest.raises(pg.PostgresUnavailable, match="no initdb found .*apt-get install postgresql"):
        pg.find_bindir()
