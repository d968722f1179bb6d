"""Read endpoints over HTTP: balances, the pack list and its filters, pack history, eligibility explained,
and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.api.credits_world import build_world, member_api, problem


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["data"]]


# --- balances ---------------------------------------------------------------------------------------

def test_balances_per_holder_and_credit_type(world, db, workspace):
    api = world.api
    # SMS credits go to staff who may send (governance); Sam loses send_sms afterwards.
    sam = api.created("/v1/users", {"name": "Sam", "email": "sam@desk.example", "is_staff": True,
                                    "permissions": ["send_sms"], "primary_office_id": world.berlin})["id"]
    api.pack("user", sam, 200, "Sam SMS", credit_type="sms")
    api.pack("user", sam, 7, "Sam credits")
    api.patch(f"/v1/users/{sam}", {"permissions": []}, status=200)
    hold = api.created("/v1/holds", {"context": {"kind": "user", "id": world.anna}, "credit_type": "credits",
                                     "amount": 35})
    assert hold["status"] == "pending"
    rows = api.get("/v1/balances", {"holder_kind": "user", "holder_id": world.anna}).json()["data"]
    by_type = {row["credit_type"]: row for row in rows}
    assert set(by_type) == {"credits"}
    credits = by_type["credits"]
    assert credits["object"] == "balance" and credits["holder"] == {"kind": "user", "id": world.anna}
    assert (credits["available"], credits["held"], credits["total"], credits["frozen"], credits["packs"]) == (
        55, 35, 90, 0, 2)
    # Sam no longer has send_sms: his SMS credits are frozen, not available; his other credits are not.
    by_type = {row["credit_type"]: row for row in api.get(
        "/v1/balances", {"holder_kind": "user", "holder_id": sam}).json()["data"]}
    assert (by_type["sms"]["available"], by_type["sms"]["frozen"], by_type["sms"]["total"]) == (0, 200, 200)
    assert (by_type["credits"]["available"], by_type["credits"]["frozen"]) == (7, 0)

    only_sms = api.get("/v1/balances", {"holder_kind": "user", "holder_id": sam, "credit_type": "sms"})
    assert [r["credit_type"] for r in only_sms.json()["data"]] == ["sms"]
    # A holder with nothing of a type gets zeros for it.
    assert api.balance("user", world.clara) == {"available": 0, "held": 0, "total": 0}
    assert api.balance("workspace", None) == {"available": 0, "held": 0, "total": 0}
    problem(api.get("/v1/balances", {"holder_kind": "user", "holder_id": "usr_nope"}, status=None), 404, "not_found")
    problem(api.get("/v1/balances", {"holder_kind": "user", "holder_id": world.anna, "credit_type": "minutes"},
                    status=None), 422, "unknown_credit_type")
    problem(api.get("/v1/balances", {"holder_kind": "planet"}, status=None), 422, "validation_error")


def test_expired_credits_are_not_available(world, db, workspace, frozen_clock):
    api = world.api
    frozen_clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    assert api.balance("user", world.anna) == {"available": 40, "held": 0, "total": 40}


def test_a_pack_past_its_expiry_reads_as_expired_before_the_job_runs(world, db, workspace, frozen_clock):
    """F19: the status is derived on read: an active pack whose expires_at has passed is expired in every
    view and filter, whether or not the expiry job has swept it."""
    api = world.api
    pid = api.pack("office", world.paris, 10, "Short", expires_at="2026-01-16T00:00:00Z")["id"]
    assert api.get(f"/v1/packs/{pid}").json()["status"] == "active"
    assert pid in ids(api.get("/v1/packs", {"status": "active"}))
    frozen_clock.set(datetime(2026, 1, 16, tzinfo=UTC))  # expires_at <= now: expired from this instant
    assert api.get(f"/v1/packs/{pid}").json()["status"] == "expired"
    assert pid not in ids(api.get("/v1/packs", {"status": "active", "limit": 500}))
    assert pid in ids(api.get("/v1/packs", {"status": "expired"}))
    assert pid in ids(api.get("/v1/packs", [("status", "active"), ("status", "expired")]))
    assert pid not in ids(api.get("/v1/packs", {"status": "depleted"}))
    listed = {row["id"]: row["status"] for row in api.get("/v1/packs", {"limit": 500}).json()["data"]}
    assert listed[pid] == "expired" and listed[world.packs["paris"]] == "active"
    elig = api.get("/v1/eligibility", {"context_kind": "office", "context_id": world.paris}).json()
    assert [m["pack"]["status"] for m in elig["not_eligible"] if m["pack"]["id"] == pid] == ["expired"]


# --- pack list --------------------------------------------------------------------------------------

def test_pack_list_filters_sort_and_cursor(world, db, workspace):
    api, p = world.api, world.packs
    sam = api.created("/v1/users", {"name": "Sam", "email": "sam@desk.example", "is_staff": True,
                                    "permissions": ["send_sms"], "primary_office_id": world.berlin})["id"]
    sms = api.pack("user", sam, 300, "Berlin SMS bundle", credit_type="sms",
                   status_label="awaiting payment", notes="PO 4711 from Acme")["id"]
    api.created("/v1/consumptions", {"context": {"kind": "user", "id": world.ben}, "credit_type": "credits",
                                     "amount": 30})  # ben_vip depleted
    api.post(f"/v1/packs/{p['paris']}/void", {"reason": "Refunded"}, status=200)

    everything = ids(api.get("/v1/packs"))
    assert everything == [*p.values(), sms]  # created order
    assert ids(api.get("/v1/packs", {"holder_kind": "user"})) == [p["ben_vip"], p["anna_march"], p["anna_june"],
                                                                  sms]
    assert ids(api.get("/v1/packs", {"holder_kind": "user", "holder_id": world.anna})) == [
        p["anna_march"], p["anna_june"]]
    # An office's packs include those of the users who belong to it.
    assert set(ids(api.get("/v1/packs", {"office_id": world.berlin}))) == {
        p["ben_vip"], p["anna_march"], p["anna_june"], p["berlin_june"], p["berlin_june_2"], sms}
    assert ids(api.get("/v1/packs", {"office_id": world.paris})) == [p["paris"]]
    assert len(ids(api.get("/v1/packs", {"customer_id": world.customer}))) == 7
    assert ids(api.get("/v1/packs", {"status": "depleted"})) == [p["ben_vip"]]
    assert ids(api.get("/v1/packs", {"status": "voided"})) == [p["paris"]]
    assert set(ids(api.get("/v1/packs", [("status", "voided"), ("status", "depleted")]))) == {p["ben_vip"],
                                                                                              p["paris"]}
    assert ids(api.get("/v1/packs", {"credit_type": "sms"})) == [sms]
    assert ids(api.get("/v1/packs", {"remaining_min": 40, "remaining_max": 60})) == [p["anna_march"],
                                                                                     p["anna_june"]]
    assert ids(api.get("/v1/packs", {"expires_from": "2026-03-01T00:00:00Z", "expires_to": "2026-04-01T00:00:00Z"})) \
        == [p["anna_march"]]
    assert ids(api.get("/v1/packs", {"q": "po 4711"})) == [sms]
    assert ids(api.get("/v1/packs", {"q": "deal-4711"})) == [p["berlin_june"]]
    assert ids(api.get("/v1/packs", {"status_label": "awaiting payment"})) == [sms]

    by_remaining = api.get("/v1/packs", {"sort": "remaining", "order": "desc", "credit_type": "credits"}).json()
    remaining = [row["remaining"] for row in by_remaining["data"]]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] == 100

    # The cursor walks every pack exactly once.
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "name"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/packs", params).json()
        seen += [row["name"] for row in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(everything)

    problem(api.get("/v1/packs", {"sort": "holder"}, status=None), 422, "validation_error")
    problem(api.get("/v1/packs", {"status": "lost"}, status=None), 422, "invalid_status")
    problem(api.get("/v1/packs", {"remaining_min": -1}, status=None), 422, "validation_error")
    problem(api.get("/v1/packs", {"cursor": "garbage"}, status=None), 400, "invalid_cursor")


# --- history ----------------------------------------------------------------------------------------

def test_pack_history_every_movement_with_running_balance_and_references(world, db, workspace):
    api, pid = world.api, world.packs["berlin_june"]
    api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                     "amount": 30, "reference": {"kind": "project", "id": world.project}})
    hold = api.created("/v1/holds", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                     "amount": 20, "reference": {"kind": "message", "id": "msg-1",
                                                                 "url": "https://sms.example/msg-1"}})
    api.post(f"/v1/holds/{hold['id']}/capture", {"amount": 15}, status=200)
    con = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin},
                                           "credit_type": "credits", "amount": 5,
                                           "reference": {"kind": "invoice", "id": "INV-7"}})
    api.post(f"/v1/consumptions/{con['id']}/reverse", {"reason": "Wrong office"}, status=200)
    api.patch(f"/v1/packs/{pid}", {"status_label": "renewal due"}, status=200)

    history = api.get(f"/v1/packs/{pid}/history").json()
    assert history["object"] == "list"
    rows = [(h["kind"], h["amount"], h["balance_after"], h["held_after"]) for h in history["data"]]
    assert rows == [
        ("grant", 100, 100, 0),
        ("consume", -30, 70, 0),
        ("hold", 0, 70, 20),
        ("capture", -15, 55, 0),  # the 5 not captured return with it: held drops by the whole 20
        ("consume", -5, 50, 0),
        ("reversal", 5, 55, 0),
        ("edited", 0, 55, 0),
    ]
    entries = history["data"]
    assert entries[1]["reference"] == {"kind": "project", "id": world.project, "url": f"/projects/{world.project}"}
    assert entries[2]["reference"]["url"] == "https://sms.example/msg-1"
    assert entries[2]["operation_id"] == hold["id"]
    assert entries[4]["reference"]["kind"] == "invoice" and entries[4]["operation_id"] == con["id"]
    assert entries[6]["detail"]["status_label"] == {"before": "", "after": "renewal due"}
    assert api.remaining(pid) == 55
    problem(api.get("/v1/packs/pack_nope/history", status=None), 404, "not_found")


def test_history_links_only_to_http_urls_even_for_rows_stored_before_the_check(world, db, workspace):
    """F2: reference_link is an allow-list at render time: a stored javascript: link (a row written before
    input was checked) is shown without its link; http(s) links and our own pages keep theirs."""
    from sqlalchemy import update

    from creditdesk.ledger.models import LedgerTransfer

    api, pid = world.api, world.packs["berlin_june"]
    ok = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                          "amount": 1, "reference": {"kind": "invoice", "id": "INV-1",
                                                                     "url": "https://billing.example/INV-1"}})
    bad = api.created("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                           "amount": 1, "reference": {"kind": "project", "id": world.project,
                                                                      "url": "https://x.example/"}})
    db.write(lambda s: s.execute(update(LedgerTransfer).where(LedgerTransfer.operation_id == bad["id"])
                                 .values(reference_url="javascript:fetch('/settings')")))
    by_operation = {h["operation_id"]: h["reference"] for h in api.get(f"/v1/packs/{pid}/history").json()["data"]}
    assert by_operation[ok["id"]]["url"] == "https://billing.example/INV-1"
    # The unsafe stored link is dropped; the project's own page is linked instead.
    assert by_operation[bad["id"]] == {"kind": "project", "id": world.project, "url": f"/projects/{world.project}"}


# --- eligibility ------------------------------------------------------------------------------------

def test_eligibility_lists_burn_order_and_every_near_miss_with_its_reason(world, db, workspace, frozen_clock):
    api, p = world.api, world.packs
    expired = api.pack("user", world.anna, 10, "Old promo", starts_at="2025-01-01T00:00:00Z",
                       expires_at="2026-01-01T00:00:00Z")["id"]
    later = api.pack("office", world.berlin, 10, "Starts in March", starts_at="2026-03-01T00:00:00Z")["id"]
    seo = api.pack("office", world.berlin, 10, "SEO only", product_codes=["seo_audit"])["id"]
    staff = [api.created("/v1/users", {"name": name, "email": f"{name.lower()}@desk.example", "is_staff": True,
                                       "permissions": ["send_sms"], "primary_office_id": world.berlin})["id"]
             for name in ("Sam", "Tom")]
    sms = api.pack("user", staff[0], 10, "Sam SMS", credit_type="sms")["id"]
    frozen_sms = api.pack("user", staff[1], 10, "Tom SMS", credit_type="sms")["id"]
    api.patch(f"/v1/users/{staff[1]}", {"permissions": []}, status=200)
    used = api.pack("user", world.ben, 5, "Used up", priority=0)["id"]
    api.created("/v1/consumptions", {"context": {"kind": "user", "id": world.ben}, "credit_type": "credits",
                                     "amount": 5})
    voided = api.pack("office", world.berlin, 10, "Voided")["id"]
    api.post(f"/v1/packs/{voided}/void", {"reason": "x"}, status=200)

    r = api.get("/v1/eligibility", {"context_kind": "project", "context_id": world.project,
                                    "credit_type": "credits", "product_code": "website_build"}).json()
    assert r["object"] == "eligibility"
    assert r["context"] == {"kind": "project", "id": world.project}
    assert (r["credit_type"], r["product_code"], r["available"]) == ("credits", "website_build", 240)
    assert [e["pack"]["id"] for e in r["eligible"]] == world.burn_order
    assert [e["burn_rank"] for e in r["eligible"]] == [1, 2, 3, 4, 5]
    reasons = {m["pack"]["id"]: m["reasons"] for m in r["not_eligible"]}
    assert reasons == {
        p["paris"]: ["holder_mismatch"],  # same customer, other office
        expired: ["expired"],
        later: ["not_started"],
        seo: ["product_not_covered"],
        # Staff of the customer's office, not project contacts; SMS credits pay for their holder's own use only.
        sms: ["holder_mismatch", "own_credits_only", "other_credit_type"],
        frozen_sms: ["holder_mismatch", "own_credits_only", "other_credit_type", "frozen"],
        used: ["depleted"],
        voided: ["voided"],
    }

    # Without a product code a product-limited pack is not covered; with it, it is first by priority rules.
    r = api.get("/v1/eligibility", {"context_kind": "office", "context_id": world.berlin, "credit_type": "credits",
                                    "product_code": "seo_audit"}).json()
    assert seo in [e["pack"]["id"] for e in r["eligible"]]
    # Consuming follows exactly the order shown.
    shown = [e["pack"]["id"] for e in api.get("/v1/eligibility", {
        "context_kind": "project", "context_id": world.project, "credit_type": "credits"}).json()["eligible"]]
    con = api.created("/v1/consumptions", {"context": {"kind": "project", "id": world.project},
                                           "credit_type": "credits", "amount": 240})
    assert [line["pack_id"] for line in con["lines"]] == shown

    problem(api.get("/v1/eligibility", {"context_kind": "project", "context_id": "prj_nope"}, status=None),
            404, "not_found")
    problem(api.get("/v1/eligibility", {"context_kind": "project", "context_id": world.project,
                                        "credit_type": "minutes"}, status=None), 422, "unknown_credit_type")


def test_reads_are_open_to_members(client, world, db, workspace):
    member, _ = member_api(client, world.api, permissions=[])
    assert len(ids(member.get("/v1/packs"))) == 6
    assert member.get("/v1/balances", {"holder_kind": "office", "holder_id": world.berlin}).json()["data"][0][
        "available"] == 120
    assert member.get(f"/v1/packs/{world.packs['berlin_june']}/history").json()["data"][0]["kind"] == "grant"
    assert [e["pack"]["id"] for e in member.get("/v1/eligibility", {
        "context_kind": "project", "context_id": world.project, "credit_type": "credits"}).json()["eligible"]] == \
        world.burn_order
    # ...but spending is not (no consume_credits).
    problem(member.post("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin},
                                             "credit_type": "credits", "amount": 1}), 403, "not_permitted")


# --- OpenAPI ----------------------------------------------------------------------------------------

CREDITS_PATHS = {
    "/v1/credit-types": {"get", "post"},
    "/v1/credit-types/{code}": {"get", "patch"},
    "/v1/packs": {"get", "post"},
    "/v1/packs/batch": {"post"},
    "/v1/packs/{pack_id}": {"get", "patch"},
    "/v1/packs/{pack_id}/history": {"get"},
    "/v1/packs/{pack_id}/change-holder": {"post"},
    "/v1/packs/{pack_id}/void": {"post"},
    "/v1/projects": {"get", "post"},
    "/v1/projects/{project_id}": {"get", "patch"},
    "/v1/consumptions": {"get", "post"},
    "/v1/consumptions/{consumption_id}": {"get"},
    "/v1/consumptions/{consumption_id}/reverse": {"post"},
    "/v1/holds": {"post"},
    "/v1/holds/{hold_id}": {"get"},
    "/v1/holds/{hold_id}/capture": {"post"},
    "/v1/holds/{hold_id}/release": {"post"},
    "/v1/holds/{hold_id}/reverse": {"post"},
    "/v1/transfers": {"post"},
    "/v1/transfers/{transfer_id}": {"get"},
    "/v1/balances": {"get"},
    "/v1/eligibility": {"get"},
}


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(doc, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_openapi_lists_every_credits_path_and_is_consistent(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"]
    paths = doc["paths"]
    for path, methods in CREDITS_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    # Every reference resolves.
    for ref in set(_refs(doc)):
        _resolve(doc, ref)
    op_ids = []
    for path, item in paths.items():
        if not path.startswith("/v1/") or path.split("/")[2] not in {
                "credit-types", "packs", "projects", "consumptions", "holds", "transfers", "balances", "eligibility"}:
            continue
        for method, op in item.items():
            op_ids.append(op["operationId"])
            assert op["responses"], (path, method)
            declared = {prm["name"] for prm in op.get("parameters", []) if prm["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, (path, method)
            if method in ("post", "patch"):
                headers = {prm["name"] for prm in op.get("parameters", []) if prm["in"] == "header"}
                assert "Idempotency-Key" in headers, (path, method)
            if method == "post" and not path.endswith(("/release",)):
                assert "requestBody" in op, (path, method)
    assert len(op_ids) == len(set(op_ids))
    # Response models are documented with their public names.
    transfer = _resolve(doc, paths["/v1/transfers/{transfer_id}"]["get"]["responses"]["200"]["content"]
                        ["application/json"]["schema"]["$ref"])
    assert "from" in transfer["properties"]
    pack_create = doc["components"]["schemas"]["PackCreate"]
    assert pack_create.get("additionalProperties") is False
    assert not {"remaining", "status", "workspace_id", "ledger_account_id"} & set(pack_create["properties"])


def test_eligibility_without_the_contexts_id_says_so(world, db, workspace):
    """Every context but the workspace names its object; a missing id is a 422 naming the field, not a 404 for
    the project ''."""
    for kind in ("project", "user", "office", "customer"):
        body = problem(world.api.get("/v1/eligibility", {"context_kind": kind}, status=None), 422,
                       "context_id_required")
        assert body["field"] == "context_id" and kind in body["detail"], body
    whole = world.api.get("/v1/eligibility", {"context_kind": "workspace", "credit_type": "credits"})
    assert whole.status_code == 200 and whole.json()["context"]["kind"] == "workspace"
