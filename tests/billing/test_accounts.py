"""Accounts: gap-free numbers, the currency rules, the billing address, the credit period's proximity range."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from creditdesk.audit import Actor
from creditdesk.billing import accounts
from creditdesk.billing import schemas as bs
from creditdesk.billing.models import BillingAccount, BillingSettings
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from creditdesk.ledger.models import LedgerAccount
from tests.billing.factories import Books, make_account, make_address
from tests.conftest import make_workspace
from tests.parties.factories import actor_of, make_customer, make_user, master_actor


def update(db, actor, account_id, **fields):
    data = bs.AccountUpdate.model_validate(fields)
    return db.write(lambda s: accounts.update_account(s, account_id, data, actor=actor))


def test_numbers_are_sequential_per_workspace_and_a_refusal_leaves_no_gap(db):
    books, other = Books(db), Books(db, name="Other")
    first = books.account()
    second = books.account(name="Second")
    with pytest.raises(InvalidInput):
        books.account(currency="JPY")  # refused after the checks: takes no number
    third = books.account(name="Third")
    assert [first.number, second.number, third.number] == ["ACC-000001", "ACC-000002", "ACC-000003"]
    assert other.account().number == "ACC-000001"
    with db.read() as s:
        assert s.get(BillingSettings, books.ws.id).next_account_number == 4


def test_each_account_has_its_own_ledger_account_in_its_currency(db):
    books = Books(db)
    aud, eur = books.account(), books.account(currency="eur")
    assert (aud.currency, eur.currency) == ("AUD", "EUR")
    with db.read() as s:
        la = s.get(LedgerAccount, eur.ledger_account_id)
        assert (la.unit, la.code, la.workspace_id) == ("EUR", "billing_account", books.ws.id)
    assert aud.credit_period_days == 30 and aud.status == "active"


def test_currency_rules_at_creation(db):
    books = Books(db, multi_currency=False)
    with pytest.raises(InvalidInput) as exc:
        books.account(currency="EUR")
    assert exc.value.code == "multi_currency_disabled"
    books2 = Books(db, enabled=["EUR"])
    with pytest.raises(InvalidInput) as exc:
        books2.account(currency="USD")
    assert exc.value.code == "currency_not_enabled"
    with pytest.raises(InvalidInput) as exc:
        books2.account(currency="ZZZ")
    assert exc.value.code == "unknown_currency"


def test_no_settings_no_account(db):
    ws = make_workspace(db)
    actor = master_actor(db, ws.id)
    customer = make_customer(db, actor=actor)
    with pytest.raises(Conflict) as exc:
        make_account(db, actor=actor, customer_id=customer)
    assert exc.value.code == "billing_settings_required"


def test_currency_never_changes(db):
    books = Books(db)
    account = books.account()
    with pytest.raises(Conflict) as exc:
        update(db, books.actor, account.id, currency="EUR")
    assert exc.value.code == "currency_immutable"
    assert update(db, books.actor, account.id, currency="AUD", name="Renamed").name == "Renamed"


def test_billing_address_must_be_the_customers(db):
    books = Books(db)
    stranger = make_customer(db, actor=books.actor, name="Stranger")
    foreign = make_address(db, actor=books.actor, customer_id=stranger)
    with pytest.raises(InvalidInput) as exc:
        books.account(billing_address_id=foreign)
    assert exc.value.code == "address_not_of_customer"
    account = books.account(billing_address_id=books.address_id)
    assert account.billing_address_id == books.address_id
    with pytest.raises(InvalidInput) as exc:
        update(db, books.actor, account.id, billing_address_id=foreign)
    assert exc.value.code == "address_not_of_customer"
    other = make_workspace(db, name="Elsewhere")
    with pytest.raises(InvalidInput):  # another workspace's address is nobody's here
        other_actor = master_actor(db, other.id)
        books.account(billing_address_id=make_address(
            db, actor=other_actor, customer_id=make_customer(db, actor=other_actor)))


def test_credit_period_inside_the_proximity_range(db):
    books = Books(db, period=30, min_days=14, max_days=60)
    account = books.account()
    assert update(db, books.actor, account.id, credit_period_days=45).credit_period_days == 45
    for days in (13, 61):
        with pytest.raises(InvalidInput) as exc:
            update(db, books.actor, account.id, credit_period_days=days)
        assert exc.value.code == "credit_period_out_of_range"
    with pytest.raises(InvalidInput) as exc:
        books.account(credit_period_days=90)
    assert exc.value.code == "credit_period_out_of_range"
    assert books.account(credit_period_days=14).credit_period_days == 14


def test_managers_open_accounts_but_only_masters_change_credit_periods(db):
    books = Books(db)
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    member = actor_of(db, make_user(db, actor=books.actor, name="Member"))
    account = make_account(db, actor=manager, customer_id=books.customer_id)
    update(db, manager, account.id, name="By manager", classification="Corporate")
    with pytest.raises(NotPermitted):
        update(db, manager, account.id, credit_period_days=40)
    with pytest.raises(NotPermitted):
        make_account(db, actor=manager, customer_id=books.customer_id, credit_period_days=40)
    with pytest.raises(NotPermitted):
        make_account(db, actor=member, customer_id=books.customer_id)
    with pytest.raises(NotPermitted):
        update(db, member, account.id, name="By member")


def test_list_filters_and_pages(db):
    books = Books(db)
    made = [books.account(name=f"A{n}", currency="EUR" if n % 2 else "AUD") for n in range(5)]
    with db.read() as s:
        eur = accounts.list_accounts(s, actor=books.actor, currency="eur", limit=500).items
        assert [a.id for a in eur] == [made[1].id, made[3].id]
        page = accounts.list_accounts(s, actor=books.actor, limit=2)
        rest = accounts.list_accounts(s, actor=books.actor, limit=10, cursor=page.next_cursor)
        assert [a.id for a in page.items + rest.items] == [a.id for a in made]
        assert accounts.list_accounts(s, actor=books.actor, status="suspended").items == []
        assert accounts.list_accounts(s, actor=Actor.system("ws_none")).items == []
        assert s.scalar(select(BillingAccount.customer_id).where(BillingAccount.id == made[0].id)) == books.customer_id
