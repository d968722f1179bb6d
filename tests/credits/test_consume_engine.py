"""Consumption per batch (credits.consume_engine): many requests planned and written together give the
answers, rows and audit events that the same requests give one by one."""

from __future__ import annotations

import threading

from sqlalchemy import select

from creditdesk.audit import AuditEvent
from creditdesk.credits import schemas as cs
from creditdesk.credits.consume_engine import consume_many
from creditdesk.credits.models import Consumption, Pack
from creditdesk.errors import CreditdeskError
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer
from creditdesk.parties import service as parties
from creditdesk.parties.models import User
from tests.credits.helpers import assert_verified, grant, make_shop


def _world(db, name):
    shop = make_shop(db, name)
    packs = {
        "berlin_a": grant(db, shop.actor, "office", shop.berlin, 10, name="berlin_a", priority=1),
        "berlin_b": grant(db, shop.actor, "office", shop.berlin, 5, name="berlin_b", priority=2),
        "paris": grant(db, shop.actor, "office", shop.paris, 3, name="paris"),
        "web_only": grant(db, shop.actor, "office", shop.paris, 4, name="web_only", product_codes=["web"]),
        "clara": grant(db, shop.actor, "user", shop.clara, 6, name="clara"),
        "anna_sms": grant(db, shop.actor, "user", shop.anna, 5, name="anna_sms", credit_type="sms"),
    }
    with db.read() as session:
        anna = parties.actor_for_user(session, session.get(User, shop.anna))
    return shop, packs, anna


def _requests(shop, anna):
    def req(kind, context_id, amount, credit_type="credits", actor=shop.actor, **kw):
        return actor, cs.ConsumeRequest(context={"kind": kind, "id": context_id}, credit_type=credit_type,
                                        amount=amount, **kw)
    return [
        req("office", shop.berlin, 7, reference={"kind": "job", "id": "J1", "url": "https://example.com/j1"}),
        req("office", shop.berlin, 6),                                  # spans both berlin packs: a depletes
        req("office", shop.berlin, 5),                                  # 2 left: refused, writes nothing
        req("office", shop.berlin, 5, allow_partial=True),              # takes the 2 left: b depletes
        req("office", shop.paris, 5, product_code="web"),               # paris (any product) then web_only
        req("office", shop.paris, 1, product_code="print"),             # only the web pack is left: refused
        req("customer", shop.customer, 2, product_code="web"),          # customer context: its offices' packs
        req("office", shop.paris, 1, credit_type="nope"),               # unknown credit type
        req("office", "off_missing", 1),                                # unknown office
        req("user", shop.clara, 2, reference={"kind": "x", "id": "1", "url": "javascript:alert(1)"}),  # bad link
        req("user", shop.clara, 2),
        req("user", shop.anna, 2, credit_type="sms", actor=anna),       # no consume_credits permission
        req("office", shop.berlin, 1, credit_type="sms"),              # governed type, not own: refused
    ]


def _names(packs):
    return {pack_id: name for name, pack_id in packs.items()}


def _answer(result, names, shop):
    if isinstance(result, CreditdeskError):
        return ("error", result.code, result.http_status, str(result).replace(shop.paris, "P")
                .replace(shop.berlin, "B"))
    return ("ok", result.context["kind"], result.credit_type, result.amount_requested, result.amount,
            result.product_code, result.reference.model_dump(), [(names[line.pack_id], line.amount)
                                                                 for line in result.lines])


def _state(db, shop, names):
    with db.read() as session:
        packs = {names[p.id]: (p.status, session.get(LedgerAccount, p.ledger_account_id).credit_balance)
                 for p in session.scalars(select(Pack).where(Pack.workspace_id == shop.ws))}
        consumptions = session.scalar(select(Consumption.id).where(Consumption.workspace_id == shop.ws)
                                      .order_by(Consumption.id.desc()).limit(1))
        audits = [(e.action, e.actor_kind, sorted((e.after or {}).keys()))
                  for e in session.scalars(select(AuditEvent).where(AuditEvent.workspace_id == shop.ws,
                                                                    AuditEvent.action == "consumption.create")
                                           .order_by(AuditEvent.id))]
        legs = session.scalars(select(LedgerTransfer.amount).where(LedgerTransfer.workspace_id == shop.ws,
                                                                   LedgerTransfer.code == "consume")
                               .order_by(LedgerTransfer.id)).all()
    return packs, consumptions is not None, audits, legs


