"""Bank test with kill -9: no acknowledged operation lost, none applied twice, totals conserved.

On PostgreSQL it runs against two `creditdesk serve` processes at once (clients spread over both).

The driver is tests/reliability/bank.py. The fast form (a few clients, >= 2 kills per database)
runs in every `make test`; the long form (16 clients, >= 10 kills) with CREDITDESK_RELIABILITY_LONG=1.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.reliability import summary
from tests.reliability.bank import BankConfig, format_result, run_bank

FAST = BankConfig(clients=4, seconds=6.0, min_kills=2, kill_gap=(1.0, 2.5), seed=11)
LONG = BankConfig(clients=16, seconds=120.0, min_kills=12, kill_gap=(2.0, 6.0), hard_limit_seconds=900.0, seed=29)


@pytest.mark.timeout(1800)
def test_bank_survives_kill_9(bank_database, tmp_path, capsys):
    backend, url = bank_database
    config = LONG if summary.LONG else FAST
    if backend == "postgresql":
        # Several `serve` processes on one PostgreSQL, clients spread over both, either one killed.
        config = dataclasses.replace(config, servers=2)
    result = run_bank(url, config, tmp_path / "server.log", backend=backend)
    summary.add(result.row())
    report = format_result(result)
    with capsys.disabled():
        print("\n" + report)

    assert result.kills >= config.min_kills, report
    assert result.acknowledged > 0, report
    assert result.unresolved == 0, report
    assert result.violations == [], report
    assert result.self_test == [], report
