"""Double spend and concurrent duplicate keys, over real HTTP against `creditdesk serve`.

- 100 concurrent requests, each for the holder's whole balance: exactly one succeeds, the others
  are refused with insufficient_credits, and the books show exactly one effect.
- 50 identical concurrent requests under one Idempotency-Key: exactly one effect; every other
  answer is a replay of the same object (Idempotent-Replayed: true) or 409 "still in progress".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.conftest import make_workspace
from tests.reliability import summary

ROUNDS = 10 if summary.LONG else 1
CT = "unit"


def _headers(ws, key: str | None = None) -> dict:
    return {**ws.headers, **({"Idempotency-Key": key} if key else {})}


def _setup(base_url: str, ws, *, packs: list[int]) -> tuple[dict, dict]:
    """A credit type, an office holding `packs` and a second office to transfer to."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert c.post("/v1/credit-types", json={"code": CT, "name": "Units"}, headers=ws.headers).status_code in (
            201, 409, 422)
        office = c.post("/v1/offices", json={"name": "Spender"}, headers=ws.headers).json()
        other = c.post("/v1/offices", json={"name": "Receiver"}, headers=ws.headers).json()
        for quantity in packs:
            r = c.post("/v1/packs", json={"holder": {"kind": "office", "id": office["id"]}, "credit_type": CT,
                                          "quantity": quantity, "name": "p"}, headers=ws.headers)
            assert r.status_code == 201, r.text
    return {"kind": "office", "id": office["id"]}, {"kind": "office", "id": other["id"]}


