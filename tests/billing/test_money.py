"""Conversion rates and convert, postings through the ledger, period closing, balance == ledger, verify."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update

from creditdesk.billing import accounts, periods, postings, settings
from creditdesk.billing import schemas as bs
from creditdesk.billing.models import BillingSettings, PeriodBalance
from creditdesk.billing.verify import verify_period_balances
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ledger import service as ledger
from creditdesk.ledger.batch import Reference
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer
from tests.billing.factories import Books, configure


def add_rate(db, actor, source, target, rate, valid_from):
    data = bs.ConversionRateCreate(from_currency=source, to_currency=target, rate=rate, valid_from=valid_from)
    return db.write(lambda s: settings.create_rate(s, data, actor=actor))


def post(db, account, amount, direction="debit", kind="adjustment", **kw):
    return db.write(lambda s: postings.post_account_entry(s, account, amount, direction, kind, **kw))


def balance(db, account):
    with db.read() as s:
        return accounts.account_balance(s, account)


def ledger_balance(db, account) -> int:
    """What the ledger's transfers alone say the customer owes."""
    with db.read() as s:
        dp, cp, _, _ = ledger.recomputed_totals(s, account_ids=[account.ledger_account_id]).get(
            account.ledger_account_id, (0, 0, 0, 0))
    return dp - cp


# --- rates ---

def test_rates_are_exact_and_dated(db):
    books = Books(db)
    add_rate(db, books.actor, "EUR", "AUD", "1.6", date(2026, 1, 1))
    add_rate(db, books.actor, "EUR", "AUD", "1.650000000001", date(2026, 2, 1))
    with db.read() as s:
        jan = settings.convert(s, books.ws.id, 1000, "EUR", "AUD", date(2026, 1, 31))
        feb = settings.convert(s, books.ws.id, 1000, "eur", "aud", date(2026, 2, 1))
        assert (jan.amount, jan.rate, jan.valid_from) == (1600, "1.6", date(2026, 1, 1))
        assert (feb.amount, feb.rate) == (1650, "1.650000000001")
        assert settings.convert(s, books.ws.id, 5, "AUD", "AUD", date(2026, 1, 1)).amount == 5
        with pytest.raises(Conflict) as exc:
            settings.convert(s, books.ws.id, 1000, "EUR", "AUD", date(2025, 12, 31))
        assert exc.value.code == "no_conversion_rate"
        with pytest.raises(Conflict) as exc:  # the inverse is never assumed
            settings.convert(s, books.ws.id, 1000, "AUD", "EUR", date(2026, 3, 1))
        assert exc.value.code == "no_conversion_rate"
        page = settings.list_rates(s, actor=books.actor)
        assert [settings.rate_out(r).rate for r in page.items] == ["1.650000000001", "1.6"]


def test_rounding_once_half_up_across_minor_units(db):
    books = Books(db)
    add_rate(db, books.actor, "AUD", "JPY", "98.765", date(2026, 1, 1))
    add_rate(db, books.actor, "JPY", "AUD", "0.0105", date(2026, 1, 1))
    with db.read() as s:
        # 0.50 AUD * 98.765 = 49.3825 JPY -> 49; 1.00 AUD -> 98.765 -> 99
        assert settings.convert(s, books.ws.id, 50, "AUD", "JPY", date(2026, 1, 2)).amount == 49
        assert settings.convert(s, books.ws.id, 100, "AUD", "JPY", date(2026, 1, 2)).amount == 99
        # 1,000 JPY * 0.0105 = 10.50 AUD = 1050 cents; 50 JPY -> 0.525 AUD -> 53 cents (half-up)
        assert settings.convert(s, books.ws.id, 1000, "JPY", "AUD", date(2026, 1, 2)).amount == 1050
        assert settings.convert(s, books.ws.id, 50, "JPY", "AUD", date(2026, 1, 2)).amount == 53
        # Large amounts stay exact (no float, no 28-digit context rounding)
        big = 10**15 - 1
        assert settings.convert(s, books.ws.id, big, "JPY", "AUD", date(2026, 1, 2)).amount == 1049999999999999  # 1,049,999,999,999,998.95 cents


@pytest.mark.parametrize("text,code", [("0", "invalid_rate"), ("1.0000000000001", "invalid_rate"),
                                       ("10000001", "invalid_rate")])
def test_bad_rates(db, text, code):
    books = Books(db)
    with pytest.raises(InvalidInput) as exc:
        add_rate(db, books.actor, "EUR", "AUD", text, date(2026, 1, 1))
    assert exc.value.code == code


def test_a_rate_is_never_replaced(db):
    books = Books(db)
    add_rate(db, books.actor, "EUR", "AUD", "1.6", date(2026, 1, 1))
    with pytest.raises(Conflict) as exc:
        add_rate(db, books.actor, "EUR", "AUD", "1.7", date(2026, 1, 1))
    assert exc.value.code == "conversion_rate_exists"
    with pytest.raises(InvalidInput) as exc:
        add_rate(db, books.actor, "EUR", "EUR", "1", date(2026, 1, 1))
    assert exc.value.code == "same_currency"


