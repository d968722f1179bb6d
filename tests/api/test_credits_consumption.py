"""Projects and consumptions over HTTP: burn order, contexts, all-or-nothing, reversal, idempotency, permissions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.credits_world import assert_ledger_clean, build_world, member_api, problem, state


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


def consume_body(world, amount, **extra):
    return {"context": {"kind": "project", "id": world.project}, "credit_type": "credits", "amount": amount,
            **extra}


# --- projects ---------------------------------------------------------------------------------------

def test_projects_create_list_get_and_update(world, db, workspace):
    api = world.api
    project = api.get(f"/v1/projects/{world.project}").json()
    assert (project["object"], project["name"], project["office_id"], project["customer_id"], project["status"]) == (
        "project", "Website relaunch", world.berlin, world.customer, "open")
    assert sorted(project["contact_ids"]) == sorted([world.anna, world.ben])

    second = api.created("/v1/projects", {"name": "Paris shop", "office_id": world.paris,
                                          "contact_ids": [world.clara]}, key="prj-paris")
    replay = api.post("/v1/projects", {"name": "Paris shop", "office_id": world.paris, "contact_ids": [world.clara]},
                      key="prj-paris", status=201)
    assert replay.json() == second
    listed = api.get("/v1/projects").json()["data"]
    assert [p["id"] for p in listed] == [world.project, second["id"]]
    assert [p["id"] for p in api.get("/v1/projects", {"office_id": world.paris}).json()["data"]] == [second["id"]]
    assert [p["id"] for p in api.get("/v1/projects", {"q": "relaunch"}).json()["data"]] == [world.project]

    updated = api.patch(f"/v1/projects/{second['id']}", {"contact_ids": [], "status": "closed"}, status=200).json()
    assert (updated["contact_ids"], updated["status"]) == ([], "closed")

    before = state(db, workspace.id)
    problem(api.post("/v1/projects", {"name": "x", "office_id": "off_nope"}), 404, "not_found")
    problem(api.post("/v1/projects", {"name": "x", "office_id": world.berlin, "contact_ids": ["usr_nope"]}),
            404, "not_found")
    problem(api.post("/v1/projects", {"name": "x", "office_id": world.berlin, "workspace_id": "ws_x"}),
            422, "unknown_field")
    problem(api.patch(f"/v1/projects/{world.project}", {"customer_id": world.customer}), 422, "unknown_field")
    assert state(db, workspace.id) == before


# --- burn order -------------------------------------------------------------------------------------

def test_project_consumption_burns_in_burn_order_and_lists_each_pack(world, db, workspace):
    api, p = world.api, world.packs
    assert api.balance("office", world.berlin)["available"] == 120
    r = api.post("/v1/consumptions", consume_body(world, 150, product_code="website_build",
                                                  reference={"kind": "project", "id": world.project}),
                 key="con-150")
    assert r.status_code == 201, r.text
    con = r.json()
    assert con["id"].startswith("con_")
    assert (con["object"], con["amount_requested"], con["amount"], con["status"]) == ("consumption", 150, 150,
                                                                                      "posted")
    assert con["context"] == {"kind": "project", "id": world.project}
    # priority first, then soonest expiry, then free before paid, then oldest.
    assert con["lines"] == [
        {"pack_id": p["ben_vip"], "amount": 30},
        {"pack_id": p["anna_march"], "amount": 50},
        {"pack_id": p["anna_june"], "amount": 40},
        {"pack_id": p["berlin_june"], "amount": 30},
    ]
    assert [api.remaining(p[n]) for n in ("ben_vip", "anna_march", "anna_june", "berlin_june", "berlin_june_2",
                                          "paris")] == [0, 0, 0, 70, 20, 70]
    assert api.get(f"/v1/packs/{p['ben_vip']}").json()["status"] == "depleted"
    assert api.balance("user", world.anna) == {"available": 0, "held": 0, "total": 0}
    assert api.balance("office", world.berlin)["available"] == 90
    assert api.balance("office", world.paris)["available"] == 70  # not the project's office

    # The rest: berlin_june (older) before berlin_june_2.
    con2 = api.created("/v1/consumptions", consume_body(world, 80))
    assert con2["lines"] == [{"pack_id": p["berlin_june"], "amount": 70}, {"pack_id": p["berlin_june_2"],
                                                                         "amount": 10}]
    assert api.get(f"/v1/consumptions/{con['id']}").json() == con
    assert_ledger_clean(db, workspace.id)


def test_contexts_user_office_and_customer_burn_their_own_packs(world, db, workspace):
    api, p = world.api, world.packs
    cust = api.pack("customer", world.customer, 15, "Acme framework")["id"]
    user = api.created("/v1/consumptions", {"context": {"kind": "user", "id": world.anna}, "credit_type": "credits",
                                            "amount": 60})
    assert user["lines"] == [{"pack_id": p["anna_march"], "amount": 50}, {"pack_id": p["anna_june"], "amount": 10}]
    office = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.paris},
                                              "credit_type": "credits", "amount": 5})
    assert office["lines"] == [{"pack_id": p["paris"], "amount": 5}]
    # A customer context pays from the customer's packs and its offices' packs (not its contacts').
    customer = api.created("/v1/consumptions", {"context": {"kind": "customer", "id": world.customer},
                                                "credit_type": "credits", "amount": 200})
    burned = {line["pack_id"]: line["amount"] for line in customer["lines"]}
    assert set(burned) <= {cust, p["berlin_june"], p["berlin_june_2"], p["paris"]}
    assert sum(burned.values()) == 200
    assert api.balance("customer", world.customer)["available"] + api.balance("office", world.berlin)["available"] \
        + api.balance("office", world.paris)["available"] == 15 + 120 + 65 - 200
    assert api.balance("user", world.ben)["available"] == 30  # contacts untouched
    assert_ledger_clean(db, workspace.id)


def test_product_codes_limit_which_packs_pay(world, db, workspace):
    api = world.api
    seo = api.pack("office", world.berlin, 500, "SEO only", priority=1, product_codes=["seo_audit"])["id"]
    plain = api.created("/v1/consumptions", consume_body(world, 10, product_code="website_build"))
    assert seo not in [line["pack_id"] for line in plain["lines"]]
    none = api.created("/v1/consumptions", consume_body(world, 10))
    assert seo not in [line["pack_id"] for line in none["lines"]]
    covered = api.created("/v1/consumptions", consume_body(world, 10, product_code="seo_audit"))
    assert covered["lines"] == [{"pack_id": seo, "amount": 10}]


def test_consumption_is_all_or_nothing_unless_allow_partial(world, db, workspace):
    api = world.api
    before = state(db, workspace.id)
    r = api.post("/v1/consumptions", consume_body(world, 241))  # 240 available to the project
    body = problem(r, 409, "insufficient_credits")
    assert (body["available"], body["requested"]) == (240, 241)
    assert state(db, workspace.id) == before

    partial = api.created("/v1/consumptions", consume_body(world, 300, allow_partial=True))
    assert (partial["amount_requested"], partial["amount"], partial["allow_partial"]) == (300, 240, True)
    assert sum(line["amount"] for line in partial["lines"]) == 240
    assert [line["pack_id"] for line in partial["lines"]] == world.burn_order
    after = state(db, workspace.id)
    # Nothing left at all: even a partial consumption is refused.
    problem(api.post("/v1/consumptions", consume_body(world, 1, allow_partial=True)), 409, "insufficient_credits")
    assert state(db, workspace.id) == after
    assert api.balance("office", world.paris)["available"] == 70
    assert_ledger_clean(db, workspace.id)


def test_expired_and_not_started_packs_are_not_burned(world, db, workspace, frozen_clock):
    api, p = world.api, world.packs
    future = api.pack("user", world.ben, 100, "Starts in February", priority=0,
                      starts_at="2026-02-01T00:00:00Z")["id"]
    con = api.created("/v1/consumptions", consume_body(world, 31))
    assert future not in [line["pack_id"] for line in con["lines"]]
    frozen_clock.set(frozen_clock.now().replace(month=4, day=1))  # anna_march has expired (job not yet run)
    con = api.created("/v1/consumptions", consume_body(world, 5))
    assert con["lines"] == [{"pack_id": future, "amount": 5}]
    assert p["anna_march"] not in [line["pack_id"] for line in
                                   api.created("/v1/consumptions", consume_body(world, 135))["lines"]]


# --- idempotency ------------------------------------------------------------------------------------

def test_consume_replays_with_the_same_key_and_body(world, db, workspace):
    api = world.api
    body = consume_body(world, 45, reference={"kind": "invoice", "id": "INV-2026-001"})
    first = api.post("/v1/consumptions", body, key="con-inv-1", status=201)
    after = state(db, workspace.id)
    balances = (api.balance("office", world.berlin), api.balance("user", world.anna), api.balance("user", world.ben))

    for _ in range(2):
        again = api.post("/v1/consumptions", body, key="con-inv-1", status=201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
    assert state(db, workspace.id) == after
    assert (api.balance("office", world.berlin), api.balance("user", world.anna),
            api.balance("user", world.ben)) == balances

    problem(api.post("/v1/consumptions", {**body, "amount": 46}, key="con-inv-1"), 422, "idempotency_key_reused")
    problem(api.post("/v1/consumptions", {**body, "context": {"kind": "office", "id": world.berlin}},
                     key="con-inv-1"), 422, "idempotency_key_reused")
    assert state(db, workspace.id) == after
    listed = api.get("/v1/consumptions", {"reference_kind": "invoice", "reference_id": "INV-2026-001"}).json()
    assert [c["id"] for c in listed["data"]] == [first.json()["id"]]


def test_insufficient_credits_answer_replays_even_after_a_top_up(world, db, workspace):
    api = world.api
    body = consume_body(world, 500)
    first = api.post("/v1/consumptions", body, key="con-too-much")
    problem(first, 409, "insufficient_credits")
    api.pack("office", world.berlin, 1000, "Big top-up")
    before = state(db, workspace.id)
    replay = api.post("/v1/consumptions", body, key="con-too-much")
    problem(replay, 409, "insufficient_credits")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert state(db, workspace.id) == before
    # A new key runs it.
    assert api.post("/v1/consumptions", body, key="con-too-much-2", status=201).json()["amount"] == 500


# --- reverse ----------------------------------------------------------------------------------------

def test_reverse_returns_credits_to_the_packs_they_came_from(world, db, workspace):
    api, p = world.api, world.packs
    con = api.created("/v1/consumptions", consume_body(world, 100))
    assert api.balance("user", world.anna)["available"] == 20
    r = api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "Project cancelled"}, key="rev-1")
    assert r.status_code == 200, r.text
    rev = r.json()
    assert rev["status"] == "reversed" and rev["reversed_at"] is not None
    assert rev["lines"] == con["lines"]  # the original legs, still listed
    assert [api.remaining(p[n]) for n in ("ben_vip", "anna_march", "anna_june")] == [30, 50, 40]
    assert api.get(f"/v1/packs/{p['ben_vip']}").json()["status"] == "active"  # depleted -> active again
    after = state(db, workspace.id)

    replay = api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "Project cancelled"}, key="rev-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == rev
    problem(api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "other"}, key="rev-1"),
            422, "idempotency_key_reused")
    problem(api.post(f"/v1/consumptions/{con['id']}/reverse"), 409, "already_reversed")
    problem(api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "twice"}, key="rev-2"),
            409, "already_reversed")
    assert state(db, workspace.id) == after

    history = api.get(f"/v1/packs/{p['anna_march']}/history").json()["data"]
    assert [(h["kind"], h["amount"], h["balance_after"]) for h in history] == [
        ("grant", 50, 50), ("consume", -50, 0), ("reversal", 50, 50)]
    assert_ledger_clean(db, workspace.id)


def test_reversing_into_an_expired_pack_sends_the_credits_to_breakage(world, db, workspace, frozen_clock):
    api, p = world.api, world.packs
    con = api.created("/v1/consumptions", consume_body(world, 60))  # ben_vip 30, anna_march 30
    frozen_clock.advance(timedelta(days=90))  # anna_march expired on 2026-03-31
    api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "Refund"}, status=200)
    assert api.remaining(p["ben_vip"]) == 30
    # The 30 returned to anna_march went straight on to breakage; only the 20 it still had (which the
    # expiry job will take) remain on it, and none of it is spendable.
    assert api.remaining(p["anna_march"]) == 20
    assert api.balance("user", world.anna)["available"] == 40  # anna_june only
    history = api.get(f"/v1/packs/{p['anna_march']}/history").json()["data"]
    assert [(h["kind"], h["amount"]) for h in history][-2:] == [("reversal", 30), ("expire", -30)]
    assert_ledger_clean(db, workspace.id)


def test_consumptions_list_and_filters(world, db, workspace):
    api = world.api
    a = api.created("/v1/consumptions", consume_body(world, 1, reference={"kind": "invoice", "id": "A"}))
    b = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.paris}, "credit_type": "credits",
                                         "amount": 2})
    listed = api.get("/v1/consumptions").json()["data"]
    assert [c["id"] for c in listed] == [b["id"], a["id"]]  # newest first
    assert [c["id"] for c in api.get("/v1/consumptions", {"context_kind": "office"}).json()["data"]] == [b["id"]]
    assert [c["id"] for c in api.get("/v1/consumptions", {"context_id": world.project}).json()["data"]] == [a["id"]]
    page = api.get("/v1/consumptions", {"limit": 1}).json()
    assert [c["id"] for c in page["data"]] == [b["id"]]
    rest = api.get("/v1/consumptions", {"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [c["id"] for c in rest["data"]] == [a["id"]]
    problem(api.get("/v1/consumptions/con_nope", status=None), 404, "not_found")


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, status, code", [
    ({"amount": 0}, 422, "validation_error"),
    ({"amount": -10}, 422, "validation_error"),
    ({"amount": 1.5}, 422, "validation_error"),
    ({"credit_type": "minutes"}, 422, "unknown_credit_type"),
    ({"pack_id": "pack_x"}, 422, "unknown_field"),
    ({"workspace_id": "ws_x"}, 422, "unknown_field"),
    ({"context": {"kind": "project", "id": "prj_nope"}}, 404, "not_found"),
    ({"context": {"kind": "project"}}, 422, "context_id_required"),
    ({"context": {"kind": "galaxy", "id": "x"}}, 422, "validation_error"),
])
def test_bad_consumptions_answer_a_stable_code_and_write_nothing(world, db, workspace, change, status, code):
    before = state(db, workspace.id)
    problem(world.api.post("/v1/consumptions", {**consume_body(world, 10), **change}, key=f"bad-{code}"),
            status, code)
    assert state(db, workspace.id) == before


@pytest.mark.parametrize("url", [
    "javascript:fetch('/settings')", "JavaScript:alert(1)", "java\tscript:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "//evil.example/x", "/relative/path",
    "http:/no-host", "https://", "https://exa mple.com/"])
def test_a_reference_url_must_be_an_absolute_http_url(world, db, workspace, url):
    """F2 (input half): a reference link is rendered as a link in pack history; only http(s) is taken."""
    before = state(db, workspace.id)
    ref = {"kind": "Invoice", "id": "INV-2026-0043", "url": url}
    for path, body in (("/v1/consumptions", consume_body(world, 1, reference=ref)),
                       ("/v1/holds", {**consume_body(world, 1), "reference": ref})):
        refused = problem(world.api.post(path, body), 422, "invalid_url")
        assert refused["field"] == "reference.url"
    assert state(db, workspace.id) == before


def test_an_http_reference_url_is_kept(world, db, workspace):
    ref = {"kind": "invoice", "id": "INV-1", "url": "https://billing.example/invoices/INV-1?x=1"}
    con = world.api.created("/v1/consumptions", consume_body(world, 1, reference=ref))
    assert con["reference"] == ref
    history = world.api.get(f"/v1/packs/{con['lines'][0]['pack_id']}/history").json()["data"]
    assert history[-1]["reference"]["url"] == ref["url"]


def test_reverse_of_an_unknown_consumption_is_404(world, db, workspace):
    before = state(db, workspace.id)
    problem(world.api.post("/v1/consumptions/con_nope/reverse"), 404, "not_found")
    problem(world.api.post("/v1/consumptions/con_nope/reverse", {"reason": "x", "amount": 3}), 422, "unknown_field")
    assert state(db, workspace.id) == before


# --- permissions ------------------------------------------------------------------------------------

def test_consuming_needs_the_consume_credits_permission(client, world, db, workspace):
    without, _ = member_api(client, world.api, permissions=["send_sms"])
    before = state(db, workspace.id)
    problem(without.post("/v1/consumptions", consume_body(world, 10), key="m-con"), 403, "not_permitted")
    problem(without.post("/v1/projects", {"name": "x", "office_id": world.berlin}), 403, "not_permitted")
    assert state(db, workspace.id) == before

    with_perm, user = member_api(client, world.api, permissions=["consume_credits"])
    con = with_perm.post("/v1/consumptions", consume_body(world, 10), key="m-con-2", status=201).json()
    assert con["lines"] == [{"pack_id": world.packs["ben_vip"], "amount": 10}]
    # Reversing is for pack managers.
    after = state(db, workspace.id)
    problem(with_perm.post(f"/v1/consumptions/{con['id']}/reverse"), 403, "not_permitted")
    assert state(db, workspace.id) == after


def test_frozen_credits_cannot_be_consumed_until_the_holder_may_use_them(client, world, db, workspace):
    api = world.api
    # SMS credits are granted to a user who may send, and spent by that user only (governance).
    sam_api, sam = member_api(client, api, permissions=["consume_credits", "send_sms"])
    sms = api.pack("user", sam, 100, "Sam SMS", credit_type="sms")["id"]
    api.patch(f"/v1/users/{sam}", {"permissions": ["consume_credits"]}, status=200)
    body = {"context": {"kind": "user", "id": sam}, "credit_type": "sms", "amount": 10,
            "product_code": "sms_campaign"}
    before = state(db, workspace.id)
    refused = problem(sam_api.post("/v1/consumptions", body), 409, "credits_frozen")  # Sam lacks send_sms now
    assert refused["frozen"] == 100 and refused["available"] == 0
    assert state(db, workspace.id) == before
    assert api.get(f"/v1/packs/{sms}").json()["frozen"] is True
    api.patch(f"/v1/users/{sam}", {"permissions": ["consume_credits", "send_sms"]}, status=200)
    assert api.get(f"/v1/packs/{sms}").json()["frozen"] is False
    assert sam_api.created("/v1/consumptions", body)["lines"] == [{"pack_id": sms, "amount": 10}]
