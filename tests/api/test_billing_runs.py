"""POST /v1/billing-runs under an Idempotency-Key, as every write: the same key and body replay the first run's
answer (Idempotent-Replayed) and start nothing; the same key with another body is refused (422
idempotency_key_reused) and bills nothing; a run still going answers 409 to its retry; a 403 is never stored.
Each run records what it billed and refused, per subscription, in its audit."""

from __future__ import annotations

from sqlalchemy import func, select

from creditdesk import idempotency
from creditdesk.billing import billing_runs
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.subscription_models import BillingRun
from tests.api.test_subscriptions import api, shop, subscribe  # noqa: F401  (fixtures)


def _count(db, model, workspace_id):
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id))


def test_the_same_key_replays_the_first_run_and_another_body_is_refused(client, workspace, db, api, shop):  # noqa: F811
    for _ in range(2):
        subscribe(api, shop["account"], start="2027-01-01")
    headers = {**workspace.headers, "Idempotency-Key": "run-2027-01"}
    first = client.post("/v1/billing-runs", json={"as_of": "2027-01-01"}, headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert (first.json()["bills"], first.json()["status"]) == (2, "completed")
    again = client.post("/v1/billing-runs", json={"as_of": "2027-01-01"}, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the first run's answer, not a second run
    assert _count(db, BillingRun, workspace.id) == 1
    # The same key with another day: refused like any write, and nothing billed (February was due).
    other = client.post("/v1/billing-runs", json={"as_of": "2027-02-01"}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert _count(db, BillingRun, workspace.id) == 1 and _count(db, Invoice, workspace.id) == 2
    # A new key is a new run.
    fresh = client.post("/v1/billing-runs", json={"as_of": "2027-02-01"},
                        headers={**workspace.headers, "Idempotency-Key": "run-2027-02"})
    assert fresh.status_code == 201 and fresh.json()["bills"] == 2 and fresh.json()["id"] != first.json()["id"]
    assert [r["id"] for r in api.get("/v1/billing-runs")["data"]] == [fresh.json()["id"], first.json()["id"]]


def test_a_run_still_going_answers_its_retry_409(client, workspace, db, api, shop):  # noqa: F811
    subscribe(api, shop["account"], start="2027-01-01")
    # The key as a run's first transaction leaves it while its batches go: claimed, in flight (each batch keeps
    # its lock on). A retry then is told so, and starts nothing.
    assert isinstance(_claim_only(db, workspace), idempotency.Claim)
    retry = client.post("/v1/billing-runs", json={"as_of": "2027-01-01"},
                        headers={**workspace.headers, "Idempotency-Key": "slow-run"})
    assert (retry.status_code, retry.json()["code"]) == (409, "idempotency_request_in_progress")
    assert _count(db, BillingRun, workspace.id) == 0 and _count(db, Invoice, workspace.id) == 0


def _claim_only(db, workspace):
    """A run's key claimed and in flight, as the first transaction of a run leaves it while its batches go."""
    body = b'{"as_of": "2027-01-01"}'
    fingerprint = idempotency.request_fingerprint("POST", "/v1/billing-runs", body)
    with db.read() as session:
        from creditdesk.parties.models import User

        user_id = session.scalar(select(User.id).where(User.workspace_id == workspace.id, User.role == "master"))
    return db.write(lambda s: idempotency.claim_in(s, workspace_id=workspace.id, caller=user_id, key="slow-run",
                                                   fingerprint=fingerprint, method="POST", path="/v1/billing-runs"))


def test_a_failed_run_frees_its_key_and_a_retry_resumes(client, workspace, db, api, shop, monkeypatch):  # noqa: F811
    for _ in range(3):
        subscribe(api, shop["account"], start="2027-01-01")
    headers = {**workspace.headers, "Idempotency-Key": "crashing-run"}
    real = billing_runs._bill_batch
    calls = []

    def crash_on_second_batch(session, ids, *args, **kw):
        calls.append(ids)
        if len(calls) == 2:
            raise RuntimeError("the machine went away")
        return real(session, ids, *args, **kw)
    monkeypatch.setattr(billing_runs, "_bill_batch", crash_on_second_batch)
    monkeypatch.setitem(billing_runs.run.__kwdefaults__, "batch_size", 2)  # two batches: one billed, one not
    no_raise = client.__class__(client.app, raise_server_exceptions=False)
    failed = no_raise.post("/v1/billing-runs", json={"as_of": "2027-01-01"}, headers=headers)
    assert failed.status_code == 500
    with db.read() as session:
        [row] = session.scalars(select(BillingRun).where(BillingRun.workspace_id == workspace.id))
        assert row.status == "failed" and row.bills == 2  # the first batch's bills stay billed
    monkeypatch.setattr(billing_runs, "_bill_batch", real)
    retry = client.post("/v1/billing-runs", json={"as_of": "2027-01-01"}, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert retry.json()["bills"] == 1 and _count(db, Invoice, workspace.id) == 3  # the rest, nothing twice


def test_a_manager_is_refused_and_the_key_stays_free(client, workspace, db, api, shop):  # noqa: F811
    from tests.api.helpers import auth
    from tests.parties.factories import make_api_key, make_user, master_actor

    actor = master_actor(db, workspace.id)
    manager = auth(make_api_key(db, actor=actor, user_id=make_user(db, actor=actor, name="M", role="manager")))
    refused = client.post("/v1/billing-runs", json={"as_of": "2027-01-01"}, headers={**manager, "Idempotency-Key": "k"})
    assert refused.status_code == 403 and _count(db, BillingRun, workspace.id) == 0
    with db.read() as session:  # nothing kept under the key: its owner may still use it
        assert session.scalar(select(func.count()).select_from(idempotency.IdempotencyKey).where(
            idempotency.IdempotencyKey.workspace_id == workspace.id, idempotency.IdempotencyKey.key == "k")) == 0


def test_a_run_records_what_it_billed_and_refused_per_subscription(client, workspace, db, api, shop):  # noqa: F811
    billed = subscribe(api, shop["account"], start="2027-01-01")
    customer = api.post("/v1/customers", {"name": "Limited"})["id"]
    limited = api.post("/v1/accounts", {"customer_id": customer, "name": "Main"})["id"]
    refused = subscribe(api, limited, start="2027-01-01")
    api.post(f"/v1/accounts/{limited}/credit-terms", {"credit_limit": 100}, status=200)
    run = api.post("/v1/billing-runs", {"as_of": "2027-01-01"})
    assert (run["bills"], run["refused"]) == (1, 1)
    from creditdesk.audit import Actor

    with db.read() as session:
        summary = billing_runs.get_summary(session, actor=Actor.system(workspace.id), run_id=run["id"])
    [(sub_id, bill_id)] = summary.billed
    assert sub_id == billed["id"] and bill_id == api.get(f"/v1/bills?subscription_id={sub_id}")["data"][0]["id"]
    [refusal] = summary.refusals
    assert (refusal["subscription_id"], refusal["number"], refusal["code"]) == \
        (refused["id"], refused["number"], "credit_limit_exceeded")
    assert refusal["message"]
