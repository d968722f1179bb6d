"""Schemathesis against the live server's /openapi.json, authenticated: no 5xx, no answer off the schema.

Every operation is fuzzed three ways: valid inputs with random ids, valid inputs aimed at real
objects of a throwaway workspace (so PATCH and POST .../capture reach the services), and invalid
inputs (negative mode, which must be refused with a 4xx, never a 5xx). Failures are collected per
operation and reported together. The fast form is bounded by examples per operation and a time
budget; CREDITDESK_RELIABILITY_LONG=1 fuzzes much longer.
"""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import make_workspace
from tests.reliability import summary

EXAMPLES = 100 if summary.LONG else 8
NEGATIVE_EXAMPLES = 50 if summary.LONG else 4
BUDGET_SECONDS = 1200 if summary.LONG else 45

# What "no response that violates the schema" means here: every status is documented and answers the documented
# body and media type (errors are problem+json, documented by api/problems.py); invalid input is never a
# 5xx and is refused with a 4xx.
POSITIVE_CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance,
                   response_headers_conformance]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection]


def _ok(r: httpx.Response) -> dict:
    assert r.status_code in (200, 201), f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r.json()


@pytest.fixture(scope="module")
def fuzz_world(db, live_server):
    """A throwaway workspace with one object of every kind, addressed by the path parameters' names."""
    ws = make_workspace(db, name="Schemathesis")
    with httpx.Client(base_url=live_server.base_url, headers=ws.headers, timeout=30) as c:
        _ok(c.post("/v1/credit-types", json={"code": "unit", "name": "Units"}))
        office = _ok(c.post("/v1/offices", json={"name": "Fuzz office"}))["id"]
        # Fuzzed PATCHes may deactivate a user or revoke a key: never the master's, which we use.
        user = _ok(c.post("/v1/users", json={"name": "Fuzz user", "is_staff": True, "email": "fuzz@example.com",
                                             "primary_office_id": office}))["id"]
        ctx = {"kind": "office", "id": office}
        ids = {
            "customer_id": _ok(c.post("/v1/customers", json={"name": "Fuzz customer"}))["id"],
            "office_id": office,
            "user_id": user,
            "team_id": _ok(c.post("/v1/teams", json={"name": "Fuzz team", "member_ids": [user]}))["id"],
            "key_id": _ok(c.post("/v1/api-keys", json={"name": "Fuzz key", "user_id": user}))["id"],
            "code": "unit",
            "pack_id": _ok(c.post("/v1/packs", json={"holder": ctx, "credit_type": "unit", "quantity": 10**6,
                                                     "name": "Fuzz pack"}))["id"],
            "project_id": _ok(c.post("/v1/projects", json={"name": "Fuzz project", "office_id": office}))["id"],
            "consumption_id": _ok(c.post("/v1/consumptions", json={"context": ctx, "credit_type": "unit",
                                                                   "amount": 1}))["id"],
            "hold_id": _ok(c.post("/v1/holds", json={"context": ctx, "credit_type": "unit", "amount": 5}))["id"],
            "transfer_id": _ok(c.post("/v1/transfers", json={
                "from": ctx, "to": {"kind": "user", "id": user}, "credit_type": "unit", "amount": 3}))["id"],
        }
        # The catalogue.
        _ok(c.post("/v1/tax-classes", json={"code": "gst", "name": "GST"}))
        ids.update({
            "type_id": _ok(c.post("/v1/product-types", json={"code": "t", "name": "T", "kind": "service"}))["id"],
            "family_id": _ok(c.post("/v1/product-families", json={"code": "f", "name": "F"}))["id"],
            "class_id": _ok(c.get("/v1/tax-classes"))["data"][0]["id"],
            "rate_id": _ok(c.post("/v1/tax-rates", json={"tax_class": "gst", "rate_bp": 1000,
                                                         "valid_from": "2020-01-01"}))["id"],
            "product": _ok(c.post("/v1/products", json={"code": "p", "name": "P", "kind": "service",
                                                        "unit": "each"}))["id"],
            "plan_id": _ok(c.post("/v1/price-plans", json={"code": "aud", "name": "AUD", "currency": "AUD"}))["id"],
        })
        # Billing: an account with a draft invoice (one line) and a payment left on the account.
        _ok(c.patch("/v1/billing/settings", json={"default_currency": "AUD"}))
        ids["account_id"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["customer_id"],
                                                              "name": "Fuzz account"}))["id"]
        draft = _ok(c.post("/v1/invoices", json={"account_id": ids["account_id"], "lines": [
            {"product": "p", "quantity": 2, "unit_price": 1000}]}))
        ids["invoice_id"], ids["line_id"] = draft["id"], draft["lines"][0]["id"]
        ids["payment_id"] = _ok(c.post("/v1/payments", json={"account_id": ids["account_id"], "amount": 100}))["id"]
        ids.update({
            "rating_id": _ok(c.post("/v1/credit-ratings", json={"code": "A", "name": "A",
                                                                "limits": {"AUD": 1000}}))["id"],
            "rule_id": _ok(c.post("/v1/override-rules", json={"name": "Fuzz rule", "events": ["purchase"]}))["id"],
        })
        # Group accounts: an account to stand as {member_id}.
        ids["member_id"] = _ok(c.post("/v1/accounts", json={"customer_id": ids["customer_id"],
                                                             "name": "Fuzz member"}))["id"]
    return {"ws": ws, "ids": ids}


