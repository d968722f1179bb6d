"""Credit types and packs over HTTP: grant (single and batch), read, edit, change holder, void, history."""

from __future__ import annotations

import pytest

from tests.api.credits_world import Api, assert_ledger_clean, build_world, member_api, problem, state


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


@pytest.fixture
def api(client, workspace, frozen_clock):
    return Api(client, workspace.headers)


# --- credit types -----------------------------------------------------------------------------------

def test_credit_types_create_list_get_and_rename(api, db, workspace):
    hours = api.created("/v1/credit-types", {"code": "hours", "name": "Consulting hours", "scale": 2})
    assert hours["id"].startswith("ct_")
    assert (hours["object"], hours["code"], hours["scale"], hours["required_permission"]) == (
        "credit_type", "hours", 2, None)
    sms = api.created("/v1/credit-types", {"code": "sms", "name": "SMS", "required_permission": "send_sms"})
    assert sms["required_permission"] == "send_sms"

    listed = api.get("/v1/credit-types").json()
    assert [t["code"] for t in listed["data"]] == ["hours", "sms"]
    assert api.get("/v1/credit-types/hours").json() == hours

    renamed = api.patch("/v1/credit-types/hours", {"name": "Hours"}, status=200).json()
    assert renamed["name"] == "Hours" and renamed["scale"] == 2
    problem(api.patch("/v1/credit-types/hours", {"name": "Hours", "scale": 0}), 422, "unknown_field")
    problem(api.get("/v1/credit-types/minutes", status=None), 404, "not_found")

    before = state(db, workspace.id)
    problem(api.post("/v1/credit-types", {"code": "sms", "name": "Again"}), 422, "credit_type_exists")
    problem(api.post("/v1/credit-types", {"code": "Bad Code", "name": "x"}), 422, "validation_error")
    assert state(db, workspace.id) == before


# --- grant ------------------------------------------------------------------------------------------

def test_grant_pack_to_an_office_and_to_a_contact(world, db, workspace):
    api = world.api
    office_pack = api.get(f"/v1/packs/{world.packs['berlin_june']}").json()
    assert office_pack["id"].startswith("pack_")
    assert office_pack["holder"] == {"kind": "office", "id": world.berlin}
    assert office_pack["customer_id"] == world.customer
    assert (office_pack["quantity"], office_pack["remaining"], office_pack["held"], office_pack["balance"]) == (
        100, 100, 0, 100)
    assert (office_pack["price_paid"], office_pack["currency"], office_pack["is_paid"]) == (10000, "EUR", True)
    assert (office_pack["source"], office_pack["external_ref"]) == ("crm_deal", "DEAL-4711")
    assert office_pack["status"] == "active"
    assert office_pack["expires_at"].startswith("2026-06-30T00:00:00")
    assert office_pack["starts_at"].startswith("2026-01-15T12:00:00")  # defaults to the purchase = now

    contact_pack = api.get(f"/v1/packs/{world.packs['anna_march']}").json()
    assert contact_pack["holder"] == {"kind": "user", "id": world.anna}
    assert contact_pack["customer_id"] == world.customer  # through Anna's primary office
    assert (contact_pack["is_paid"], contact_pack["price_paid"], contact_pack["source"]) == (False, 0, "promotion")

    # Expiry N months after purchase, managers, products, label and notes.
    manager = api.created("/v1/users", {"name": "Rita Manager", "email": "rita@desk.example", "is_staff": True,
                                        "role": "manager", "password": "correct horse battery"})["id"]
    pack = api.pack("office", world.paris, 500, "Paris annual", price_paid=4500, currency="EUR",
                    purchased_at="2026-01-31T09:00:00Z", expiry_months=1, priority=5,
                    product_codes=["sms_campaign", "sms_reminder", "sms_campaign"],
                    relationship_manager_id=manager, project_manager_id=manager,
                    status_label="to invoice", notes="Signed by Mr Dupont", source="purchase")
    assert pack["expires_at"].startswith("2026-02-28T09:00:00")  # end of the shorter month
    assert pack["expiry_months"] == 1
    assert pack["product_codes"] == ["sms_campaign", "sms_reminder"]
    assert (pack["relationship_manager_id"], pack["project_manager_id"]) == (manager, manager)
    assert (pack["status_label"], pack["notes"], pack["priority"]) == ("to invoice", "Signed by Mr Dupont", 5)

    # The workspace pool holds packs too.
    pool = api.pack("workspace", None, 1000, "Pool")
    assert pool["holder"] == {"kind": "workspace", "id": workspace.id}
    assert pool["customer_id"] is None
    assert api.balance("workspace", None) == {"available": 1000, "held": 0, "total": 1000}
    assert_ledger_clean(db, workspace.id)


