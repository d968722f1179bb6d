"""Credit control: ratings and their limits, Change credit terms, the credit limit status (and its SQL filter),
override rules, the spend decision and require_spend (one rule: a property test), the invoice posting hook."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditdesk.billing import accounts, credit_control, postings
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.credit_models import SPEND_EVENTS, OverrideRule
from creditdesk.billing.models import BillingAccount
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.ledger.batch import Reference
from creditdesk.parties.models import Customer
from tests.api.helpers import audit_rows
from tests.billing.factories import Books
from tests.conftest import make_workspace
from tests.parties.factories import actor_of, make_user, master_actor


def rating(db, actor, code="A", limits=None, name=None):
    data = cs.CreditRatingCreate(code=code, name=name or f"Rating {code}", limits=limits or {})
    return db.write(lambda s: credit_control.create_rating(s, data, actor=actor))


def terms(db, actor, account_id, **fields):
    data = cs.CreditTermsChange.model_validate(fields)
    return db.write(lambda s: credit_control.change_credit_terms(s, account_id, data, actor=actor))


def rule(db, actor, **fields):
    data = cs.OverrideRuleCreate.model_validate({"name": "Rule", "events": ["invoice_post"], **fields})
    return db.write(lambda s: credit_control.create_rule(s, data, actor=actor))


def debit(db, account, amount):
    db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account.id), amount, "debit", "adjustment"))


def state(db, account_id):
    with db.read() as s:
        return credit_control.credit_state(s, s.get(BillingAccount, account_id))


def decide(db, account_id, event="invoice_post", amount=0, **kw):
    with db.read() as s:
        d = credit_control.decide_spend(s, s.get(BillingAccount, account_id), event, amount, **kw)
        return d.allowed, [r.code for r in d.reasons], d.override_rule.name if d.override_rule else None


def audits(db, ws, action):
    return audit_rows(db, ws, action=action)


def test_ratings_limits_per_currency_codes_unique_and_masters_only(db):
    books = Books(db)
    a = rating(db, books.actor, "A", {"aud": 100_000, "EUR": 60_000})
    assert a.limits == {"AUD": 100_000, "EUR": 60_000}
    with pytest.raises(Conflict) as exc:
        rating(db, books.actor, "A")
    assert exc.value.code == "credit_rating_code_taken"
    with pytest.raises(InvalidInput) as exc:
        rating(db, books.actor, "B", {"XYZ": 1})
    assert exc.value.code == "unknown_currency"
    with pytest.raises(InvalidInput) as exc:
        rating(db, books.actor, "B", {"aud": 1, "AUD": 2})
    assert exc.value.code == "duplicate_currency"
    updated = db.write(lambda s: credit_control.update_rating(
        s, a.id, cs.CreditRatingUpdate(limits={"AUD": 5}), actor=books.actor))
    assert updated.limits == {"AUD": 5} and updated.code == "A"
    [event] = audits(db, books.ws.id, "credit_rating.update")
    assert event.before["limits"] == {"AUD": 100_000, "EUR": 60_000} and event.after["limits"] == {"AUD": 5}
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    with pytest.raises(NotPermitted):
        rating(db, manager, "M")
    other = master_actor(db, make_workspace(db, name="Other").id)
    with pytest.raises(NotFound):  # another workspace's rating is nobody's
        db.write(lambda s: credit_control.update_rating(s, a.id, cs.CreditRatingUpdate(name="x"), actor=other))


def test_limit_comes_from_the_rating_unless_the_account_has_its_own(db):
    books = Books(db, period=30, min_days=14, max_days=60)
    a = rating(db, books.actor, "A", {"AUD": 100_000})
    aud, eur = books.account(), books.account(currency="EUR", name="Euro")
    assert state(db, aud.id).credit_limit is None  # no rating, no own limit: no limit
    terms(db, books.actor, aud.id, credit_rating_id=a.id)
    terms(db, books.actor, eur.id, credit_rating_id=a.id)
    assert (state(db, aud.id).credit_limit, state(db, aud.id).limit_source) == (100_000, "rating")
    assert state(db, eur.id).credit_limit is None  # the rating has no EUR limit
    terms(db, books.actor, aud.id, credit_limit=250_000)
    assert (state(db, aud.id).credit_limit, state(db, aud.id).limit_source) == (250_000, "account")
    terms(db, books.actor, aud.id, credit_limit=None)
    assert state(db, aud.id).credit_limit == 100_000
    changed = terms(db, books.actor, aud.id, credit_period_days=45, credit_rating_id=None)
    assert (changed.credit_period_days, changed.credit_rating_id) == (45, None)
    events = audits(db, books.ws.id, "account.credit_terms_change")
    assert events[-1].before["credit_period_days"] == 30 and events[-1].after["credit_period_days"] == 45
    assert events[-1].before["credit_rating_id"] == a.id and events[-1].after["credit_rating_id"] is None


def test_change_credit_terms_refusals(db):
    books = Books(db, period=30, min_days=14, max_days=60)
    account = books.account()
    for fields, error, code in (({"credit_period_days": 90}, InvalidInput, "credit_period_out_of_range"),
                                ({}, InvalidInput, "nothing_to_change"),
                                ({"credit_rating_id": "crat_01m0000000000000000000000"}, NotFound, "not_found")):
        with pytest.raises(error) as exc:
            terms(db, books.actor, account.id, **fields)
        assert exc.value.code == code
    manager = actor_of(db, make_user(db, actor=books.actor, name="Manager", role="manager"))
    with pytest.raises(NotPermitted):
        terms(db, manager, account.id, credit_limit=1)
    assert audits(db, books.ws.id, "account.credit_terms_change") == []


def test_credit_limit_status_on_the_account_and_the_list_filter(db):
    books = Books(db)
    a = rating(db, books.actor, "A", {"AUD": 1000})
    over, at_limit, unlimited = books.account(name="Over"), books.account(name="At"), books.account(name="Free")
    for acc in (over, at_limit):
        terms(db, books.actor, acc.id, credit_rating_id=a.id)
    debit(db, over, 1001)
    debit(db, at_limit, 1000)  # the limit is the maximum allowed balance: not exceeded
    debit(db, unlimited, 10**9)
    assert state(db, over.id).status() == "exceeded"
    assert state(db, at_limit.id).status() == "not_exceeded"
    assert state(db, at_limit.id).status(1) == "exceeded"
    assert state(db, unlimited.id).status() == "not_exceeded"
    with db.read() as s:
        out = accounts.account_out(s.get(BillingAccount, over.id))
        assert (out.credit_limit_status, out.effective_credit_limit, out.credit_rating_id) == ("exceeded", 1000, a.id)

        def listed(status):
            return {x.name for x in accounts.list_accounts(s, actor=books.actor, credit_limit_status=status).items}
        assert listed("exceeded") == {"Over"}
        assert listed("not_exceeded") == {"At", "Free"}


def test_override_rules_conditions(db):
    books = Books(db)
    a, b = rating(db, books.actor, "A", {"AUD": 0}), rating(db, books.actor, "B", {"AUD": 0})
    account = books.account(classification="Corporate")
    terms(db, books.actor, account.id, credit_rating_id=a.id)
    assert decide(db, account.id, amount=1)[:2] == (False, ["credit_limit_exceeded"])
    rule(db, books.actor, name="Retail only", classifications=["Retail"])
    rule(db, books.actor, name="Rating B", credit_rating_ids=[b.id])
    rule(db, books.actor, name="Verified KYC", kyc_profiles=["verified"])
    rule(db, books.actor, name="Purchases", events=["purchase"])
    inactive = rule(db, books.actor, name="Inactive", active=False)
    assert decide(db, account.id, amount=1)[0] is False
    with db.read() as s:
        assert [r.name for r in credit_control.list_rules(s, actor=books.actor, active=False).items] == [inactive.name]
    # The KYC profile of the customer makes "Verified KYC" match (case-insensitively).
    with db.transaction() as s:
        s.get(Customer, books.customer_id).kyc_profile = "Verified"
    assert decide(db, account.id, amount=1) == (True, ["credit_limit_overridden"], "Verified KYC")
    assert decide(db, account.id, "purchase", 1) == (True, ["credit_limit_overridden"], "Purchases")
    assert decide(db, account.id, "service_add", 1)[0] is False
    # The oldest matching rule is the one named.
    rule(db, books.actor, name="Corporate", classifications=["corporate"], credit_rating_ids=[a.id])
    assert decide(db, account.id, amount=1)[2] == "Verified KYC"
    with pytest.raises(Conflict) as exc:
        rule(db, books.actor, name="Corporate")
    assert exc.value.code == "override_rule_name_taken"
    other = master_actor(db, make_workspace(db, name="Other").id)
    foreign = rating(db, other, "X")
    with pytest.raises(NotFound):
        rule(db, books.actor, name="Foreign rating", credit_rating_ids=[foreign.id])


def test_account_status_in_the_decision(db):
    books = Books(db)
    account = books.account()
    with db.transaction() as s:
        row = s.get(BillingAccount, account.id)
        row.status, row.suspension_reason = "suspended", "dispute"
    assert decide(db, account.id, "subscription_activate")[:2] == (False, ["account_suspended", "no_credit_limit"])
    assert decide(db, account.id, "service_add")[0] is False
    assert decide(db, account.id, "invoice_post")[:2] == (True, ["suspended_transactions_post", "no_credit_limit"])
    with db.transaction() as s:
        row = s.get(BillingAccount, account.id)
        row.status, row.suspension_reason = "terminated", None
    for event in SPEND_EVENTS:
        assert decide(db, account.id, event)[:2] == (False, ["account_terminated", "no_credit_limit"])
    with db.read() as s, pytest.raises(Conflict) as exc:
        credit_control.require_spend(s, s.get(BillingAccount, account.id), "wallet_debit", 0)
    assert exc.value.code == "account_terminated"


def test_decision_input_is_checked(db):
    books = Books(db)
    account = books.account()
    with db.read() as s:
        row = s.get(BillingAccount, account.id)
        for event, amount, code in (("nope", 1, "unknown_event"), ("purchase", -1, "invalid_amount"),
                                    ("purchase", True, "invalid_amount")):
            with pytest.raises(InvalidInput) as exc:
                credit_control.decide_spend(s, row, event, amount)
            assert exc.value.code == code
        with pytest.raises(NotFound):
            credit_control.decide_spend(s, row, "purchase", 1, product="no-such-product")


def test_invoice_post_hook_refuses_or_audits_the_override(db):
    books = Books(db)
    account = books.account(classification="Corporate")
    terms(db, books.actor, account.id, credit_limit=500)

    def post_invoice(amount, ref):
        def fn(s):
            row = accounts.get_account(s, books.ws.id, account.id, for_update=True)
            used = credit_control.check_invoice_post(s, row, amount, actor=books.actor,
                                                     reference=Reference(kind="invoice", id=ref))
            postings.post_account_entry(s, row, amount, "debit", "invoice", Reference(kind="invoice", id=ref))
            return used
        return db.write(fn)

    assert post_invoice(500, "inv_1") is None
    with pytest.raises(Conflict) as exc:
        post_invoice(1, "inv_2")
    assert exc.value.code == "credit_limit_exceeded" and exc.value.details["credit_limit"] == 500
    assert state(db, account.id).balance == 500  # nothing posted
    rule(db, books.actor, name="Corporate invoices", classifications=["Corporate"])
    assert post_invoice(200, "inv_3").name == "Corporate invoices"
    [event] = audits(db, books.ws.id, "account.credit_limit_override")
    assert (event.object_id, event.after["override_rule_name"], event.after["event"], event.after["amount"],
            event.after["reference_id"]) == (account.id, "Corporate invoices", "invoice_post", 200, "inv_3")


# --- decide_spend and require_spend agree: the same function answers the preview and the real action ---

class _Rollback(Exception):
    pass


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(balance=st.integers(-5_000, 5_000), own_limit=st.none() | st.integers(0, 4_000),
       rating_limit=st.none() | st.integers(0, 4_000), rated=st.booleans(),
       status=st.sampled_from(["active", "suspended", "terminated"]), event=st.sampled_from(SPEND_EVENTS),
       amount=st.integers(0, 3_000), classification=st.sampled_from([None, "Corporate", "Retail"]),
       kyc=st.sampled_from([None, "verified", "basic"]),
       rules=st.lists(st.fixed_dictionaries({
           "events": st.lists(st.sampled_from(SPEND_EVENTS), min_size=1, max_size=3, unique=True),
           "classifications": st.sampled_from([[], ["corporate"], ["Retail"]]),
           "by_rating": st.booleans(), "kyc_profiles": st.sampled_from([[], ["Verified"], ["basic", "gold"]]),
           "active": st.booleans()}), max_size=3))
def _agree(world, balance, own_limit, rating_limit, rated, status, event, amount, classification, kyc, rules):
    db, books, account_id, rating_id, seen = world
    seen.append(event)

    def check(s):
        row = s.get(BillingAccount, account_id)
        if balance:
            postings.post_account_entry(s, row, abs(balance), "debit" if balance > 0 else "credit", "adjustment")
        credit_control._set_limits(s, credit_control.get_rating(s, books.ws.id, rating_id),
                                   {} if rating_limit is None else {"AUD": rating_limit})
        row.credit_rating_id = rating_id if rated else None
        row.credit_limit = own_limit
        row.classification = classification
        row.status, row.suspension_reason = status, ("credit_check" if status == "suspended" else None)
        s.get(Customer, row.customer_id).kyc_profile = kyc
        for n, r in enumerate(rules):
            s.add(OverrideRule(id=f"ovr_prop{n}", workspace_id=books.ws.id, name=f"prop {n}", events=r["events"],
                               classifications=r["classifications"],
                               credit_rating_ids=[rating_id] if r["by_rating"] else [],
                               kyc_profiles=r["kyc_profiles"], active=r["active"],
                               created_at=row.created_at, updated_at=row.created_at))
        s.flush()
        decision = credit_control.decide_spend(s, row, event, amount)
        try:
            used = credit_control.require_spend(s, row, event, amount)
        except Conflict as exc:
            assert not decision.allowed and exc.code == decision.blocking[0].code
        else:
            assert decision.allowed and used is decision.override_rule
        # The decision is the documented rule.
        limit = own_limit if own_limit is not None else (rating_limit if rated else None)
        over = limit is not None and balance + amount > limit
        assert decision.allowed == (status != "terminated" and not (
            status == "suspended" and event in ("subscription_activate", "service_add"))
            and (not over or decision.override_rule is not None))
        raise _Rollback()  # nothing of this example stays

    with pytest.raises(_Rollback):
        db.write(check)


def test_decide_spend_allows_exactly_when_require_spend_does_not_raise(db):
    books = Books(db)
    account = books.account()
    rating_id = rating(db, books.actor, "P").id
    seen: list[str] = []
    _agree((db, books, account.id, rating_id, seen))
    assert len(seen) >= 30
