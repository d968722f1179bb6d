"""Fixtures of the reliability harness: a live `creditdesk serve` per backend, the bank databases, the summary.

Fast forms run in every `make test`; CREDITDESK_RELIABILITY_LONG=1 runs the long forms (README.md).
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditdesk.db import normalize_url
from tests.billing.fake_stripe import FakeStripe
from tests.conftest import BACKENDS, PG_URL
from tests.reliability import summary
from tests.reliability.server import LiveServer


@pytest.fixture(scope="package")
def live_server(db, tmp_path_factory):
    """`creditdesk serve` on the suite's database, as users run it, for the tests of this folder.

    Background jobs are off: this database holds every other test's workspaces too, and a job run
    on the real clock would expire packs those tests made under a frozen clock.
    """
    log = tmp_path_factory.mktemp("live-server") / "server.log"
    # Card preferences talk to a local server playing Stripe (tests/billing/fake_stripe.py) through the SDK.
    stripe = FakeStripe().start()
    server = LiveServer(db.url, log, env={"CREDITDESK_JOBS_INTERVAL_SECONDS": "0",
                                          "CREDITDESK_STRIPE_API_KEY": stripe.api_key,
                                          "CREDITDESK_STRIPE_API_BASE": stripe.url})
    server.start()
    yield server
    server.stop()
    stripe.stop()


@pytest.fixture(params=BACKENDS)
def bank_database(request, tmp_path):
    """A database of its own for one bank run: a SQLite file, or a PostgreSQL database made and dropped here."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'bank.db'}"
        return
    url = make_url(normalize_url(PG_URL))
    name = f"{url.database}_bank_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield "postgresql", url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = summary.table()
    if not lines:
        return
    form = "long" if summary.LONG else "fast (CREDITDESK_RELIABILITY_LONG=1 for the long form)"
    terminalreporter.write_sep("=", f"creditdesk reliability summary -- {form}")
    for line in lines:
        terminalreporter.write_line(line)