def _fuzz(operation, *, mode, examples, checks, headers, base_url, path_parameters=None) -> tuple[int, str | None]:
    calls = 0
    found: list[str] = []

    # Authorization is fixed, not generated: a negative case that only "removed" it would be sent
    # with it anyway and then be blamed for being accepted.
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters, headers=headers))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        nonlocal calls
        calls += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as exc:  # a FailureGroup (a BaseExceptionGroup): keep the first, readable
            if not found:
                found.append(f"{type(exc).__name__}: {exc}")
            raise

    try:
        run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Unsatisfiable:
        return calls, None  # nothing to generate (e.g. no input at all to make invalid)
    except BaseException as exc:
        return calls, found[0] if found else f"{type(exc).__name__}: {exc}"
    return calls, None


@pytest.mark.timeout(1800)
def test_schemathesis_no_5xx_and_answers_match_the_schema(db, live_server, fuzz_world):
    started = time.monotonic()
    base = live_server.base_url
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_world['ws'].api_key}"}
    failures: dict[str, str] = {}
    calls = operations = 0
    out_of_time = False
    for result in schema.get_all_operations():
        operation = result.ok()
        if time.monotonic() - started > BUDGET_SECONDS:
            out_of_time = True
            break
        operations += 1
        label = f"{operation.method.upper()} {operation.path}"
        runs = [("random ids", GenerationMode.POSITIVE, EXAMPLES, POSITIVE_CHECKS, None),
                ("invalid input", GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, NEGATIVE_CHECKS, None)]
        names = [p.name for p in operation.path_parameters]
        if names:
            runs.append(("real ids", GenerationMode.POSITIVE, EXAMPLES, POSITIVE_CHECKS,
                         {n: fuzz_world["ids"][n] for n in names if n in fuzz_world["ids"]}))
        for how, mode, examples, checks, path_parameters in runs:
            n, failure = _fuzz(operation, mode=mode, examples=examples, checks=checks, headers=headers,
                               base_url=base, path_parameters=path_parameters)
            calls += n
            if failure:
                failures[f"{label} ({how})"] = failure
    # The key we fuzzed with still works: nothing revoked or deactivated the caller by accident.
    assert httpx.get(base + "/v1/workspace", headers=headers, timeout=30).status_code == 200
    summary.add({"test": "schemathesis", "db": db.dialect, "attempted": calls, "violations": len(failures),
                 "seconds": round(time.monotonic() - started, 1),
                 "notes": f"{operations} operations" + (" (time budget reached)" if out_of_time else "")})
    assert not failures, "\n\n".join(f"== {k}\n{v[:3000]}" for k, v in failures.items())


def test_openapi_documents_errors_as_they_are_sent(live_server):
    """422 and the other errors are problem+json; FastAPI's default HTTPValidationError is never sent."""
    doc = httpx.get(live_server.base_url + "/openapi.json", timeout=30).json()
    post = doc["paths"]["/v1/consumptions"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "413", "422"):
        assert list(post[status]["content"]) == ["application/problem+json"], status
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    r = httpx.post(live_server.base_url + "/v1/consumptions", json={"nope": 1}, timeout=30)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