def test_grant_is_idempotent_with_the_same_key_and_body(world, db, workspace):
    api = world.api
    body = {"holder": {"kind": "office", "id": world.paris}, "credit_type": "credits", "quantity": 25,
            "name": "Paris top-up", "price_paid": 2500, "currency": "EUR"}
    first = api.post("/v1/packs", body, key="grant-paris-topup", status=201)
    after_first = state(db, workspace.id)
    balance = api.balance("office", world.paris)
    assert balance["available"] == 95

    again = api.post("/v1/packs", body, key="grant-paris-topup", status=201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert state(db, workspace.id) == after_first
    assert api.balance("office", world.paris) == balance

    other = api.post("/v1/packs", {**body, "quantity": 26}, key="grant-paris-topup")
    problem(other, 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after_first
    assert api.balance("office", world.paris) == balance


def test_grant_with_a_body_idempotency_key_creates_one_pack(world, db, workspace):
    api = world.api
    body = {"holder": {"kind": "office", "id": world.paris}, "credit_type": "credits", "quantity": 10,
            "name": "CRM sync", "source": "crm_deal", "external_ref": "DEAL-9", "idempotency_key": "crm:DEAL-9"}
    first = api.created("/v1/packs", body)
    second = api.created("/v1/packs", body)  # no header: the body key alone dedupes
    assert second["id"] == first["id"]
    assert api.balance("office", world.paris)["available"] == 80


def test_a_grant_key_reused_for_another_request_is_a_conflict_naming_its_pack(world, db, workspace):
    """F11: the body's idempotency_key replays the same request only; reused with another request it never
    answers 201 with another pack."""
    api = world.api
    body = {"holder": {"kind": "office", "id": world.paris}, "credit_type": "credits", "quantity": 10,
            "name": "CRM sync", "idempotency_key": "crm:DEAL-10", "expires_at": "2026-09-30T00:00:00+02:00"}
    first = api.created("/v1/packs", body)
    # The same request (the same instant written in UTC) replays, even after the pack was edited.
    api.patch(f"/v1/packs/{first['id']}", {"notes": "called", "name": "renamed"}, status=200)
    assert api.created("/v1/packs", {**body, "expires_at": "2026-09-29T22:00:00Z"})["id"] == first["id"]
    before = state(db, workspace.id)
    for change in ({"quantity": 11}, {"holder": {"kind": "office", "id": world.berlin}}, {"name": "Other"},
                   {"credit_type": "sms", "holder": {"kind": "workspace"}}, {"source": "promotion"},
                   {"expires_at": None}, {"price_paid": 5, "currency": "EUR"}):
        conflict = problem(api.post("/v1/packs", {**body, **change}), 409, "idempotency_key_conflict")
        assert conflict["pack_id"] == first["id"] and first["id"] in conflict["detail"]
    problem(api.post("/v1/packs/batch", {"packs": [{**body, "quantity": 12}]}), 409, "idempotency_key_conflict")
    assert state(db, workspace.id) == before


def test_a_plain_grant_is_never_a_transfer_nor_an_sms_purchase(world, db, workspace):
    """F19/F1: source transfer comes from transfers only, and a grant cannot name an SMS purchase: minted
    credits never look bought (only the paid SMS purchase makes source=purchase SMS packs)."""
    api = world.api
    before = state(db, workspace.id)
    base = {"holder": {"kind": "office", "id": world.paris}, "credit_type": "credits", "quantity": 5, "name": "x"}
    problem(api.post("/v1/packs", {**base, "source": "transfer"}), 422, "source_reserved")
    problem(api.post("/v1/packs", {**base, "source": "purchase", "external_ref": "smsp_01m8v4cp5s0000000000"}),
            422, "source_reserved")
    problem(api.post("/v1/packs", {**base, "holder": {"kind": "workspace"}, "credit_type": "sms",
                                   "source": "purchase"}), 422, "source_reserved")
    assert state(db, workspace.id) == before
    # A purchase recorded with another reference stays a grant like any other.
    assert api.created("/v1/packs", {**base, "source": "purchase", "external_ref": "INV-77"})["source"] == "purchase"


def test_batch_grant_all_or_nothing_and_idempotent(world, db, workspace):
    api = world.api
    packs = [
        {"holder": {"kind": "user", "id": world.clara}, "credit_type": "credits", "quantity": 5,
         "name": "Clara bonus", "source": "promotion"},
        {"holder": {"kind": "workspace"}, "credit_type": "sms", "quantity": 300,  # a master's SMS grant
         "name": "Pool SMS", "price_paid": 900, "currency": "EUR"},
        {"holder": {"kind": "customer", "id": world.customer}, "credit_type": "credits", "quantity": 60,
         "name": "Acme framework", "expires_at": "2026-12-31T00:00:00Z"},
    ]
    before = state(db, workspace.id)
    bad = [*packs, {"holder": {"kind": "office", "id": world.paris}, "credit_type": "minutes", "quantity": 1,
                    "name": "Unknown type"}]
    problem(api.post("/v1/packs/batch", {"packs": bad}, key="batch-bad"), 422, "unknown_credit_type")
    assert state(db, workspace.id) == before  # the valid packs before it were not kept either
    problem(api.post("/v1/packs/batch", {"packs": [{**packs[0], "quantity": 0}]}), 422, "validation_error")
    problem(api.post("/v1/packs/batch", {"packs": []}), 422, "validation_error")
    assert state(db, workspace.id) == before

    r = api.post("/v1/packs/batch", {"packs": packs}, key="batch-1", status=201)
    data = r.json()["data"]
    assert [(p["holder"]["kind"], p["credit_type"], p["quantity"]) for p in data] == [
        ("user", "credits", 5), ("workspace", "sms", 300), ("customer", "credits", 60)]
    after = state(db, workspace.id)
    assert after["packs"] == before["packs"] + 3

    replay = api.post("/v1/packs/batch", {"packs": packs}, key="batch-1", status=201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == r.json()
    problem(api.post("/v1/packs/batch", {"packs": packs[:2]}, key="batch-1"), 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after
    assert api.balance("customer", world.customer) == {"available": 60, "held": 0, "total": 60}
    assert_ledger_clean(db, workspace.id)


@pytest.mark.parametrize("change, code", [
    ({"quantity": 0}, "validation_error"),
    ({"quantity": -5}, "validation_error"),
    ({"quantity": "ten"}, "validation_error"),
    ({"credit_type": "minutes"}, "unknown_credit_type"),
    ({"remaining": 1_000_000}, "unknown_field"),
    ({"status": "active"}, "unknown_field"),
    ({"workspace_id": "ws_someone_else"}, "unknown_field"),
    ({"ledger_account_id": "la_issuance"}, "unknown_field"),
    ({"starts_at": "2026-03-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z"}, "expiry_before_start"),
    ({"expires_at": "2026-01-15T12:00:00Z"}, "expiry_before_start"),  # starts now: expires the moment it starts
    ({"expires_at": "2026-06-30T00:00:00Z", "expiry_months": 6}, "expiry_ambiguous"),
    ({"price_paid": 500}, "currency_required"),
    ({"holder": {"kind": "office"}}, "holder_id_required"),
    ({"holder": {"kind": "planet", "id": "x"}}, "validation_error"),
    ({"holder": {"kind": "office", "id": "off_doesnotexist"}}, "not_found"),
])
def test_bad_grants_answer_a_stable_code_and_write_nothing(world, db, workspace, change, code):
    body = {"holder": {"kind": "office", "id": world.berlin}, "credit_type": "credits", "quantity": 10,
            "name": "Bad grant", **change}
    before = state(db, workspace.id)
    status = 404 if code == "not_found" else 422
    problem(world.api.post("/v1/packs", body, key=f"bad-{code}"), status, code)
    assert state(db, workspace.id) == before
    assert world.api.balance("office", world.berlin)["available"] == 120


def test_unknown_fields_on_every_pack_write(world, db, workspace):
    api, pid = world.api, world.packs["berlin_june"]
    before = state(db, workspace.id)
    for path, body in [
        (f"/v1/packs/{pid}", {"remaining": 5}),
        (f"/v1/packs/{pid}", {"status": "active"}),
        (f"/v1/packs/{pid}", {"ledger_account_id": "x"}),
        (f"/v1/packs/{pid}", {"holder_id": world.paris}),
        (f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "office", "id": world.paris}, "remaining": 1}),
        (f"/v1/packs/{pid}/void", {"reason": "x", "breakage": 0}),
    ]:
        r = api.patch(path, body) if path.endswith(pid) else api.post(path, body)
        problem(r, 422, "unknown_field")
    assert state(db, workspace.id) == before


# --- read and edit ----------------------------------------------------------------------------------

def test_get_and_edit_a_pack(world, db, workspace):
    api, pid = world.api, world.packs["berlin_june"]
    r = api.patch(f"/v1/packs/{pid}", {"status_label": "chased", "notes": "Call back in March"}, key="edit-1",
                  status=200).json()
    assert (r["status_label"], r["notes"], r["remaining"]) == ("chased", "Call back in March", 100)
    r = api.patch(f"/v1/packs/{pid}", {"name": "Berlin H1 (renamed)", "priority": 50}, status=200).json()
    assert (r["name"], r["priority"]) == ("Berlin H1 (renamed)", 50)
    assert api.get(f"/v1/packs/{pid}").json()["name"] == "Berlin H1 (renamed)"
    problem(api.get("/v1/packs/pack_doesnotexist", status=None), 404, "not_found")


# --- change holder ----------------------------------------------------------------------------------

def test_change_holder_moves_what_remains_to_a_new_pack_and_both_histories_show_it(world, db, workspace):
    """A change of holder is an out/in pair at its time: the pack keeps its holder and history, what remains
    goes to a new pack of the new holder (origin_pack_id: the old one). Nothing is re-attributed."""
    api, pid = world.api, world.packs["anna_june"]
    # Spend 40 on the project first: ben_vip 30, then anna_march 10.
    api.post("/v1/consumptions", {"context": {"kind": "project", "id": world.project}, "credit_type": "credits",
                                  "amount": 40}, status=201)
    assert api.balance("user", world.anna)["available"] == 80
    assert api.balance("user", world.clara)["available"] == 0

    r = api.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "user", "id": world.clara},
                                                    "reason": "Anna moved to Paris"}, key="move-goodwill")
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["id"] != pid and moved["origin_pack_id"] == pid
    assert (moved["holder"], moved["quantity"], moved["remaining"], moved["expires_at"]) == (
        {"kind": "user", "id": world.clara}, 40, 40, api.get(f"/v1/packs/{pid}").json()["expires_at"])
    old = api.get(f"/v1/packs/{pid}").json()
    assert (old["holder"], old["remaining"], old["status"]) == ({"kind": "user", "id": world.anna}, 0, "depleted")
    assert api.balance("user", world.anna)["available"] == 40
    assert api.balance("user", world.clara)["available"] == 40
    after = state(db, workspace.id)

    # Replay: same answer, one move only.
    replay = api.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "user", "id": world.clara},
                                                         "reason": "Anna moved to Paris"}, key="move-goodwill")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == moved
    problem(api.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "office", "id": world.paris}},
                     key="move-goodwill"), 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after

    # The project (Berlin, Anna, Ben) no longer burns what moved; Clara's own context does.
    elig = api.get("/v1/eligibility", {"context_kind": "project", "context_id": world.project,
                                       "credit_type": "credits"}).json()
    assert {pid, moved["id"]}.isdisjoint(e["pack"]["id"] for e in elig["eligible"])
    reasons = {m["pack"]["id"]: m["reasons"] for m in elig["not_eligible"]}
    assert (reasons[pid], reasons[moved["id"]]) == (["depleted"], ["holder_mismatch"])
    con = api.created("/v1/consumptions", {"context": {"kind": "user", "id": world.clara}, "credit_type": "credits",
                                           "amount": 15})
    assert con["lines"] == [{"pack_id": moved["id"], "amount": 15}]

    # user -> office: again a new pack
    office = api.post(f"/v1/packs/{moved['id']}/change-holder", {"holder": {"kind": "office", "id": world.paris}},
                      status=200).json()
    assert (office["holder"], office["remaining"], office["origin_pack_id"]) == (
        {"kind": "office", "id": world.paris}, 25, moved["id"])
    assert api.balance("office", world.paris)["available"] == 95
    assert api.balance("user", world.clara)["available"] == 0
    problem(api.post(f"/v1/packs/{office['id']}/change-holder", {"holder": {"kind": "office", "id": world.paris}}),
            422, "same_holder")
    problem(api.post(f"/v1/packs/{moved['id']}/change-holder", {"holder": {"kind": "user", "id": world.anna}}),
            409, "pack_not_active")  # nothing left in it

    history = api.get(f"/v1/packs/{pid}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in history] == [
        ("grant", 40, 40), ("transfer_out", -40, 0), ("holder_change", 0, 0)]
    change = history[2]["detail"]
    assert change["holder_id"] == {"before": world.anna, "after": world.clara}
    assert (change["reason"], change["to_pack_id"]) == ("Anna moved to Paris", moved["id"])
    moved_history = api.get(f"/v1/packs/{moved['id']}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in moved_history] == [
        ("transfer_in", 40, 40), ("consume", -15, 25), ("transfer_out", -25, 0), ("holder_change", 0, 0)]
    assert moved_history[3]["detail"]["holder_kind"] == {"before": "user", "after": "office"}
    assert_ledger_clean(db, workspace.id)


