"""The API as a first-time integrator meets it (issue 17): /openapi.json describes every parameter.

Every query, path and header parameter of every operation has a description that is a sentence saying
something the parameter's name does not: units, accepted values, what a bare date means, whether a bound
is inclusive. Every list with a `status` filter takes several statuses, repeated or comma-separated.
"""

from __future__ import annotations

import re
import tempfile

import pytest

from creditdesk.api.app import create_app
from creditdesk.db import Database

# Words that carry nothing: a description made of the name and these says nothing new.
FILLER = {"a", "an", "the", "of", "and", "or", "to", "in", "on", "for", "by", "is", "its", "it", "this", "that",
          "with", "as", "at", "be", "id", "ids"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def sentence_problem(name: str, description: str | None) -> str | None:
    """Why `description` is not a real sentence about parameter `name`, or None when it is one."""
    text = (description or "").strip()
    if not text:
        return "no description"
    if not (text[0].isupper() or text[0].isdigit() or text[0] in "`\"'"):
        return "does not start as a sentence"
    if not text.endswith("."):
        return "does not end with a full stop"
    words = _words(text)
    if len(words) < 4:
        return "too short to say anything"
    new = set(words) - set(_words(name.replace("_", " "))) - FILLER
    if len(new) < 2:
        return "only repeats the name"
    return None


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("pack_id", None, "no description"),
    ("pack_id", "", "no description"),
    ("order", "asc or desc.", "does not start as a sentence"),
    ("action", "E.g. customer.create", "does not end with a full stop"),
    ("credit_type", "Credit type code.", "too short to say anything"),
    ("holder_id", "The holder id of the holder.", "only repeats the name"),
    ("holder_id", "The holder's id, with holder_kind.", None),
])
def test_the_sentence_check_itself(name, text, problem):
    assert sentence_problem(name, text) == problem


def _parameters(spec: dict):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                yield method.upper(), path, parameter


def test_every_parameter_is_described_by_a_sentence(client):
    spec = client.get("/openapi.json").json()
    seen = list(_parameters(spec))
    assert len(seen) > 300, "the API's operations and their parameters"
    assert {p["in"] for _, _, p in seen} == {"query", "path", "header"}
    bad = [f"{method} {path} {p['in']} {p['name']}: {problem} ({p.get('description')!r})"
           for method, path, p in seen
           if (problem := sentence_problem(p["name"], p.get("description")))]
    assert not bad, f"{len(bad)} parameters without a real description:\n" + "\n".join(bad)


def test_dates_say_what_a_bare_date_means_and_whether_they_are_inclusive(client):
    spec = client.get("/openapi.json").json()
    for method, path, p in _parameters(spec):
        schema = p.get("schema", {})
        formats = {schema.get("format")} | {s.get("format") for s in schema.get("anyOf", [])}
        description = p.get("description") or ""
        if "date-time" in formats:
            assert "bare date" in description and "UTC" in description, (method, path, p["name"])
        if formats & {"date", "date-time"} and p["name"] != "period_on":
            assert re.search(r"inclusive|exclusive", description), (method, path, p["name"])


# --- status filters: repeated and comma-separated --------------------------------------------------

def _status_lists() -> list[tuple[str, list[str]]]:
    """(path, the statuses its description lists) of every GET with a `status` query parameter."""
    with tempfile.TemporaryDirectory() as folder:  # the document only: no query runs
        database = Database(f"sqlite:///{folder}/openapi.db")
        try:
            spec = create_app(db=database).openapi()
        finally:
            database.dispose()
    found = []
    for method, path, p in _parameters(spec):
        if method == "GET" and p["in"] == "query" and p["name"] == "status":
            listed = re.search(r"statuses: (.*?)\. ", p.get("description") or "")
            found.append((path, re.findall(r"`([a-z_]+)`", listed[1]) if listed else []))
    return found


STATUS_LISTS = _status_lists()


def test_the_status_lists_are_found():
    paths = {path for path, _ in STATUS_LISTS}
    assert {"/v1/packs", "/v1/holds", "/v1/invoices", "/v1/bills", "/v1/accounts", "/v1/subscriptions",
            "/v1/webhook-deliveries", "/v1/activities"} <= paths
    assert len(paths) >= 13


@pytest.mark.parametrize(("path", "allowed"), STATUS_LISTS, ids=[path for path, _ in STATUS_LISTS])
def test_status_is_taken_repeated_and_comma_separated(client, workspace, path, allowed):
    assert len(allowed) >= 2, f"{path}: the description lists its statuses in backticks"
    first, second = allowed[0], allowed[1]
    answers = {
        "repeated": client.get(path, params=[("status", first), ("status", second)], headers=workspace.headers),
        "comma-separated": client.get(path, params={"status": f"{first},{second}"}, headers=workspace.headers),
        "both": client.get(path, params=[("status", f"{first},{second}"), ("status", allowed[-1])],
                           headers=workspace.headers),
        "one": client.get(path, params={"status": first}, headers=workspace.headers),
    }
    for how, answer in answers.items():
        assert answer.status_code == 200, (how, answer.text)
        assert {row["status"] for row in answer.json()["data"]} <= set(allowed), how
    # The values are read one by one: an unknown one among known ones is refused, not ignored.
    refused = client.get(path, params={"status": f"{first},no_such_status"}, headers=workspace.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_status"
    assert refused.json()["allowed"] == allowed


# --- what the date descriptions say, checked on the audit log ---------------------------------------

def test_a_bare_date_is_the_start_of_the_day_utc_since_inclusive_until_exclusive(client, workspace, frozen_clock):
    made = client.post("/v1/customers", json={"name": "Dated Ltd"}, headers=workspace.headers)  # 2026-01-15 12:00Z
    assert made.status_code == 201, made.text

    def found(query: str) -> bool:
        answer = client.get(f"/v1/audit-events?object_id={made.json()['id']}&{query}", headers=workspace.headers)
        assert answer.status_code == 200, (query, answer.text)
        return bool(answer.json()["data"])

    assert found("since=2026-01-15") and not found("since=2026-01-16")
    assert not found("until=2026-01-15") and found("until=2026-01-16")
    assert found("since=2026-01-15T12:00:00Z") and not found("until=2026-01-15T12:00:00Z")
    assert found("since=2026-01-15T12:00:00") and not found("since=2026-01-15T12:00:01")  # no offset: UTC
    assert found("since=2026-01-15T13:00:00%2B01:00") and not found("since=2026-01-15T13:00:01%2B01:00")
    assert client.get("/v1/audit-events?since=2026-01-15T13:00:00+01:00",
                      headers=workspace.headers).status_code == 422  # the bare + became a space


def test_transfers_refuse_a_holder_id_without_its_kind(client, workspace):
    # It used to be ignored: the whole list came back for a filter that was given.
    answer = client.get("/v1/transfers", params={"holder_id": workspace.master_id}, headers=workspace.headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "holder_kind_required"
    both = client.get("/v1/transfers", params={"holder_kind": "user", "holder_id": workspace.master_id},
                      headers=workspace.headers)
    assert both.status_code == 200 and both.json()["data"] == []
