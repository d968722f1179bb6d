"""Integers in request bodies are whole numbers written without a point: lax parsing read 10.0 and "10.00" as 10,
so an integrator sending dollars where minor units are asked recorded 10 cents without an error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from creditdesk.credits import schemas as cs
from tests.api.credits_world import build_world, problem, state


@pytest.fixture
def world(client, workspace, frozen_clock):
    return build_world(client, workspace.headers)


@pytest.mark.parametrize("amount", [10.0, "10.00", "10.5", 10.5, "1e3", "1,000", " 10.0 "])
def test_amounts_with_a_point_are_refused_and_nothing_changes(world, db, workspace, amount):
    before = state(db, workspace.id)
    for path, body in (
            ("/v1/packs", {"holder": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                           "quantity": amount, "name": "Dollars by mistake"}),
            ("/v1/consumptions", {"context": {"kind": "office", "id": world.berlin}, "credit_type": "credits",
                                  "amount": amount})):
        body_out = problem(world.api.post(path, body, status=None), 422, "validation_error")
        assert any(e["type"] in ("int_from_float", "int_parsing") for e in body_out["errors"]), body_out
    assert state(db, workspace.id) == before


@pytest.mark.parametrize("amount", [1000, "1000", " 1000 "])
def test_whole_numbers_are_read_as_they_are(amount):
    data = cs.ConsumeRequest(context={"kind": "workspace"}, credit_type="credits", amount=amount)
    assert data.amount == 1000


def test_the_message_says_what_unit_is_asked():
    with pytest.raises(ValidationError) as caught:
        cs.ConsumeRequest(context={"kind": "workspace"}, credit_type="credits", amount="10.00")
    [error] = caught.value.errors()
    assert error["type"] == "int_from_float" and "smallest unit" in error["msg"]