def test_change_holder_of_a_voided_pack_is_refused(world, db, workspace):
    api, pid = world.api, world.packs["anna_june"]
    api.post(f"/v1/packs/{pid}/void", {"reason": "Issued by mistake"}, status=200)
    before = state(db, workspace.id)
    problem(api.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "user", "id": world.ben}}),
            409, "pack_not_active")
    assert state(db, workspace.id) == before


# --- void -------------------------------------------------------------------------------------------

def test_void_sends_the_rest_to_breakage_and_the_holder_can_no_longer_consume_it(world, db, workspace):
    api = world.api
    clara_pack = api.pack("user", world.clara, 12, "Clara trial")["id"]
    api.post("/v1/consumptions", {"context": {"kind": "user", "id": world.clara}, "credit_type": "credits",
                                  "amount": 2}, status=201)
    r = api.post(f"/v1/packs/{clara_pack}/void", {"reason": "Trial cancelled"}, key="void-clara")
    assert r.status_code == 200, r.text
    voided = r.json()
    assert (voided["status"], voided["void_reason"], voided["remaining"], voided["balance"]) == (
        "voided", "Trial cancelled", 0, 0)
    after = state(db, workspace.id)

    replay = api.post(f"/v1/packs/{clara_pack}/void", {"reason": "Trial cancelled"}, key="void-clara")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == voided
    problem(api.post(f"/v1/packs/{clara_pack}/void", {"reason": "Other"}, key="void-clara"),
            422, "idempotency_key_reused")
    problem(api.post(f"/v1/packs/{clara_pack}/void", {"reason": "Again"}), 409, "pack_already_voided")
    problem(api.post(f"/v1/packs/{clara_pack}/void", {}), 422, "validation_error")
    assert state(db, workspace.id) == after

    assert api.balance("user", world.clara) == {"available": 0, "held": 0, "total": 0}
    problem(api.post("/v1/consumptions", {"context": {"kind": "user", "id": world.clara}, "credit_type": "credits",
                                          "amount": 1}), 409, "insufficient_credits")
    history = api.get(f"/v1/packs/{clara_pack}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in history] == [
        ("grant", 12, 12), ("consume", -2, 10), ("void", -10, 0), ("voided", 0, 0)]
    assert history[3]["detail"]["status"] == {"before": "active", "after": "voided"}
    assert state(db, workspace.id) == after
    assert_ledger_clean(db, workspace.id)


