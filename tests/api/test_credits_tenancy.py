"""Credits never cross workspaces: with workspace A's key, every id of workspace B answers 404, changes
nothing on either side, and no list shows B's rows."""

from __future__ import annotations

import pytest

from tests.api.credits_world import build_world, problem, state


@pytest.fixture
def mine(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


@pytest.fixture
def theirs(client, other_workspace, frozen_clock):
    """Workspace B's world plus one of each credits object, made with B's own key."""
    world = build_world(client, other_workspace.headers)
    api = world.api
    api.created("/v1/credit-types", {"code": "hours", "name": "Hours (B only)", "scale": 2})
    con = api.created("/v1/consumptions", {"context": {"kind": "project", "id": world.project},
                                           "credit_type": "credits", "amount": 10,
                                           "reference": {"kind": "invoice", "id": "B-INV-1"}},
                      key="shared-key-1")
    pending = api.created("/v1/holds", {"context": {"kind": "project", "id": world.project},
                                        "credit_type": "credits", "amount": 10})
    captured = api.created("/v1/holds", {"context": {"kind": "project", "id": world.project},
                                         "credit_type": "credits", "amount": 10})
    api.post(f"/v1/holds/{captured['id']}/capture", status=200)
    xfer = api.created("/v1/transfers", {"from": {"kind": "office", "id": world.berlin},
                                         "to": {"kind": "office", "id": world.paris}, "credit_type": "credits",
                                         "amount": 5})
    world.objects = {"consumption": con["id"], "hold": pending["id"], "captured_hold": captured["id"],
                     "transfer": xfer["id"], "pack": world.packs["berlin_june"]}
    return world


@pytest.fixture
def snapshot(db, workspace, other_workspace, mine, theirs):
    def take():
        return state(db, workspace.id), state(db, other_workspace.id)
    return take


def test_reads_of_another_workspaces_objects_answer_404(mine, theirs, snapshot):
    api, o = mine.api, theirs.objects
    before = snapshot()
    for path in [
        f"/v1/packs/{o['pack']}",
        f"/v1/packs/{o['pack']}/history",
        f"/v1/projects/{theirs.project}",
        f"/v1/consumptions/{o['consumption']}",
        f"/v1/holds/{o['hold']}",
        f"/v1/holds/{o['captured_hold']}",
        f"/v1/transfers/{o['transfer']}",
        "/v1/credit-types/hours",
    ]:
        r = api.get(path, status=None)
        problem(r, 404, "not_found")
        assert "Berlin" not in r.text and "Website" not in r.text, path
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["office", "user", "customer"])
def test_balances_of_another_workspaces_holder_answer_404(mine, theirs, snapshot, kind):
    holder = {"office": theirs.berlin, "user": theirs.anna, "customer": theirs.customer}[kind]
    problem(mine.api.get("/v1/balances", {"holder_kind": kind, "holder_id": holder}, status=None), 404, "not_found")
    # The workspace pool is always the caller's own: naming B's workspace is not found either.
    problem(mine.api.get("/v1/balances", {"holder_kind": "workspace", "holder_id": theirs.api.get(
        "/v1/workspace").json()["id"]}, status=None), 404, "not_found")


@pytest.mark.parametrize("kind", ["project", "office", "user", "customer"])
def test_eligibility_for_another_workspaces_context_answers_404(mine, theirs, kind):
    context = {"project": theirs.project, "office": theirs.berlin, "user": theirs.anna,
               "customer": theirs.customer}[kind]
    r = mine.api.get("/v1/eligibility", {"context_kind": kind, "context_id": context, "credit_type": "credits"},
                     status=None)
    problem(r, 404, "not_found")
    assert theirs.packs["berlin_june"] not in r.text


def test_writes_on_another_workspaces_objects_answer_404_and_change_nothing(mine, theirs, snapshot):
    api, o = mine.api, theirs.objects
    before = snapshot()
    writes = [
        ("patch", f"/v1/packs/{o['pack']}", {"status_label": "stolen"}),
        ("post", f"/v1/packs/{o['pack']}/change-holder", {"holder": {"kind": "office", "id": mine.berlin}}),
        ("post", f"/v1/packs/{o['pack']}/void", {"reason": "stolen"}),
        ("patch", f"/v1/projects/{theirs.project}", {"name": "stolen"}),
        ("post", f"/v1/consumptions/{o['consumption']}/reverse", {"reason": "stolen"}),
        ("post", f"/v1/holds/{o['hold']}/capture", {"amount": 1}),
        ("post", f"/v1/holds/{o['hold']}/release", None),
        ("post", f"/v1/holds/{o['captured_hold']}/reverse", None),
        ("patch", "/v1/credit-types/hours", {"name": "stolen"}),
    ]
    for i, (method, path, body) in enumerate(writes):
        for key in (None, f"tenancy-{i}"):
            r = api.patch(path, body, key=key) if method == "patch" else api.post(path, body, key=key)
            problem(r, 404, "not_found")
            assert "stolen" not in r.text or "No " in r.text
    assert snapshot() == before
    # B still sees its objects unchanged and working.
    assert theirs.api.get(f"/v1/holds/{o['hold']}").json()["status"] == "pending"
    assert theirs.api.get(f"/v1/packs/{o['pack']}").json()["status_label"] == ""