async def _fire(base_url: str, requests: list[tuple[str, str, dict | None, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        # Open every connection first, then send all requests at once.
        gate = asyncio.Event()

        async def one(method, path, body, headers):
            await gate.wait()
            return await client.request(method, path, json=body, headers=headers)

        tasks = [asyncio.create_task(one(*r)) for r in requests]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)


def _balance(base_url: str, ws, holder: dict) -> dict:
    r = httpx.get(base_url + "/v1/balances", params={"holder_kind": holder["kind"], "holder_id": holder["id"],
                                                     "credit_type": CT}, headers=ws.headers, timeout=30)
    return r.json()["data"][0]


def _code(r: httpx.Response) -> str | None:
    try:
        return r.json().get("code")
    except ValueError:
        return None


def _request(kind: str, holder: dict, other: dict, amount: int, ref: str) -> tuple[str, str, dict]:
    if kind == "consume":
        return "POST", "/v1/consumptions", {"context": holder, "credit_type": CT, "amount": amount,
                                            "reference": {"kind": "rel", "id": ref}}
    if kind == "hold":
        return "POST", "/v1/holds", {"context": holder, "credit_type": CT, "amount": amount,
                                     "reference": {"kind": "rel", "id": ref}}
    return "POST", "/v1/transfers", {"from": holder, "to": other, "credit_type": CT, "amount": amount, "memo": ref}


@pytest.mark.parametrize("kind", ["consume", "hold", "transfer", "mixed"])
def test_double_spend_exactly_one_of_100_succeeds(db, live_server, kind):
    started = time.monotonic()
    violations: list[str] = []
    attempted = acked = refused = 0
    for round_ in range(ROUNDS):
        ws = make_workspace(db, name=f"double spend {kind} {round_}")
        # The balance spread over three packs: the race is on the holder, not on one row.
        holder, other = _setup(live_server.base_url, ws, packs=[40, 35, 25])
        full = 100
        kinds = [kind] * 100 if kind != "mixed" else ["consume", "hold", "transfer", "consume"] * 25
        requests = []
        for i, k in enumerate(kinds):
            method, path, body = _request(k, holder, other, full, f"ds-{round_}-{i}")
            requests.append((method, path, body, _headers(ws, str(uuid.uuid4()))))
        responses = asyncio.run(_fire(live_server.base_url, requests))
        statuses = Counter((r.status_code, _code(r)) for r in responses)
        ok = [r for r in responses if r.status_code == 201]
        attempted += len(responses)
        acked += len(ok)
        refused += statuses[(409, "insufficient_credits")]
        if len(ok) != 1 or statuses[(409, "insufficient_credits")] != 99:
            violations.append(f"round {round_}: answers {dict(statuses)}")
        after = _balance(live_server.base_url, ws, holder)
        if after["available"] != 0:
            violations.append(f"round {round_}: {after['available']} still available after the winner took all")
        if len(ok) == 1:
            winner = kinds[responses.index(ok[0])]
            want = {"consume": (0, 0), "hold": (100, 100), "transfer": (0, 0)}[winner]
            if (after["total"], after["held"]) != want:
                violations.append(f"round {round_}: after one {winner}, total/held {after['total']}/{after['held']}")
            if winner == "transfer" and _balance(live_server.base_url, ws, other)["total"] != 100:
                violations.append(f"round {round_}: the receiver does not hold the 100 transferred")
    summary.add({"test": f"double spend ({kind})", "db": db.dialect, "attempted": attempted, "acknowledged": acked,
                 "refused": refused, "violations": len(violations), "seconds": round(time.monotonic() - started, 1)})
    assert violations == []


@pytest.mark.parametrize("kind", ["consume", "hold", "transfer", "grant"])
def test_concurrent_duplicate_key_has_exactly_one_effect(db, live_server, kind):
    started = time.monotonic()
    violations: list[str] = []
    attempted = acked = replayed = in_progress = 0
    for round_ in range(ROUNDS):
        ws = make_workspace(db, name=f"duplicate key {kind} {round_}")
        holder, other = _setup(live_server.base_url, ws, packs=[60, 40])
        key = str(uuid.uuid4())
        ref = f"dup-{round_}"
        if kind == "grant":
            method, path, body = "POST", "/v1/packs", {"holder": holder, "credit_type": CT, "quantity": 7,
                                                       "name": "dup", "external_ref": ref}
        else:
            method, path, body = _request(kind, holder, other, 7, ref)
        responses = asyncio.run(_fire(live_server.base_url, [(method, path, body, _headers(ws, key))] * 50))
        attempted += len(responses)
        first = [r for r in responses if r.status_code == 201 and r.headers.get("Idempotent-Replayed") != "true"]
        replays = [r for r in responses if r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true"]
        busy = [r for r in responses if r.status_code == 409 and _code(r) == "idempotency_request_in_progress"]
        others = [r for r in responses if r not in first and r not in replays and r not in busy]
        acked += len(first)
        replayed += len(replays)
        in_progress += len(busy)
        if len(first) != 1 or others:
            violations.append(f"round {round_}: {len(first)} first answers, {len(replays)} replays, "
                              f"{len(busy)} in progress, others {[(r.status_code, r.text[:200]) for r in others]}")
        ids = {r.json()["id"] for r in first + replays}
        if len(ids) != 1:
            violations.append(f"round {round_}: answers name {len(ids)} different objects: {sorted(ids)}")
        # The books show one effect.
        after = _balance(live_server.base_url, ws, holder)
        want = {"consume": (93, 0), "hold": (100, 7), "transfer": (93, 0), "grant": (107, 0)}[kind]
        if (after["total"], after["held"]) != want:
            violations.append(f"round {round_}: total/held {after['total']}/{after['held']}, expected {want}")
        if kind == "consume":
            listed = httpx.get(live_server.base_url + "/v1/consumptions", params={"reference_id": ref},
                               headers=ws.headers, timeout=30).json()["data"]
            if len(listed) != 1:
                violations.append(f"round {round_}: {len(listed)} consumptions with reference {ref}")
        # A later retry with the key replays the same object.
        r = httpx.request(method, live_server.base_url + path, json=body, headers=_headers(ws, key), timeout=30)
        if r.headers.get("Idempotent-Replayed") != "true" or r.json().get("id") not in ids:
            violations.append(f"round {round_}: a later retry answered {r.status_code} {r.text[:200]}")
    summary.add({"test": f"duplicate key ({kind})", "db": db.dialect, "attempted": attempted, "acknowledged": acked,
                 "replayed": replayed, "violations": len(violations),
                 "seconds": round(time.monotonic() - started, 1), "notes": f"{in_progress} answered 409 in progress"})
    assert violations == []