# --- postings ---

def test_postings_move_the_balance_through_the_ledger(db):
    books = Books(db)
    account = books.account()
    entry = post(db, account, 12_000, reference=Reference(kind="invoice", id="inv_1"))
    post(db, account, 5_000, "credit", "payment", counterpart="payments")
    assert balance(db, account).balance == 7_000 == ledger_balance(db, account)
    with db.read() as s:
        transfer = s.get(LedgerTransfer, entry.transfer_id)
        assert (transfer.debit_account_id, transfer.amount, transfer.code, transfer.unit, transfer.reference_id) == (
            account.ledger_account_id, 12_000, "adjustment", "AUD", "inv_1")
        control = s.get(LedgerAccount, transfer.credit_account_id)
        assert control.system_key == "billing:control:AUD"
        payments = ledger.system_account(s, workspace_id=books.ws.id, system_key="billing:payments:AUD")
        assert payments is not None
        assert ledger.verify(s, workspace_id=books.ws.id).ok


def test_posting_is_idempotent_under_a_key(db):
    books = Books(db)
    account = books.account()
    first = post(db, account, 100, idempotency_key="charge-1")
    again = post(db, account, 100, idempotency_key="charge-1")
    assert first.id == again.id
    assert balance(db, account).balance == 100


def test_foreign_amount_converted_at_the_posting_date_and_rate_kept(db, frozen_clock):
    books = Books(db)
    eur = books.account(currency="EUR")
    rate = add_rate(db, books.actor, "AUD", "EUR", "0.6", date(2026, 1, 1))
    entry = post(db, eur, 10_001, currency="AUD")  # 100.01 AUD * 0.6 = 60.006 EUR -> 60.01
    assert (entry.amount, entry.source_amount, entry.source_currency, entry.rate_id, entry.rate_scaled) == (
        6_001, 10_001, "AUD", rate.id, 600_000_000_000)
    assert balance(db, eur).balance == 6_001
    with pytest.raises(Conflict) as exc:
        post(db, eur, 100, currency="USD")
    assert exc.value.code == "no_conversion_rate"


@pytest.mark.parametrize("kwargs,code", [({"amount": 0}, "invalid_amount"), ({"amount": -5}, "invalid_amount"),
                                         ({"direction": "sideways"}, "invalid_direction"),
                                         ({"kind": "Bad Kind"}, "invalid_kind"),
                                         ({"counterpart": "nowhere"}, "invalid_counterpart")])
def test_bad_postings_write_nothing(db, kwargs, code):
    books = Books(db)
    account = books.account()
    args = {"amount": 100, "direction": "debit", "kind": "adjustment", "counterpart": "control", **kwargs}
    with pytest.raises(InvalidInput) as exc:
        db.write(lambda s: postings.post_account_entry(s, account, args["amount"], args["direction"], args["kind"],
                                                       counterpart=args["counterpart"]))
    assert exc.value.code == code
    assert ledger_balance(db, account) == 0


def test_terminated_accounts_take_no_postings(db):
    books = Books(db)
    account = books.account()
    db.write(lambda s: s.execute(update(accounts.BillingAccount).where(accounts.BillingAccount.id == account.id)
                                 .values(status="terminated")))
    account.status = "terminated"
    with pytest.raises(Conflict) as exc:
        post(db, account, 100)
    assert exc.value.code == "account_terminated"


# --- periods ---

def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


def close(db, books):
    return db.write(lambda s: periods.close_due_period(s, books.ws.id, actor=books.actor))


def test_period_calendar():
    assert periods.period_after("monthly", date(2026, 1, 31), None) == (date(2026, 1, 31), date(2026, 2, 27))
    assert periods.period_after("monthly", date(2026, 1, 31), date(2026, 2, 27)) == (date(2026, 2, 28),
                                                                                     date(2026, 3, 30))
    assert periods.period_after("quarterly", date(2026, 1, 1), date(2026, 3, 31)) == (date(2026, 4, 1),
                                                                                      date(2026, 6, 30))
    assert periods.period_after("yearly", date(2026, 7, 1), None) == (date(2026, 7, 1), date(2027, 6, 30))


def test_period_settings_are_set_once(db):
    books = Books(db, periods={"frequency": "monthly", "start_date": "2026-01-01"})
    data = bs.BillingSettingsUpdate.model_validate({"accounting_periods": {"frequency": "yearly",
                                                                           "start_date": "2026-01-01"}})
    with pytest.raises(Conflict) as exc:
        db.write(lambda s: settings.update_settings(s, data, actor=books.actor))
    assert exc.value.code == "period_settings_locked"
    configure(db, actor=books.actor, default_currency="EUR", enabled=["AUD"])  # the rest may still change
    with db.read() as s:
        row = s.get(BillingSettings, books.ws.id)
        assert (row.period_frequency, row.default_currency) == ("monthly", "EUR")