def test_bodies_naming_another_workspaces_objects_answer_404_and_change_nothing(mine, theirs, snapshot):
    api = mine.api
    grant = {"credit_type": "credits", "quantity": 10, "name": "Cross grant"}
    consume = {"credit_type": "credits", "amount": 1}
    bodies = [
        ("/v1/packs", {**grant, "holder": {"kind": "office", "id": theirs.berlin}}),
        ("/v1/packs", {**grant, "holder": {"kind": "user", "id": theirs.anna}}),
        ("/v1/packs", {**grant, "holder": {"kind": "customer", "id": theirs.customer}}),
        ("/v1/packs", {**grant, "holder": {"kind": "office", "id": mine.berlin},
                       "relationship_manager_id": theirs.anna}),
        ("/v1/packs/batch", {"packs": [{**grant, "holder": {"kind": "office", "id": mine.berlin}},
                                       {**grant, "holder": {"kind": "office", "id": theirs.berlin}}]}),
        (f"/v1/packs/{mine.packs['berlin_june']}/change-holder", {"holder": {"kind": "office", "id": theirs.paris}}),
        (f"/v1/packs/{mine.packs['anna_june']}/change-holder", {"holder": {"kind": "user", "id": theirs.anna}}),
        ("/v1/projects", {"name": "Cross", "office_id": theirs.berlin}),
        ("/v1/projects", {"name": "Cross", "office_id": mine.berlin, "contact_ids": [mine.anna, theirs.anna]}),
        ("/v1/consumptions", {**consume, "context": {"kind": "project", "id": theirs.project}}),
        ("/v1/consumptions", {**consume, "context": {"kind": "user", "id": theirs.ben}}),
        ("/v1/consumptions", {**consume, "context": {"kind": "office", "id": theirs.berlin}}),
        ("/v1/consumptions", {**consume, "context": {"kind": "customer", "id": theirs.customer}}),
        ("/v1/holds", {**consume, "context": {"kind": "project", "id": theirs.project}}),
        ("/v1/transfers", {**consume, "from": {"kind": "office", "id": theirs.berlin},
                           "to": {"kind": "office", "id": mine.berlin}}),
        ("/v1/transfers", {**consume, "from": {"kind": "office", "id": mine.berlin},
                           "to": {"kind": "office", "id": theirs.berlin}}),
        ("/v1/transfers", {**consume, "from_pack_id": theirs.packs["berlin_june"],
                           "to": {"kind": "office", "id": mine.berlin}}),
    ]
    before = snapshot()
    for path, body in bodies:
        problem(api.post(path, body), 404, "not_found")
    for body in ({"office_id": theirs.berlin}, {"contact_ids": [theirs.anna]}):
        problem(api.patch(f"/v1/projects/{mine.project}", body), 404, "not_found")
    assert snapshot() == before


def test_lists_never_show_another_workspaces_rows(mine, theirs):
    api = mine.api
    mine_con = api.created("/v1/consumptions", {"context": {"kind": "project", "id": mine.project},
                                                "credit_type": "credits", "amount": 1})
    their_packs = {p["id"] for p in theirs.api.get("/v1/packs", {"limit": 500}).json()["data"]}
    assert len(their_packs) == 7  # six granted, one made by the transfer

    listed = {p["id"] for p in api.get("/v1/packs", {"limit": 500}).json()["data"]}
    assert listed == set(mine.packs.values())
    assert not listed & their_packs
    assert [p["id"] for p in api.get("/v1/projects").json()["data"]] == [mine.project]
    assert [c["id"] for c in api.get("/v1/consumptions").json()["data"]] == [mine_con["id"]]
    assert [t["code"] for t in api.get("/v1/credit-types").json()["data"]] == ["credits", "sms"]  # not B's hours
    # Filtering by B's ids finds nothing rather than B's rows.
    for params in ({"holder_id": theirs.berlin}, {"office_id": theirs.berlin}, {"customer_id": theirs.customer},
                   {"holder_kind": "office", "holder_id": theirs.paris}):
        assert api.get("/v1/packs", params).json()["data"] == []
    assert api.get("/v1/projects", {"office_id": theirs.berlin}).json()["data"] == []
    assert api.get("/v1/consumptions", {"context_id": theirs.project}).json()["data"] == []
    assert api.get("/v1/consumptions", {"reference_id": "B-INV-1"}).json()["data"] == []
    # Eligibility of A's project never lists B's packs, not even as near misses.
    elig = api.get("/v1/eligibility", {"context_kind": "project", "context_id": mine.project}).json()
    shown = {e["pack"]["id"] for e in elig["eligible"]} | {m["pack"]["id"] for m in elig["not_eligible"]}
    assert shown <= set(mine.packs.values())


def test_idempotency_keys_are_per_workspace(mine, theirs, db, workspace):
    # B used "shared-key-1" for a consumption; A's request with the same key runs as A's own.
    body = {"context": {"kind": "project", "id": mine.project}, "credit_type": "credits", "amount": 10,
            "reference": {"kind": "invoice", "id": "B-INV-1"}}
    r = mine.api.post("/v1/consumptions", body, key="shared-key-1", status=201)
    assert "Idempotent-Replayed" not in r.headers
    assert r.json()["id"] != theirs.objects["consumption"]
    assert r.json()["context"]["id"] == mine.project