# --- permissions ------------------------------------------------------------------------------------

def test_a_member_without_manage_packs_cannot_change_holder_or_void(client, world, db, workspace):
    member, _ = member_api(client, world.api, permissions=["consume_credits"])
    pid = world.packs["berlin_june"]
    before = state(db, workspace.id)
    problem(member.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "office", "id": world.paris}},
                        key="m-move"), 403, "not_permitted")
    problem(member.post(f"/v1/packs/{pid}/void", {"reason": "No"}, key="m-void"), 403, "not_permitted")
    problem(member.patch(f"/v1/packs/{pid}", {"priority": 1}), 403, "not_permitted")
    problem(member.post("/v1/packs", {"holder": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                      "quantity": 1000, "name": "Free money"}), 403, "not_permitted")
    assert state(db, workspace.id) == before
    # The refusal replays under its key; it does not run later either.
    problem(member.post(f"/v1/packs/{pid}/void", {"reason": "No"}, key="m-void"), 403, "not_permitted")
    assert state(db, workspace.id) == before
    # Editing the label and notes is open to any member.
    assert member.patch(f"/v1/packs/{pid}", {"status_label": "called"}, status=200).json()["status_label"] == "called"

    manager_of_packs, _ = member_api(client, world.api, permissions=["manage_packs"])
    r = manager_of_packs.post(f"/v1/packs/{pid}/change-holder", {"holder": {"kind": "office", "id": world.paris}},
                              status=200)
    assert r.json()["holder"] == {"kind": "office", "id": world.paris}
    assert manager_of_packs.post(f"/v1/packs/{pid}/void", {"reason": "Refunded"}, status=200).json()["status"] == \
        "voided"