def test_close_is_idempotent_and_balances_agree_with_the_ledger(db, frozen_clock):
    frozen_clock.set(at(date(2026, 1, 10)))
    books = Books(db, periods={"frequency": "monthly", "start_date": "2026-01-01"})
    aud, eur = books.account(), books.account(currency="EUR")
    post(db, aud, 10_000)
    post(db, eur, 2_500)
    assert close(db, books) is None  # January is not over
    frozen_clock.set(at(date(2026, 2, 3)))
    post(db, aud, 1_000, "credit", "payment", at=at(date(2026, 1, 31)))  # back-dated into January, still open
    post(db, aud, 300)  # February
    january = close(db, books)
    assert (january.start_date, january.end_date, january.accounts_closed) == (date(2026, 1, 1),
                                                                              date(2026, 1, 31), 2)
    assert close(db, books) is None  # closing twice does nothing
    with db.read() as s:
        rows = {r.account_id: r for r in s.scalars(select(PeriodBalance).where(PeriodBalance.period_id == january.id))}
        s.expunge_all()
    assert (rows[aud.id].debits, rows[aud.id].credits, rows[aud.id].balance) == (10_000, 1_000, 9_000)
    assert rows[eur.id].balance == 2_500
    b = balance(db, aud)
    assert (b.opening_balance, b.debits_since, b.credits_since, b.balance) == (9_000, 300, 0, 9_300)
    assert b.opening_as_of == datetime(2026, 2, 1, tzinfo=UTC)
    assert b.balance == ledger_balance(db, aud)
    with pytest.raises(Conflict) as exc:  # January is closed now
        post(db, aud, 5, at=at(date(2026, 1, 31)))
    assert exc.value.code == "period_closed"
    # Months behind: each close takes the earliest due period, one at a time.
    frozen_clock.set(at(date(2026, 4, 2)))
    with db.read() as s:
        assert periods.count_due(s, s.get(BillingSettings, books.ws.id)) == 2
    assert close(db, books).end_date == date(2026, 2, 28)
    assert close(db, books).end_date == date(2026, 3, 31)
    assert close(db, books) is None
    late = books.account(name="Opened after the closes")
    post(db, late, 42)
    for account in (aud, eur, late):
        assert balance(db, account).balance == ledger_balance(db, account)
    with db.read() as s:
        checked, problems = verify_period_balances(s, workspace_id=books.ws.id)
    assert problems == [] and checked == 6


def test_verify_finds_a_wrong_opening_balance(db, frozen_clock):
    frozen_clock.set(at(date(2026, 1, 10)))
    books = Books(db, periods={"frequency": "monthly", "start_date": "2026-01-01"})
    account = books.account()
    post(db, account, 700)
    frozen_clock.set(at(date(2026, 2, 1)))
    period = close(db, books)
    db.write(lambda s: s.execute(update(PeriodBalance).where(PeriodBalance.period_id == period.id)
                                 .values(balance=701, debits=701)))
    with db.read() as s:
        _, problems = verify_period_balances(s, workspace_id=books.ws.id)
    assert len(problems) == 1 and "stored as 701" in problems[0] and "the ledger says 700" in problems[0]


def test_outstanding_is_zero_without_invoices_and_follows_registered_sources(db):
    books = Books(db)
    account = books.account()
    post(db, account, 900)
    with db.read() as s:
        assert accounts.account_outstanding(s, account) == 0

        def overdue(session, acc, on_date):
            return 250 if acc.id == account.id else 0
        accounts.register_outstanding_source(overdue)
        try:
            assert accounts.account_outstanding(s, account) == 250
        finally:
            accounts._outstanding_sources.remove(overdue)


def test_statement_has_running_balances_across_pages(db, frozen_clock):
    frozen_clock.set(at(date(2026, 1, 10)))
    books = Books(db)
    account = books.account()
    amounts = [(500, "debit"), (200, "credit"), (50, "debit"), (1000, "debit"), (300, "credit")]
    for n, (amount, direction) in enumerate(amounts):
        frozen_clock.advance(minutes=1)
        post(db, account, amount, direction)
    with db.read() as s:
        first, cursor = accounts.statement_page(s, account, limit=2)
        second, cursor2 = accounts.statement_page(s, account, limit=2, cursor=cursor)
        third, end = accounts.statement_page(s, account, limit=2, cursor=cursor2)
        every = list(accounts.statement_rows(s, account))
    lines = first + second + third
    assert end is None
    assert [line.balance for line in lines] == [500, 300, 350, 1350, 1050] == [line.balance for line in every]
    assert [(line.debit, line.credit) for line in lines[:2]] == [(500, 0), (0, 200)]
    assert lines[-1].balance == ledger_balance(db, account)