def test_a_batch_answers_and_writes_as_the_same_requests_one_by_one(db):
    alone, alone_packs, alone_anna = _world(db, "Alone")
    together, together_packs, together_anna = _world(db, "Together")

    one_by_one = []
    for actor, data in _requests(alone, alone_anna):
        def one(session, actor=actor, data=data):
            return consume_many(session, [(actor, data)])[0]
        one_by_one.append(db.write(one))
    batched = db.write(lambda session: consume_many(session, _requests(together, together_anna)))

    a_names, t_names = _names(alone_packs), _names(together_packs)
    expected = [_answer(r, a_names, alone) for r in one_by_one]
    assert [_answer(r, t_names, together) for r in batched] == expected
    # The scenario means something: both kinds of answer, and packs emptied by earlier requests of the batch.
    assert [e[0] for e in expected].count("ok") == 6 and [e[0] for e in expected].count("error") == 7
    assert expected[1][-1] == [("berlin_a", 3), ("berlin_b", 3)] and expected[3][-1] == [("berlin_b", 2)]
    assert expected[4][-1] == [("paris", 3), ("web_only", 2)] and expected[6][-1] == [("web_only", 2)]
    assert {e[1] for e in expected if e[0] == "error"} == {
        "insufficient_credits", "product_not_covered", "unknown_credit_type", "not_found", "invalid_url", "not_permitted", "own_credits_only"}
    assert _state(db, together, t_names) == _state(db, alone, a_names)
    packs = _state(db, together, t_names)[0]
    assert packs["berlin_a"] == packs["berlin_b"] == packs["web_only"] == ("depleted", 0)
    assert_verified(db, alone.ws)
    assert_verified(db, together.ws)


def _queue_together(db, send, items):
    """Send each item from its own thread while the writer is busy with a write that waits, so they
    all queue up and the writer then takes them as one group commit."""
    gate, started = threading.Event(), threading.Event()

    def blocker(session, items=None):
        started.set()
        gate.wait(10)
        return [None]
    # (A write planned in batches: on PostgreSQL too it goes through the group writer.)
    blocking = threading.Thread(target=db.write, args=(blocker,), kwargs={"batch": (blocker, None)})
    blocking.start()
    assert started.wait(5)
    threads = [threading.Thread(target=send, args=(n, *item)) for n, item in enumerate(items)]
    for t in threads:
        t.start()
    pause = threading.Event()
    for _ in range(500):
        if len(db._group_writer().queue) == len(items):
            break
        pause.wait(0.01)
    assert len(db._group_writer().queue) == len(items)
    gate.set()
    for t in threads + [blocking]:
        t.join(10)


def test_the_api_runs_queued_consumptions_together_with_the_same_answers(db, app, client, monkeypatch):
    from creditdesk.api import deps
    from tests.conftest import make_workspace

    together = []
    real = deps._run_together

    def spy(session, items, plan):
        out = real(session, items, plan)
        together.append(len(items))  # only segments that did run together
        return out
    monkeypatch.setattr(deps, "_run_together", spy)

    headers = make_workspace(db, name="Queued").headers
    client.post("/v1/credit-types", json={"code": "credits", "name": "Credits"}, headers=headers)
    customer = client.post("/v1/customers", json={"name": "C"}, headers=headers).json()["id"]
    office = client.post("/v1/offices", json={"name": "O", "customer_id": customer}, headers=headers).json()["id"]
    assert client.post("/v1/packs", json={"holder": {"kind": "office", "id": office}, "credit_type": "credits",
                                          "quantity": 12, "name": "P"}, headers=headers).status_code == 201

    def body(amount):
        return {"context": {"kind": "office", "id": office}, "credit_type": "credits", "amount": amount}

    def post(amount, key):
        return client.post("/v1/consumptions", json=body(amount), headers={**headers, "Idempotency-Key": key})
    first, second = post(1, "k-first"), post(1, "k-second")
    assert (first.status_code, second.status_code) == (201, 201)

    answers: dict[int, object] = {}

    def send(n, amount, key):
        answers[n] = post(amount, key)

    items = [(3, f"k{n}") for n in range(4)] + [(1, "k-first"), (5, "k-second")]
    together.clear()
    _queue_together(db, send, items)
    statuses = [answers[n].status_code for n in range(len(items))]
    assert statuses[:4].count(201) == 3 and statuses[:4].count(409) == 1  # 10 left: three of 3, then 1 left
    assert statuses[4] == 201 and answers[4].headers.get("Idempotent-Replayed") == "true"
    assert answers[4].json() == first.json()
    assert statuses[5] == 422 and answers[5].json()["code"] == "idempotency_key_reused"
    assert together == [len(items)]  # they did run together, as one segment
    # Replays of the batch's own keys answer what the batch answered, stored in the same transaction.
    for n in range(4):
        again = post(3, f"k{n}")
        assert (again.status_code, again.json()) == (statuses[n], answers[n].json())
        assert again.headers.get("Idempotent-Replayed") == "true"

    assert client.post("/v1/packs", json={"holder": {"kind": "office", "id": office}, "credit_type": "credits",
                                          "quantity": 5, "name": "Q"}, headers=headers).status_code == 201
    # A key sent twice in one group commit: the segment runs one request at a time (claim_in's rules).
    together.clear()
    answers.clear()
    _queue_together(db, send, [(1, "dup"), (1, "dup"), (1, "other")])
    assert [answers[n].status_code for n in range(3)] == [201] * 3
    assert answers[0].json() == answers[1].json()
    assert {answers[0].headers.get("Idempotent-Replayed"), answers[1].headers.get("Idempotent-Replayed")} == {
        None, "true"}
    assert together == []  # the segment holding both went one request at a time
