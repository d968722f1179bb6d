"""Test fixtures. The schema is built by the real migrations.

Every test that takes `db` runs on SQLite, and also on PostgreSQL when CREDITDESK_TEST_DATABASE_URL
is set (CI sets it). Tests isolate themselves by creating their own workspace: nothing crosses
workspaces, so one schema per backend serves the whole run.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditdesk import clock, migrate
from creditdesk.db import Database, normalize_url
from creditdesk.parties import service as parties

PG_URL = os.environ.get("CREDITDESK_TEST_DATABASE_URL")
# Webhook receivers in the tests listen on loopback (and `creditdesk serve` children inherit this);
# tests of the refusal set it back to 0 (tests/webhooks).
os.environ.setdefault("CREDITDESK_WEBHOOKS_ALLOW_PRIVATE", "1")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _fresh_postgres(url: str) -> Database:
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return Database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def db(request, tmp_path_factory) -> Database:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    else:
        database = _fresh_postgres(PG_URL)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_db(request, tmp_path):
    """A brand-new, empty database of each backend, of its own (for tests that run migrations up and down)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield database
        database.dispose()
        return
    url = make_url(normalize_url(PG_URL))
    name = f"creditdesk_empty_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def frozen_clock():
    frozen = clock.FrozenClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    clock.set_clock(frozen)
    yield frozen
    clock.set_clock(clock.SystemClock())


@pytest.fixture
def settings_env(monkeypatch):
    """Set CREDITDESK_* settings for one test: settings_env(metrics_token="t"). Read again afterwards."""
    from creditdesk.config import get_settings

    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"CREDITDESK_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


@dataclass
class WorkspaceFixture:
    id: str
    master_id: str
    api_key: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_workspace(db: Database, *, name: str = "Test workspace") -> WorkspaceFixture:
    def fn(session):
        ws, user, _key, secret = parties.create_workspace(
            session, name=name, master_name="Master", master_email=f"master-{os.urandom(4).hex()}@example.com",
            master_password="correct horse battery")
        return WorkspaceFixture(ws.id, user.id, secret)
    return db.write(fn)


@pytest.fixture
def workspace(db) -> WorkspaceFixture:
    return make_workspace(db)


@pytest.fixture
def other_workspace(db) -> WorkspaceFixture:
    return make_workspace(db, name="Other workspace")


@pytest.fixture(scope="session")
def app(db):
    from creditdesk.api.app import create_app

    return create_app(db=db)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app) as test_client:
        yield test_client


# --- which databases ran: shown in the header and counted at the end (CI reads the summary line) ---

_backend_of: dict[str, str] = {}


def pytest_report_header(config):
    if PG_URL:
        shown = PG_URL.split("@")[-1]  # host and database only, never a password
        return f"creditdesk test databases: sqlite + postgresql ({shown})"
    return "creditdesk test databases: sqlite only (set CREDITDESK_TEST_DATABASE_URL for PostgreSQL)"


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db") if callspec else None
        if isinstance(backend, str):
            _backend_of[item.nodeid] = backend


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tally = {backend: {"passed": 0, "failed": 0} for backend in BACKENDS}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = _backend_of.get(getattr(report, "nodeid", ""))
            if backend is None or (outcome == "passed" and report.when != "call"):
                continue
            tally[backend]["passed" if outcome == "passed" else "failed"] += 1
    parts = [f"{backend}: {n['passed']} passed, {n['failed']} failed" for backend, n in tally.items()]
    terminalreporter.write_line("creditdesk database tests -- " + "; ".join(parts))
