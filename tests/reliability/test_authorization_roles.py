"""Authorization matrix inside ONE workspace: every write endpoint of the API with every role.

test_authorization.py pits workspaces against each other; the hostile probe's real breaks were all
inside one workspace, across roles (manage_users reaching a more privileged manager, idempotency keys
shared by callers, SMS rules bypassed). Here the callers are API keys of users of one workspace:

    master; manager with no permission; manager with every permission; manager with only manage_users;
    member with no permission; member with each single permission (send_sms twice: alone, and in a team
    with another send_sms user); the key of a deactivated master.

Every POST/PATCH/PUT/DELETE of /openapi.json has cases in CASES (a new write endpoint without one fails
`test_every_write_endpoint_is_in_the_matrix`). A case sends a valid body aimed at real objects of the
workspace that the caller does not own (another office's pack, another user's pack or key, a more
privileged user, a master...) on the non-SMS credit type `unit`, or, for /v1/sms/* and /v1/messages, on
SMS credits under their own rules (README "SMS credits"). The expected answer of each (case, caller)
comes from the product rules (README "Permissions in short", "Who manages whom", the SMS credits table,
seed 003) and the require_* functions of parties/credits/sms service.py:

- allowed: the documented 2xx, no `Idempotent-Replayed`, and an audit row by the caller's user;
- refused: the documented 4xx (403, or 404 where the code hides that the object exists, or 422 where the
  target itself is refused whoever asks), and NOTHING changed: every row of the workspace in every table
  is compared before and after (API key last_used_at aside; append-only audit and ledger by count), and
  a 401/403 leaves no idempotency row either;
- the deactivated master's key: 401 on every endpoint, nothing changed.

Every request carries the SAME Idempotency-Key for every caller of a case: keys are per caller, so no
caller may replay or poison another's answer (probe F5). SMS-governed credits through the generic
credits endpoints are in test_authorization_sms.py. A pair whose answer disagrees with the product rules
is a hole, marked xfail(strict) with its reason so that it shows until it is fixed.
"""

from __future__ import annotations

import functools
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from creditdesk import models
from creditdesk.audit import Actor
from creditdesk.sms import payments
from creditdesk.sms import schemas as sms_schemas
from creditdesk.sms import service as sms_service
from tests.conftest import make_workspace
from tests.reliability import summary

PERMISSIONS = ["send_sms", "manage_office_credits", "manage_packs", "consume_credits", "manage_users"]
BILLING = {"name": "Matrix buyer", "address": "1 Matrix Street", "email": "buyer@example.com"}

# name -> (role, permissions). Every one has office 1 as primary office, so the office managers' SMS scope
# covers them all; mem_sms_team shares team T with `teammate`, mem_sms is in no team; the master has no
# office.
CALLER_USERS = {
    "mem": ("member", []),
    "mem_sms": ("member", ["send_sms"]),
    "mem_sms_team": ("member", ["send_sms"]),
    "mem_office": ("member", ["manage_office_credits"]),
    "mem_packs": ("member", ["manage_packs"]),
    "mem_consume": ("member", ["consume_credits"]),
    "mem_users": ("member", ["manage_users"]),
    "mgr": ("manager", []),
    "mgr_users": ("manager", ["manage_users"]),
    "mgr_all": ("manager", PERMISSIONS),
}
# The order requests are sent in for each case: refused callers before and allowed ones after the master,
# so a key shared between callers would show as a replayed or poisoned answer.
CALLERS = ["mem", "mem_sms", "mem_sms_team", "mem_office", "mem_packs", "mem_consume", "mem_users", "mgr",
           "mgr_users", "master", "mgr_all", "deactivated"]
ACTIVE = frozenset(CALLERS) - {"deactivated"}

# Who may, by rule (the require_* functions and the README).
MASTER = frozenset({"master"})
MANAGERS = frozenset({"master", "mgr", "mgr_users", "mgr_all"})          # require_manager
USER_ADMINS = frozenset({"master", "mgr_users", "mgr_all"})               # manager + manage_users
PACKS = frozenset({"master", "mgr_all", "mem_packs"})                      # manage_packs
GRANT = MANAGERS | {"mem_packs"}                                           # require_grant
CONSUME = MANAGERS | {"mem_consume"}                                       # require_consume, projects
SMS_SENDERS = frozenset({"master", "mgr_all", "mem_sms", "mem_sms_team"})  # send_sms (masters hold all)
OFFICE_SMS = frozenset({"master", "mgr_all", "mem_office"})               # manage_office_credits, office 1


@dataclass(frozen=True)
class Case:
    """One request shape on one endpoint, sent by every caller.

    `target` names the value that fills the path's {parameter}; in `body`, a string "{name}" is replaced
    by that value and "{uniq}" inside a string by a fresh token. `fresh` makes, with the master's key, the
    objects one request acts on ("{pack}", "{user}"...); they are made again only after a request used
    them up (any 2xx). `restore` undoes an allowed change to a shared object. `holes`: caller -> why the
    code's answer breaks the product rule (the pair is then xfail, strict, until the code is fixed)."""

    id: str
    method: str
    path: str
    target: str | tuple | None = None
    body: Any = None
    allowed: frozenset = frozenset()
    refused: int = 403
    special: dict = field(default_factory=dict)
    fresh: Callable | None = None
    fresh_per_caller: bool = False
    restore: Callable | None = None
    holes: dict = field(default_factory=dict)
    audited: bool = True  # False: a POST that only reads (the spend decision) writes no audit row

    def expected(self, caller: str) -> int:
        if caller == "deactivated":
            return 401
        if caller in self.special:
            return self.special[caller]
        if caller in self.allowed:
            return 201 if self.method == "POST" and "{" not in self.path else 200
        return self.refused


# --- objects made for one request -------------------------------------------------------------------

def _grant(w, holder: dict, quantity: int = 10, name: str = "Fresh pack") -> str:
    return w.master.post("/v1/packs", {"holder": holder, "credit_type": "unit", "quantity": quantity,
                                       "name": name})["id"]


def fresh_office2_pack(w, caller):
    return {"pack": _grant(w, {"kind": "office", "id": w.ids["o2"]}, name="Office 2 fresh pack")}


def fresh_user_pack(w, caller):
    return {"pack": _grant(w, {"kind": "user", "id": w.ids["plain"]}, name="Plain's fresh pack")}


def fresh_consumption(w, caller):
    return {"consumption": w.master.post("/v1/consumptions", {
        "context": {"kind": "office", "id": w.ids["o1"]}, "credit_type": "unit", "amount": 1})["id"]}


def fresh_hold(w, caller):
    return {"hold": w.master.post("/v1/holds", {"context": {"kind": "office", "id": w.ids["o1"]},
                                                "credit_type": "unit", "amount": 1,
                                                "timeout_seconds": 86400})["id"]}


def fresh_captured_hold(w, caller):
    hold = fresh_hold(w, caller)["hold"]
    w.master.post(f"/v1/holds/{hold}/capture", {})
    return {"hold": hold}


def fresh_user(role: str, permissions: list[str], office: str = "o1"):
    def make(w, caller):
        return {"user": w.master.post("/v1/users", {
            "name": f"Target {role} {'+'.join(permissions) or 'none'}", "is_staff": True, "role": role,
            "permissions": permissions, "email": f"target-{secrets.token_hex(5)}@example.com",
            "primary_office_id": w.ids[office]})["id"]}
    return make


def fresh_key(owner: str):
    def make(w, caller):
        if owner == "self" and caller == "deactivated":
            return {"key": w.key_ids["deactivated"]}  # no key can be made for a deactivated user
        user = w.user_ids[caller] if owner == "self" else w.ids[owner]
        return {"key": w.master.post("/v1/api-keys", {"name": f"fresh key of {owner}", "user_id": user})["id"]}
    return make


class _PendingPayment:
    """A payment method that leaves purchases pending (a card gateway's callback comes later). The
    server offers none, so pending purchases are made in-process; the server then settles them."""

    code, label = "matrix_pending", "Confirmed later"

    def charge(self, purchase, *, idempotency_key):
        return payments.PaymentResult(status="pending", reference=f"bank:{purchase.id}")


def fresh_pending_purchase(w, caller):
    payments.register_payment_method(_PendingPayment())
    try:
        actor = Actor(workspace_id=w.ws.id, user_id=w.ws.master_id, role="master")
        data = sms_schemas.PurchaseCreate.model_validate({
            "for": {"kind": "user", "id": w.ids["teammate"]}, "quantity": 5, "billing": BILLING,
            "payment_method": _PendingPayment.code})
        purchase_id = w.db.write(lambda session: sms_service.create_purchase(session, data, actor=actor).id)
    finally:
        payments.unregister_payment_method(_PendingPayment.code)
    return {"purchase": purchase_id}


def restore_self(*fields: str):
    """Put the caller's own fields back as they were (the master does it)."""
    def restore(w, caller, values):
        _, perms = CALLER_USERS.get(caller, ("master", []))
        original = {"permissions": perms, "additional_office_ids": []}
        w.master.patch(f"/v1/users/{w.user_ids[caller]}", {f: original[f] for f in fields})
    return restore


def _other_role(v) -> dict:
    return {"role": "manager" if v["self_role"] == "member" else "member"}


OFFICE1 = {"kind": "office", "id": "{o1}"}
OFFICE2 = {"kind": "office", "id": "{o2}"}
SELF = {"kind": "user", "id": "{self}"}
PLAIN = {"kind": "user", "id": "{plain}"}


def _sms_transfer(src: dict, dst: dict) -> dict:
    return {"from": src, "to": dst, "quantity": 1, "agree_to_conditions": True}


def _user(name: str) -> dict:
    return {"kind": "user", "id": "{" + name + "}"}


POOL = {"kind": "workspace"}


def _user_cases(label: str, make, allowed: frozenset, bodies: dict) -> list[Case]:
    return [Case(f"user.update.{label}.{what}", "PATCH", "/v1/users/{user_id}", "user", body, allowed,
                 fresh=make) for what, body in bodies.items()]


CASES: list[Case] = [
    # --- workspace, customers, offices, teams: masters; managers for customers, offices, teams ---
    Case("workspace.update", "PATCH", "/v1/workspace", body={"name": "{ws_name}"}, allowed=MASTER),
    Case("customer.create", "POST", "/v1/customers", body={"name": "Matrix customer {uniq}"}, allowed=MANAGERS),
    Case("customer.update", "PATCH", "/v1/customers/{customer_id}", "customer", {"name": "Matrix customer"},
         MANAGERS),
    Case("office.create", "POST", "/v1/offices", body={"name": "Matrix office {uniq}"}, allowed=MANAGERS),
    Case("office.update", "PATCH", "/v1/offices/{office_id}", "o2", {"name": "Office 2"}, MANAGERS),
    Case("team.create", "POST", "/v1/teams", body={"name": "Matrix team {uniq}"}, allowed=MANAGERS),
    Case("team.update", "PATCH", "/v1/teams/{team_id}", "team2", {"name": "Team 2"}, MANAGERS),

    # --- users: masters anyone; managers with manage_users only members holding nothing more, granting
    # only what they hold; members only their own name, email and password; nobody their own role ---
    Case("user.create.member", "POST", "/v1/users", body={
        "name": "New member", "is_staff": True, "email": "new-{uniq}@example.com"}, allowed=USER_ADMINS),
    Case("user.create.manager", "POST", "/v1/users", body={
        "name": "New manager", "is_staff": True, "role": "manager", "email": "new-{uniq}@example.com"},
         allowed=USER_ADMINS),
    Case("user.create.with_consume_credits", "POST", "/v1/users", body={
        "name": "New consumer", "is_staff": True, "permissions": ["consume_credits"],
        "email": "new-{uniq}@example.com"}, allowed=MASTER | {"mgr_all"}),
    Case("user.create.master", "POST", "/v1/users", body={
        "name": "New master", "is_staff": True, "role": "master", "email": "new-{uniq}@example.com"},
         allowed=MASTER),
    *_user_cases("member", fresh_user("member", []), USER_ADMINS, {
        "name": {"name": "Renamed member"}, "email": {"email": "taken-{uniq}@example.com"},
        "password": {"password": "taken-over-123"}, "deactivate": {"is_active": False},
        "offices": {"additional_office_ids": ["{o1}"]},
        "role_manager": {"role": "manager"}, "grant_manage_users": {"permissions": ["manage_users"]}}),
    # A manager manages users of their own offices only (every caller's office is office 1).
    *_user_cases("member", fresh_user("member", []), MASTER, {
        "offices_elsewhere": {"primary_office_id": "{o2}", "additional_office_ids": ["{o1}"]}}),
    *_user_cases("member_of_office_2", fresh_user("member", [], "o2"), MASTER, {"name": {"name": "Renamed"}}),
    *_user_cases("member", fresh_user("member", []), MASTER | {"mgr_all"}, {
        "grant_consume_credits": {"permissions": ["consume_credits"]}}),
    *_user_cases("member_with_manage_packs", fresh_user("member", ["manage_packs"]), MASTER | {"mgr_all"}, {
        "name": {"name": "Renamed"}, "email": {"email": "taken-{uniq}@example.com"},
        "password": {"password": "taken-over-123"}, "deactivate": {"is_active": False},
        "remove_permissions": {"permissions": []}}),
    *_user_cases("manager", fresh_user("manager", []), MASTER, {
        "name": {"name": "Renamed"}, "email": {"email": "taken-{uniq}@example.com"},
        "password": {"password": "taken-over-123"}, "deactivate": {"is_active": False},
        "permissions": {"permissions": []}}),
    *_user_cases("manager_with_every_permission", fresh_user("manager", PERMISSIONS), MASTER, {
        "email": {"email": "taken-{uniq}@example.com"}, "password": {"password": "taken-over-123"},
        "deactivate": {"is_active": False}, "permissions": {"permissions": ["manage_users"]}}),
    *_user_cases("master", fresh_user("master", []), MASTER, {
        "name": {"name": "Renamed"}, "email": {"email": "taken-{uniq}@example.com"},
        "password": {"password": "taken-over-123"}, "deactivate": {"is_active": False},
        "demote": {"role": "member"}, "permissions": {"permissions": ["send_sms"]}}),
    Case("user.update.self.name", "PATCH", "/v1/users/{user_id}", "self", {"name": "{self_name}"}, ACTIVE),
    Case("user.update.self.role", "PATCH", "/v1/users/{user_id}", "self", _other_role),
    Case("user.update.self.every_permission", "PATCH", "/v1/users/{user_id}", "self",
         {"permissions": PERMISSIONS}, MASTER | {"mgr_all"}, restore=restore_self("permissions")),
    # Offices decide whose credits an office SMS manager reaches: only a master changes anyone's own reach.
    Case("user.update.self.offices", "PATCH", "/v1/users/{user_id}", "self", {"additional_office_ids": ["{o2}"]},
         MASTER, restore=restore_self("additional_office_ids")),
    # The login itself needs the current password: the master has one (422 without it), the others none.
    Case("user.update.self.email_without_current_password", "PATCH", "/v1/users/{user_id}", "self",
         {"email": "self-{uniq}@example.com"}, special={"master": 422}),
    Case("user.update.self.password_with_current_password", "PATCH", "/v1/users/{user_id}", "self",
         {"password": "correct horse battery", "current_password": "correct horse battery"}, MASTER),

    # --- API keys: anyone for themselves; only masters for someone else; other users' keys do not exist
    # for non-masters (404) ---
    Case("api_key.create.self", "POST", "/v1/api-keys", body={"name": "own key"}, allowed=ACTIVE),
    Case("api_key.create.for_a_member", "POST", "/v1/api-keys", body={"name": "x", "user_id": "{plain}"},
         allowed=MASTER),
    Case("api_key.create.for_the_master", "POST", "/v1/api-keys", body={"name": "x", "user_id": "{master}"},
         allowed=MASTER),
    Case("api_key.update.own", "PATCH", "/v1/api-keys/{key_id}", "own_key", {"name": "{own_key_name}"}, ACTIVE),
    Case("api_key.update.a_members", "PATCH", "/v1/api-keys/{key_id}", "key", {"name": "renamed"}, MASTER,
         refused=404, fresh=fresh_key("plain")),
    Case("api_key.update.the_masters", "PATCH", "/v1/api-keys/{key_id}", "key", {"name": "renamed"}, MASTER,
         refused=404, fresh=fresh_key("master")),
    Case("api_key.revoke.own", "DELETE", "/v1/api-keys/{key_id}", "key", None, ACTIVE, fresh=fresh_key("self"),
         fresh_per_caller=True),
    Case("api_key.revoke.a_members", "DELETE", "/v1/api-keys/{key_id}", "key", None, MASTER, refused=404,
         fresh=fresh_key("plain")),
    Case("api_key.revoke.the_masters", "DELETE", "/v1/api-keys/{key_id}", "key", None, MASTER, refused=404,
         fresh=fresh_key("master")),

    # --- credit types: masters ---
    Case("credit_type.create", "POST", "/v1/credit-types", body={"code": "ct_{uniq}", "name": "New type"},
         allowed=MASTER),
    Case("credit_type.update", "PATCH", "/v1/credit-types/{code}", "unit", {"name": "Units"}, MASTER),

    # --- packs (unit): grant by masters, managers or manage_packs; every change but the status label and
    # notes needs manage_packs, whoever holds the pack ---
    Case("pack.grant.office2", "POST", "/v1/packs", body={
        "holder": OFFICE2, "credit_type": "unit", "quantity": 5, "name": "Granted"}, allowed=GRANT),
    Case("pack.grant.self", "POST", "/v1/packs", body={
        "holder": SELF, "credit_type": "unit", "quantity": 5, "name": "Granted to myself"}, allowed=GRANT),
    Case("pack.grant.batch", "POST", "/v1/packs/batch", body={"packs": [
        {"holder": OFFICE2, "credit_type": "unit", "quantity": 5, "name": "Batch 1"},
        {"holder": PLAIN, "credit_type": "unit", "quantity": 5, "name": "Batch 2"}]}, allowed=GRANT),
    # Status label and notes are the credit-drive fields anyone may edit (seed 000; update_pack).
    Case("pack.update.label_and_notes", "PATCH", "/v1/packs/{pack_id}", "pack_o2",
         {"status_label": "Drive 2026", "notes": "Called the client"}, ACTIVE),
    Case("pack.update.name_priority_managers", "PATCH", "/v1/packs/{pack_id}", "pack_o2",
         {"name": "Office 2 pack", "priority": 100, "relationship_manager_id": "{plain}"}, PACKS),
    Case("pack.change_holder.office2_to_office1", "POST", "/v1/packs/{pack_id}/change-holder", "pack",
         {"holder": OFFICE1}, PACKS, fresh=fresh_office2_pack),
    Case("pack.change_holder.a_users_to_self", "POST", "/v1/packs/{pack_id}/change-holder", "pack",
         {"holder": SELF}, PACKS, fresh=fresh_user_pack),
    Case("pack.void.office2", "POST", "/v1/packs/{pack_id}/void", "pack", {"reason": "matrix"}, PACKS,
         fresh=fresh_office2_pack),
    Case("pack.void.a_users", "POST", "/v1/packs/{pack_id}/void", "pack", {"reason": "matrix"}, PACKS,
         fresh=fresh_user_pack),

    # --- projects, consumptions, holds: masters, managers or consume_credits; reversals need manage_packs.
    # Contexts are not scoped by office or owner for credit types without a required permission ---
    Case("project.create", "POST", "/v1/projects", body={"name": "Matrix project", "office_id": "{o1}"},
         allowed=CONSUME),
    Case("project.update", "PATCH", "/v1/projects/{project_id}", "project", {"name": "Project 1"}, CONSUME),
    Case("consumption.office1", "POST", "/v1/consumptions", body={
        "context": OFFICE1, "credit_type": "unit", "amount": 1}, allowed=CONSUME),
    Case("consumption.a_users_credits", "POST", "/v1/consumptions", body={
        "context": PLAIN, "credit_type": "unit", "amount": 1}, allowed=CONSUME),
    Case("consumption.workspace_pool", "POST", "/v1/consumptions", body={
        "context": {"kind": "workspace"}, "credit_type": "unit", "amount": 1}, allowed=CONSUME),
    Case("consumption.reverse", "POST", "/v1/consumptions/{consumption_id}/reverse", "consumption",
         {"reason": "matrix"}, PACKS, fresh=fresh_consumption),
    Case("hold.create", "POST", "/v1/holds", body={
        "context": OFFICE1, "credit_type": "unit", "amount": 1, "timeout_seconds": 86400}, allowed=CONSUME),
    Case("hold.capture", "POST", "/v1/holds/{hold_id}/capture", "hold", {}, CONSUME, fresh=fresh_hold),
    Case("hold.release", "POST", "/v1/holds/{hold_id}/release", "hold", None, CONSUME, fresh=fresh_hold),
    Case("hold.reverse", "POST", "/v1/holds/{hold_id}/reverse", "hold", {"reason": "matrix"}, PACKS,
         fresh=fresh_captured_hold),

    # --- transfers (unit): manage_packs, from any holder ---
    Case("transfer.office2_to_office1", "POST", "/v1/transfers", body={
        "from": OFFICE2, "to": OFFICE1, "credit_type": "unit", "amount": 1}, allowed=PACKS),
    Case("transfer.a_users_pack_to_self", "POST", "/v1/transfers", body={
        "from_pack_id": "{pack_plain}", "to": SELF, "credit_type": "unit", "amount": 1}, allowed=PACKS),

    # --- SMS (README "SMS credits", seed 003): masters the pool and everyone; manage_office_credits the
    # users of one's offices; others themselves and their team, never taking from a team member. Credits
    # go only to active staff with send_sms; a message is paid by its sender's own credits ---
    Case("sms.settings", "PATCH", "/v1/sms/settings", body={"tax_label": "GST"}, allowed=MASTER),
    Case("sms.purchase.pool", "POST", "/v1/sms/purchases", body={
        "for": POOL, "quantity": 5, "billing": BILLING}, allowed=MASTER),
    Case("sms.purchase.team_member", "POST", "/v1/sms/purchases", body={
        "for": _user("teammate"), "quantity": 5, "billing": BILLING}, allowed=OFFICE_SMS | {"mem_sms_team"}),
    Case("sms.purchase.other_office_user", "POST", "/v1/sms/purchases", body={
        "for": _user("sms_o2"), "quantity": 5, "billing": BILLING}, allowed=MASTER),
    Case("sms.purchase.for_the_master", "POST", "/v1/sms/purchases", body={
        "for": _user("master"), "quantity": 5, "billing": BILLING}, allowed=MASTER),
    Case("sms.purchase.deactivated_user", "POST", "/v1/sms/purchases", body={
        "for": _user("old_master"), "quantity": 5, "billing": BILLING}, special={"master": 422}),
    Case("sms.purchase.self", "POST", "/v1/sms/purchases", body={
        "for": SELF, "quantity": 5, "billing": BILLING}, allowed=SMS_SENDERS, refused=422),
    Case("sms.purchase.payment", "POST", "/v1/sms/purchases/{purchase_id}/payment", "purchase", {
        "status": "paid", "reference": "bank transfer 42"}, MASTER, fresh=fresh_pending_purchase),
    Case("sms.transfer.pool_to_user", "POST", "/v1/sms/transfers",
         body=_sms_transfer(POOL, _user("teammate")), allowed=MASTER),
    Case("sms.transfer.user_to_pool", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("teammate"), POOL), allowed=MASTER),
    Case("sms.transfer.from_a_team_member", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("teammate"), _user("mem_sms_team")), allowed=OFFICE_SMS),
    Case("sms.transfer.own_to_team_member", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("mem_sms_team"), _user("teammate")), allowed=OFFICE_SMS | {"mem_sms_team"}),
    Case("sms.transfer.own_to_non_team_member", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("mem_sms_team"), _user("mem_sms")), allowed=OFFICE_SMS),
    # Office SMS managers move credits of every user of their offices, whatever the user's role (seed 003).
    Case("sms.transfer.from_a_manager", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("mgr_all"), _user("teammate")), allowed=OFFICE_SMS),
    Case("sms.transfer.to_other_office", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("teammate"), _user("sms_o2")), allowed=MASTER),
    Case("sms.transfer.to_user_without_send_sms", "POST", "/v1/sms/transfers",
         body=_sms_transfer(_user("teammate"), PLAIN), special={c: 422 for c in OFFICE_SMS}),
    Case("message.send", "POST", "/v1/messages", body={"to": "+61400000000", "body": "Matrix"},
         allowed=SMS_SENDERS),
    Case("message.send_on_behalf", "POST", "/v1/messages", body={
        "to": "+61400000001", "body": "Matrix", "on_behalf_of_user_id": "{teammate}"}, allowed=SMS_SENDERS),

    # --- billing (README "Accounts"): masters and managers the addresses and accounts (name, address,
    # classification); masters the settings, rates, credit periods and the period close ---
    Case("address.create", "POST", "/v1/customers/{customer_id}/addresses", "customer",
         {"line1": "Matrix street {uniq}", "city": "Sydney", "country": "AU"}, MANAGERS,
         special={c: 201 for c in MANAGERS}),
    Case("address.update", "PATCH", "/v1/customers/{customer_id}/addresses/{address_id}", ("customer", "address"),
         {"city": "Sydney"}, MANAGERS),
    Case("billing.settings.update", "PATCH", "/v1/billing/settings", body={"multi_currency": True}, allowed=MASTER),
    Case("conversion_rate.create", "POST", "/v1/conversion-rates", body={
        "from_currency": "EUR", "to_currency": "AUD", "rate": "1.6", "valid_from": "2031-01-01"}, allowed=MASTER),
    Case("account.create", "POST", "/v1/accounts", body={"customer_id": "{customer}", "name": "Matrix {uniq}"},
         allowed=MANAGERS),
    Case("account.update.name", "PATCH", "/v1/accounts/{account_id}", "account", {"name": "Account 1"}, MANAGERS),
    Case("account.update.credit_period", "PATCH", "/v1/accounts/{account_id}", "account",
         {"credit_period_days": 45}, MASTER,
         restore=lambda w, caller, values: w.master.patch(f"/v1/accounts/{w.ids['account']}",
                                                          {"credit_period_days": 30})),
    # Periods since 2020 (World._build): the master's call closes the earliest one.
    Case("accounting_period.close", "POST", "/v1/accounting-periods/close", body=None, allowed=MASTER,
         special={"master": 200}),
]


# --- the catalogue (README "Catalogue"): everyone reads it, only masters change it, prices included ---

def fresh_catalogue(kind: str):
    """One catalogue object (and what it needs) made by the master, named by a fresh code."""
    def make(w, caller):
        code = f"{kind}-{secrets.token_hex(4)}"
        m = w.master
        if kind == "product_type":
            return {"product_type": m.post("/v1/product-types", {"code": code, "name": "T", "kind": "service"})["id"]}
        if kind == "product_family":
            return {"product_family": m.post("/v1/product-families", {"code": code, "name": "F"})["id"]}
        if kind in ("tax_class", "tax_rate"):
            made = {"tax_class": m.post("/v1/tax-classes", {"code": code, "name": "C"})["id"], "tax_class_code": code}
            if kind == "tax_rate":
                made["tax_rate"] = m.post("/v1/tax-rates", {"tax_class": code, "rate_bp": 1000,
                                                            "valid_from": "2020-01-01"})["id"]
            return made
        product = m.post("/v1/products", {"code": code, "name": "P", "kind": "service", "unit": "each"})
        plan = m.post("/v1/price-plans", {"code": code, "name": "Plan", "currency": "AUD"})["id"]
        return {"product": product["id"], "product_code": code, "price_plan": plan}
    return make


CASES += [
    Case("product_type.create", "POST", "/v1/product-types", body={"code": "pt-{uniq}", "name": "Type",
                                                                    "kind": "service"}, allowed=MASTER),
    Case("product_type.update", "PATCH", "/v1/product-types/{type_id}", "product_type", {"name": "Renamed"},
         MASTER, fresh=fresh_catalogue("product_type")),
    Case("product_family.create", "POST", "/v1/product-families", body={"code": "pf-{uniq}", "name": "Family"},
         allowed=MASTER),
    Case("product_family.update", "PATCH", "/v1/product-families/{family_id}", "product_family",
         {"active": False}, MASTER, fresh=fresh_catalogue("product_family")),
    Case("tax_class.create", "POST", "/v1/tax-classes", body={"code": "tc-{uniq}", "name": "GST"}, allowed=MASTER),
    Case("tax_class.update", "PATCH", "/v1/tax-classes/{class_id}", "tax_class", {"name": "Renamed"}, MASTER,
         fresh=fresh_catalogue("tax_class")),
    Case("tax_rate.create", "POST", "/v1/tax-rates", body={"tax_class": "{tax_class_code}", "rate_bp": 1000,
                                                           "valid_from": "2031-01-01"}, allowed=MASTER,
         fresh=fresh_catalogue("tax_class")),
    Case("tax_rate.update", "PATCH", "/v1/tax-rates/{rate_id}", "tax_rate", {"rate_bp": 1500}, MASTER,
         fresh=fresh_catalogue("tax_rate")),
    Case("product.create", "POST", "/v1/products", body={"code": "p-{uniq}", "name": "Product", "kind": "service",
                                                         "unit": "each"}, allowed=MASTER),
    Case("product.update", "PATCH", "/v1/products/{product}", "product", {"name": "Renamed", "active": False},
         MASTER, fresh=fresh_catalogue("product")),
    Case("price_plan.create", "POST", "/v1/price-plans", body={"code": "pp-{uniq}", "name": "Plan",
                                                               "currency": "EUR"}, allowed=MASTER),
    Case("price_plan.update", "PATCH", "/v1/price-plans/{plan_id}", "price_plan", {"is_default": True}, MASTER,
         fresh=fresh_catalogue("product")),
    Case("price.set", "PUT", "/v1/price-plans/{plan_id}/prices", "price_plan", {"product": "{product_code}",
                                                                               "unit_price": 1250}, MASTER,
         fresh=fresh_catalogue("product")),
]


# --- invoices, credit notes, payments (README "Invoices and payments"): masters and managers write, everyone
# reads; credits on a line are the customer's (a `unit` pack of the customer covering the product) ---

def fresh_invoice(state: str):
    """A draft (with one line), a draft whose line is paid with credits, a posted invoice, or a payment left
    unallocated next to a posted invoice, made by the master."""
    def make(w, caller):
        m = w.master
        if "invoice_product" not in w.ids:
            m.post("/v1/products", {"code": "matrix-svc", "name": "Matrix service", "kind": "service", "unit": "each"})
            plan = m.post("/v1/price-plans", {"code": "matrix-aud", "name": "AUD", "currency": "AUD",
                                              "is_default": True})["id"]
            w.master.client.put(f"/v1/price-plans/{plan}/prices", json={"product": "matrix-svc", "unit_price": 1000})
            _grant(w, {"kind": "customer", "id": w.ids["customer"]}, 1_000_000, name="Customer credits")
            w.ids["invoice_product"] = "matrix-svc"
        if state == "product":
            return {}
        invoice = m.post("/v1/invoices", {"account_id": w.ids["account"],
                                          "lines": [{"product": "matrix-svc", "quantity": 3}]})
        made = {"invoice": invoice["id"], "line": invoice["lines"][0]["id"]}
        if state == "credited":
            m.post(f"/v1/invoices/{invoice['id']}/lines/{made['line']}/credits", {
                "context": {"kind": "customer", "id": w.ids["customer"]}, "credit_type": "unit", "quantity": 1})
        if state in ("posted", "payment"):
            m.post(f"/v1/invoices/{invoice['id']}/post")
        if state == "payment":
            made["payment"] = m.post("/v1/payments", {"account_id": w.ids["account"], "amount": 500,
                                                      "allocations": []})["id"]
        return made
    return make


INVOICE = ("invoice",)
LINE = ("invoice", "line")
CASES += [
    Case("invoice.create", "POST", "/v1/invoices", body={"account_id": "{account}", "lines": [
        {"product": "matrix-svc", "quantity": 1}]}, allowed=MANAGERS, fresh=fresh_invoice("product")),
    Case("invoice.update", "PATCH", "/v1/invoices/{invoice_id}", INVOICE, {"notes": "Matrix"}, MANAGERS,
         fresh=fresh_invoice("draft")),
    Case("invoice.line_add", "POST", "/v1/invoices/{invoice_id}/lines", INVOICE,
         {"product": "matrix-svc", "quantity": "1.5"}, MANAGERS, fresh=fresh_invoice("draft")),
    Case("invoice.line_update", "PATCH", "/v1/invoices/{invoice_id}/lines/{line_id}", LINE,
         {"quantity": 2, "unit_price": 900}, MANAGERS, fresh=fresh_invoice("draft")),
    Case("invoice.line_delete", "DELETE", "/v1/invoices/{invoice_id}/lines/{line_id}", LINE, None, MANAGERS,
         fresh=fresh_invoice("draft")),
    Case("invoice.line_credits", "POST", "/v1/invoices/{invoice_id}/lines/{line_id}/credits", LINE,
         {"context": {"kind": "customer", "id": "{customer}"}, "credit_type": "unit", "quantity": 1}, MANAGERS,
         fresh=fresh_invoice("draft")),
    Case("invoice.line_credits_remove", "DELETE", "/v1/invoices/{invoice_id}/lines/{line_id}/credits", LINE, None,
         MANAGERS, fresh=fresh_invoice("credited")),
    Case("invoice.post", "POST", "/v1/invoices/{invoice_id}/post", INVOICE, None, MANAGERS,
         fresh=fresh_invoice("draft")),
    Case("invoice.void", "POST", "/v1/invoices/{invoice_id}/void", INVOICE, None, MANAGERS,
         fresh=fresh_invoice("credited")),
    Case("credit_note.create", "POST", "/v1/invoices/{invoice_id}/credit-notes", INVOICE,
         {"amount": 100, "reason": "Matrix"}, MANAGERS, special={c: 201 for c in MANAGERS},
         fresh=fresh_invoice("posted")),
    Case("payment.create", "POST", "/v1/payments", body={"account_id": "{account}", "amount": 100,
                                                          "method": "cash"}, allowed=MANAGERS),
    Case("payment.allocate", "POST", "/v1/payments/{payment_id}/allocate", "payment", {}, MANAGERS,
         fresh=fresh_invoice("payment")),
    # Account credit (an unallocated payment): applied to open invoices or refunded, as payments are made.
    Case("account_credit.apply", "POST", "/v1/accounts/{account_id}/credit/apply", "account", {}, MANAGERS,
         fresh=fresh_invoice("payment")),
    Case("account_credit.refund", "POST", "/v1/accounts/{account_id}/credit/refunds", "account",
         {"amount": 100, "reason": "Matrix"}, MANAGERS, special={c: 201 for c in MANAGERS},
         fresh=fresh_invoice("payment")),
]


# --- credit packages (issue 13): a free grant is a grant (require_grant); Edit needs manage_packs ---

def fresh_package(w, caller):
    code = f"pkg-{secrets.token_hex(4)}"
    w.master.post("/v1/products", {"code": code, "name": "Package", "kind": "credit_package", "unit": "pack",
                                   "credit_package": {"credit_type": "unit", "credit_quantity": 5,
                                                      "applicable_product_codes": [_any_service(w)],
                                                      "expiry": {"kind": "none"}}})
    return {"package": code}


def _any_service(w):
    code = f"svc-{secrets.token_hex(4)}"
    w.master.post("/v1/products", {"code": code, "name": "Service", "kind": "service", "unit": "each"})
    return code


CASES += [
    Case("package.grant_free", "POST", "/v1/products/{product}/grant", "package", {"holder": OFFICE2}, GRANT,
         special={c: 201 for c in GRANT}, fresh=fresh_package),
    Case("package.edit", "POST", "/v1/packs/{pack_id}/package-edit", "pack",
         {"notes": "matrix", "remaining": 3, "reason": "matrix"}, PACKS, fresh=fresh_office2_pack),
]


# --- credit control (README "Credit control"): masters change ratings, override rules and credit terms,
# terminate and write off; masters and managers suspend and reactivate; every staff user asks the decision ---

def fresh_account(state: str):
    """An account of the matrix customer, made by the master: active, suspended, or owing 1.00 AUD."""
    def make(w, caller):
        m = w.master
        account = m.post("/v1/accounts", {"customer_id": w.ids["customer"], "name": f"Fresh {state}"})["id"]
        if state == "suspended":
            m.post(f"/v1/accounts/{account}/suspend", {"reason": "dispute"})
        if state == "owing":
            from creditdesk.billing import postings
            from creditdesk.billing.models import BillingAccount

            w.db.write(lambda s: postings.post_account_entry(s, s.get(BillingAccount, account), 100, "debit",
                                                             "invoice"))
        return {"fresh_account": account}
    return make


CASES += [
    Case("credit_rating.create", "POST", "/v1/credit-ratings", body={"code": "r-{uniq}", "name": "Rating",
                                                                     "limits": {"AUD": 100_000}}, allowed=MASTER),
    Case("credit_rating.update", "PATCH", "/v1/credit-ratings/{rating_id}", "rating", {"name": "Rating 1"}, MASTER),
    Case("override_rule.create", "POST", "/v1/override-rules", body={"name": "Rule {uniq}", "events": ["purchase"]},
         allowed=MASTER),
    Case("override_rule.update", "PATCH", "/v1/override-rules/{rule_id}", "rule", {"active": True}, MASTER),
    Case("account.credit_terms", "POST", "/v1/accounts/{account_id}/credit-terms", "account",
         {"credit_limit": 100_000, "credit_period_days": 30}, MASTER),
    Case("decision.spend", "POST", "/v1/decisions/spend", body={"account_id": "{account}", "event": "purchase",
                                                                 "amount": 1},
         allowed=ACTIVE, special={c: 200 for c in ACTIVE}, audited=False),
    Case("account.suspend", "POST", "/v1/accounts/{account_id}/suspend", "fresh_account", {"reason": "dispute"},
         MANAGERS, fresh=fresh_account("active")),
    Case("account.reactivate", "POST", "/v1/accounts/{account_id}/reactivate", "fresh_account", None, MANAGERS,
         fresh=fresh_account("suspended")),
    Case("account.terminate", "POST", "/v1/accounts/{account_id}/terminate", "fresh_account", None, MASTER,
         fresh=fresh_account("active")),
    Case("account.write_off", "POST", "/v1/accounts/{account_id}/write-off", "fresh_account",
         {"reason": "Uncollectable"}, MASTER, fresh=fresh_account("owing")),
]


# --- expiry emails (README "Expiry emails"): masters change the settings and templates; every staff user
# previews (nothing is stored) and reads the log ---

CASES += [
    Case("email_settings.update", "PATCH", "/v1/email-settings", body={"warning_days": 10}, allowed=MASTER),
    Case("email_template.put", "PUT", "/v1/email-templates",
         body={"event": "warning", "language": "de", "subject": "Soon {uniq}", "text_body": "Hello {{ customer.name }}"},
         allowed=MASTER),
    Case("email_template.preview", "POST", "/v1/email-templates/preview",
         body={"event": "warning", "subject": "S", "text_body": "B"},
         allowed=ACTIVE, special={c: 200 for c in ACTIVE}, audited=False),
]


# --- group accounts and pricing agreements (README "Group accounts and pricing agreements"): masters and
# managers add and remove members and set pricing agreements ---

def fresh_group(with_member: bool):
    """A parent account of the matrix customer and an account of another customer, made by the master; with
    `with_member` the second is already the parent's member."""
    def make(w, caller):
        m = w.master
        if "group_customer" not in w.ids:
            w.ids["group_customer"] = m.post("/v1/customers", {"name": "Matrix group member"})["id"]
        parent = m.post("/v1/accounts", {"customer_id": w.ids["customer"], "name": "Group parent"})["id"]
        member = m.post("/v1/accounts", {"customer_id": w.ids["group_customer"], "name": "Group member"})["id"]
        if with_member:
            m.post(f"/v1/accounts/{parent}/members", {"member_id": member, "funding": {"scope": "full"}})
        return {"group_parent": parent, "group_member": member}
    return make


CASES += [
    Case("group.member_add", "POST", "/v1/accounts/{account_id}/members", "group_parent",
         {"member_id": "{group_member}", "funding": {"scope": "full"}}, MANAGERS,
         special={c: 201 for c in MANAGERS}, fresh=fresh_group(False)),
    Case("group.member_remove", "DELETE", "/v1/accounts/{account_id}/members/{member_id}",
         ("group_parent", "group_member"), None, MANAGERS, fresh=fresh_group(True)),
    Case("account.pricing_agreement", "POST", "/v1/accounts/{account_id}/pricing-agreement", "account",
         {"price_plan_id": None}, MANAGERS),
]


# --- account assets (README "Account assets"): masters and managers import, transfer and return; everyone
# reads ---

def fresh_asset(w, caller):
    """A customer-owned asset on the matrix account and a second account to transfer it to, by the master."""
    m = w.master
    if "asset_target" not in w.ids:
        w.ids["asset_target"] = m.post("/v1/accounts", {"customer_id": w.ids["customer"], "name": "Asset target"})["id"]
    asset = m.post("/v1/assets/import", {"account_id": w.ids["account"], "description": "Matrix modem"})["id"]
    return {"asset": asset}


def fresh_sold_asset(w, caller):
    """An asset bought on a posted invoice (goods sold can be returned), by the master."""
    m = w.master
    if "asset_good" not in w.ids:
        m.post("/v1/products", {"code": "matrix-router", "name": "Router", "kind": "physical_good", "unit": "each"})
        w.ids["asset_good"] = "matrix-router"
    inv = m.post("/v1/invoices", {"account_id": w.ids["account"], "lines": [
        {"product": "matrix-router", "quantity": 1, "unit_price": 100}]})
    m.post(f"/v1/invoices/{inv['id']}/post")
    listed = _answer(m.client.get("/v1/assets", params={"account_id": w.ids["account"], "limit": 500}))["data"]
    [asset] = [a for a in listed if a["invoice_line_id"] == inv["lines"][0]["id"]]
    return {"asset": asset["id"]}


CASES += [
    Case("asset.import", "POST", "/v1/assets/import", None, {"account_id": "{account}", "description": "Modem"},
         MANAGERS, special={c: 201 for c in MANAGERS}),
    Case("asset.transfer", "POST", "/v1/assets/transfer", None,
         {"asset_ids": ["{asset}"], "to_account_id": "{asset_target}"}, MANAGERS,
         special={c: 200 for c in MANAGERS}, fresh=fresh_asset),
    Case("asset.return", "POST", "/v1/assets/return", None, {"asset_ids": ["{asset}"]}, MANAGERS,
         special={c: 200 for c in MANAGERS}, fresh=fresh_sold_asset),
]


# --- wallets and payment preferences (README "Wallets and payment preferences"): masters and managers;
# everyone reads ---

def fresh_wallet(w, caller):
    """An account of its own with a wallet holding 10.00, and a posted invoice of 1.00 on it, by the master."""
    m = w.master
    account = m.post("/v1/accounts", {"customer_id": w.ids["customer"], "name": "Wallet account"})["id"]
    m.post(f"/v1/accounts/{account}/wallet")
    m.post(f"/v1/accounts/{account}/wallet/top-ups", {"amount": 1000})
    if "wallet_good" not in w.ids:
        m.post("/v1/products", {"code": "matrix-service", "name": "Service", "kind": "service", "unit": "each"})
        w.ids["wallet_good"] = "matrix-service"
    inv = m.post("/v1/invoices", {"account_id": account, "lines": [
        {"product": "matrix-service", "quantity": 1, "unit_price": 100}]})
    m.post(f"/v1/invoices/{inv['id']}/post")
    return {"wallet_account": account, "wallet_invoice": inv["id"]}


def fresh_card(w, caller):
    """A card preference with a card (written as a gateway would leave it: no gateway runs here)."""
    from creditdesk import clock
    from creditdesk.billing.wallet_models import PaymentCard
    from creditdesk.ids import new_id

    pref = w.master.post("/v1/payment-preferences", {"account_id": w.ids["account"], "kind": "card",
                                                     "gateway": "stripe"}) \
        if "card_preference" not in w.ids else {"id": w.ids["card_preference"]}
    w.ids["card_preference"] = pref["id"]

    def write(session):
        card = PaymentCard(id=new_id("card"), workspace_id=w.ws.id, preference_id=pref["id"], gateway="stripe",
                           card_ref="pm_matrix", brand="visa", last4="4242", exp_month=12, exp_year=2030,
                           removed=False, created_at=clock.now())
        session.add(card)
        return card.id
    return {"card_preference": pref["id"], "card": w.db.write(write)}


CASES += [
    Case("wallet.open", "POST", "/v1/accounts/{account_id}/wallet", "new_account", None, MANAGERS,
         special={c: 201 for c in MANAGERS}, fresh=lambda w, caller: {"new_account": w.master.post(
             "/v1/accounts", {"customer_id": w.ids["customer"], "name": "Account for a wallet"})["id"]}),
    Case("wallet.top_up", "POST", "/v1/accounts/{account_id}/wallet/top-ups", "wallet_account", {"amount": 100},
         MANAGERS, special={c: 201 for c in MANAGERS}, fresh=fresh_wallet),
    Case("wallet.refund", "POST", "/v1/accounts/{account_id}/wallet/refunds", "wallet_account",
         {"amount": 100, "reason": "Matrix"}, MANAGERS, special={c: 201 for c in MANAGERS}, fresh=fresh_wallet),
    Case("wallet.pay_invoice", "POST", "/v1/invoices/{invoice_id}/pay-from-wallet", "wallet_invoice", {},
         MANAGERS, special={c: 201 for c in MANAGERS}, fresh=fresh_wallet),
    Case("payment_preference.create", "POST", "/v1/payment-preferences", None,
         {"account_id": "{account}", "kind": "bank_transfer"}, MANAGERS, special={c: 201 for c in MANAGERS}),
    Case("payment_preference.update", "PATCH", "/v1/payment-preferences/{preference_id}", "card_preference",
         {"use_billing_address": False}, MANAGERS, fresh=fresh_card),
    # The live server's Stripe is tests/billing/fake_stripe.py (reliability/conftest.py).
    Case("payment_preference.card_register", "POST", "/v1/payment-preferences/{preference_id}/cards",
         "card_preference", {"card_token": "pm_card_visa"}, MANAGERS, special={c: 201 for c in MANAGERS},
         fresh=fresh_card),
    Case("payment_preference.card_remove", "POST", "/v1/payment-preferences/{preference_id}/cards/{card_id}/remove",
         ("card_preference", "card"), None, MANAGERS, fresh=fresh_card),
]


# --- subscriptions and bills (README "Subscriptions and bills"): masters and managers change and bill;
# everyone reads and previews; masters start billing runs ---

def _subscription(w, *, status: str) -> dict:
    m = w.master
    if "sub_product" not in w.ids:
        m.post("/v1/products", {"code": "matrix-sub", "name": "Matrix line", "kind": "subscription_service",
                                "unit": "month"})
        w.ids["sub_product"] = "matrix-sub"
    body = {"account_id": w.ids["account"], "services": [{"product": "matrix-sub", "unit_price": 100}]}
    if status != "draft":
        body["activate_on"] = "2027-01-01"
    sub = m.post("/v1/subscriptions", body)
    if status == "suspended":
        m.post(f"/v1/subscriptions/{sub['id']}/suspend", {"on": "2027-01-05"})
    return {"subscription": sub["id"], "sub_service": sub["services"][0]["id"]}


def fresh_subscription(status: str):
    return lambda w, caller: _subscription(w, status=status)


CASES += [
    Case("subscription.create", "POST", "/v1/subscriptions", None,
         {"account_id": "{account}", "services": [{"product": "{sub_product}", "unit_price": 100}]}, MANAGERS,
         special={c: 201 for c in MANAGERS}, fresh=lambda w, caller: {
             k: v for k, v in _subscription(w, status="draft").items() if k == "subscription"} | {
             "sub_product": w.ids["sub_product"]}),
    Case("subscription.activate", "POST", "/v1/subscriptions/{subscription_id}/activate", "subscription",
         {"on": "2027-01-01"}, MANAGERS, fresh=fresh_subscription("draft")),
    Case("subscription.service_add", "POST", "/v1/subscriptions/{subscription_id}/services", "subscription",
         {"product": "matrix-sub", "unit_price": 50}, MANAGERS, fresh=fresh_subscription("active")),
    Case("subscription.service_remove", "POST", "/v1/subscriptions/{subscription_id}/remove-services", "subscription",
         {"service_id": "{sub_service}", "action": "remove", "effective_on": "2027-06-01"}, MANAGERS,
         fresh=fresh_subscription("active")),
    Case("subscription.quantity_change", "POST", "/v1/subscriptions/{subscription_id}/change-quantity",
         "subscription", {"service_id": "{sub_service}", "quantity": 2}, MANAGERS, fresh=fresh_subscription("active")),
    Case("subscription.suspend", "POST", "/v1/subscriptions/{subscription_id}/suspend", "subscription",
         {"on": "2027-02-01"}, MANAGERS, fresh=fresh_subscription("active")),
    Case("subscription.resume", "POST", "/v1/subscriptions/{subscription_id}/resume", "subscription",
         {"on": "2027-02-01"}, MANAGERS, fresh=fresh_subscription("suspended")),
    Case("subscription.terminate", "POST", "/v1/subscriptions/{subscription_id}/terminate", "subscription",
         {"on": "2027-06-01"}, MANAGERS, fresh=fresh_subscription("active")),
    Case("subscription.bill_preview", "POST", "/v1/subscriptions/{subscription_id}/bill-preview", "subscription",
         {"as_of": "2027-01-01"}, ACTIVE, special={c: 200 for c in ACTIVE}, audited=False,
         fresh=fresh_subscription("active")),
    Case("subscription.bill", "POST", "/v1/subscriptions/{subscription_id}/bill", "subscription",
         {"as_of": "2027-01-01"}, MANAGERS, special={c: 201 for c in MANAGERS}, fresh=fresh_subscription("active")),
    Case("billing_run.start", "POST", "/v1/billing-runs", None, {"as_of": "2020-01-01"}, MASTER,
         special={"master": 201}, audited=False),
]


# --- low-balance thresholds (README "Low balance and top-ups"): masters set and delete them; everyone reads ---

def fresh_threshold(w, caller):
    """A threshold of its own (on a fresh office), by the master."""
    office = w.master.post("/v1/offices", {"name": f"Threshold office {secrets.token_hex(3)}"})["id"]
    row = _answer(w.master.client.put("/v1/balance-thresholds", json={
        "credit_type": "unit", "threshold": 10, "holder": {"kind": "office", "id": office}}))
    return {"threshold": row["id"], "threshold_office": office}


CASES += [
    Case("balance_threshold.set", "PUT", "/v1/balance-thresholds", None,
         {"credit_type": "unit", "threshold": 5, "holder": {"kind": "office", "id": "{o2}"}}, MASTER),
    Case("balance_threshold.delete", "DELETE", "/v1/balance-thresholds/{threshold_id}", "threshold", None, MASTER,
         fresh=fresh_threshold),
]


# --- activities (README "Activities"): masters and managers schedule, change and cancel, and manage the types;
# the user an activity is assigned to (here `mem`) also starts and completes it; everyone reads ---

ACTIVITY_START = "2027-01-01T09:00:00Z"


def fresh_activity_type(w, caller):
    """An activity type of its own (a fresh code), by the master."""
    code = f"matrix-type-{secrets.token_hex(4)}"
    return {"activity_type": w.master.post("/v1/activity-types", {"code": code, "name": "Matrix type"})["id"],
            "activity_type_code": code}


def fresh_activity(started: bool = False):
    """An open (or started) activity of the matrix customer assigned to `mem`, without services, by the master."""
    def make(w, caller):
        if "activity_visit" not in w.ids:
            w.master.post("/v1/activity-types", {"code": "matrix-visit", "name": "Visit"})
            w.ids["activity_visit"] = "matrix-visit"
        activity = w.master.post("/v1/activities", {"customer_id": w.ids["customer"], "type": "matrix-visit",
                                                    "starts_at": ACTIVITY_START,
                                                    "assignee_user_id": w.user_ids["mem"]})["id"]
        if started:
            w.master.post(f"/v1/activities/{activity}/start")
        return {"activity": activity}
    return make


ASSIGNEE = MANAGERS | {"mem"}

CASES += [
    Case("activity_type.create", "POST", "/v1/activity-types", None,
         {"code": "matrix-type-{uniq}", "name": "Matrix type"}, MANAGERS),
    Case("activity_type.update", "PATCH", "/v1/activity-types/{activity_type_id}", "activity_type",
         {"name": "Renamed type"}, MANAGERS, fresh=fresh_activity_type),
    Case("activity.create", "POST", "/v1/activities", None,
         {"customer_id": "{customer}", "type": "{activity_type_code}", "starts_at": ACTIVITY_START}, MANAGERS,
         fresh=fresh_activity_type),
    Case("activity.update", "PATCH", "/v1/activities/{activity_id}", "activity",
         {"details": "Changed", "expected_completion_at": "2027-01-02T09:00:00Z"}, MANAGERS, fresh=fresh_activity()),
    Case("activity.start", "POST", "/v1/activities/{activity_id}/start", "activity", None, ASSIGNEE,
         fresh=fresh_activity()),
    Case("activity.complete", "POST", "/v1/activities/{activity_id}/complete", "activity", None, ASSIGNEE,
         fresh=fresh_activity(started=True)),
    Case("activity.cancel", "POST", "/v1/activities/{activity_id}/cancel", "activity", {"reason": "Matrix"},
         MANAGERS, fresh=fresh_activity()),
]


# --- bill communications (README "Communicate a bill"): masters and managers send and change templates;
# everyone previews (nothing is stored) and reads ---

def _bill(w) -> str:
    """A posted invoice of the matrix account, made once by the master (communicating changes nothing of it)."""
    if "bill" not in w.ids:
        m = w.master
        m.post("/v1/products", {"code": "matrix-billed", "name": "Billed", "kind": "service", "unit": "each"})
        inv = m.post("/v1/invoices", {"account_id": w.ids["account"], "lines": [
            {"product": "matrix-billed", "quantity": 1, "unit_price": 100}]})
        m.post(f"/v1/invoices/{inv['id']}/post")
        w.ids["bill"] = inv["id"]
    return w.ids["bill"]


def fresh_comm_template(w, caller):
    _bill(w)
    return {"comm_template": w.master.post("/v1/communication-templates", {
        "name": f"Matrix template {secrets.token_hex(4)}", "subject": "Invoice {{ invoice.number }}",
        "body": "Attached."})["id"]}


CASES += [
    Case("communication_template.create", "POST", "/v1/communication-templates",
         body={"name": "Template {uniq}", "subject": "Invoice {{ invoice.number }}", "body": "Attached."},
         allowed=MANAGERS),
    Case("communication_template.update", "PATCH", "/v1/communication-templates/{template_id}", "comm_template",
         {"subject": "Your bill {{ invoice.number }}"}, MANAGERS, fresh=fresh_comm_template),
    Case("communication_template.delete", "DELETE", "/v1/communication-templates/{template_id}", "comm_template",
         None, MANAGERS, fresh=fresh_comm_template),
    Case("communication_template.preview", "POST", "/v1/communication-templates/preview",
         body={"invoice_id": "{bill}", "subject": "S {{ invoice.number }}", "body": "B"},
         allowed=ACTIVE, special={c: 200 for c in ACTIVE}, audited=False, fresh=fresh_comm_template),
    # No SMTP server in this one: the communication is recorded and its send fails after the commit.
    Case("invoice.communicate", "POST", "/v1/invoices/{invoice_id}/communicate", "bill",
         {"to": "bills@example.com", "template_id": "{comm_template}"}, MANAGERS,
         special={c: 202 for c in MANAGERS}, fresh=fresh_comm_template),
]


# --- packs from CRM deals (README "Packs from CRM deals"): masters change the HubSpot settings and
# mappings; whoever may grant packs imports deals and retries or dismisses review items; everyone reads. The
# webhook is HubSpot's: no API key opens it (401 invalid_signature for every caller, nothing changed) ---

def _crm_package(w) -> str:
    if "crm_package" not in w.ids:
        w.master.post("/v1/products", {"code": "matrix-crm-svc", "name": "Matrix service", "kind": "service",
                                       "unit": "hour"})
        w.master.post("/v1/products", {"code": "matrix-crm-pkg", "name": "Matrix hours", "kind": "credit_package",
                                       "unit": "pack", "credit_package": {
                                           "credit_type": "unit", "credit_quantity": 5,
                                           "applicable_product_codes": ["matrix-crm-svc"],
                                           "expiry": {"kind": "none"}}})
        w.master.post("/v1/integrations/hubspot/mappings", {"kind": "sku", "external_id": "MATRIX-SKU",
                                                            "product": "matrix-crm-pkg"})
        w.ids["crm_package"] = "matrix-crm-pkg"
    return w.ids["crm_package"]


def fresh_crm_mapping(w, caller):
    _crm_package(w)
    return {"crm_mapping": w.master.post("/v1/integrations/hubspot/mappings", {
        "kind": "product", "external_id": f"matrix-{secrets.token_hex(4)}", "product": "matrix-crm-pkg"})["id"]}


def fresh_review_item(mapped: bool):
    """A deal of an unknown company in the review queue (imported by the master); `mapped`: its company is
    mapped since, so a Retry makes its pack."""
    def make(w, caller):
        _crm_package(w)
        company = f"matrix-co-{secrets.token_hex(4)}"
        result = w.master.post("/v1/deals/import", {"deals": [{"id": company, "company_id": company,
                                                               "line_items": [{"sku": "MATRIX-SKU"}]}]})
        if mapped:
            w.master.post("/v1/integrations/hubspot/mappings", {"kind": "company", "external_id": company,
                                                                "holder": {"kind": "office", "id": w.ids["o1"]}})
        return {"crm_review_item": result["deals"][0]["review_item_id"]}
    return make


CASES += [
    Case("hubspot.settings", "PUT", "/v1/integrations/hubspot", None,
         {"client_secret": "matrix-client-secret", "won_stage": "closedwon"}, MASTER),
    Case("crm_mapping.create", "POST", "/v1/integrations/hubspot/mappings", None,
         {"kind": "sku", "external_id": "matrix-{uniq}", "product": "{crm_package}"}, MASTER,
         fresh=lambda w, caller: {"crm_package": _crm_package(w)}),
    Case("crm_mapping.update", "PATCH", "/v1/integrations/hubspot/mappings/{mapping_id}", "crm_mapping",
         {"note": "Matrix"}, MASTER, fresh=fresh_crm_mapping),
    Case("crm_mapping.delete", "DELETE", "/v1/integrations/hubspot/mappings/{mapping_id}", "crm_mapping", None,
         MASTER, fresh=fresh_crm_mapping),
    Case("crm_review.retry", "POST", "/v1/integrations/review-queue/{item_id}/retry", "crm_review_item", None,
         GRANT, fresh=fresh_review_item(mapped=True)),
    Case("crm_review.dismiss", "POST", "/v1/integrations/review-queue/{item_id}/dismiss", "crm_review_item",
         {"reason": "Matrix"}, GRANT, fresh=fresh_review_item(mapped=False)),
    Case("deals.import", "POST", "/v1/deals/import", None,
         {"deals": [{"id": "matrix-{uniq}", "holder": {"kind": "office", "id": "{o2}"},
                     "line_items": [{"sku": "MATRIX-SKU"}]}]}, GRANT, special={c: 200 for c in GRANT},
         fresh=lambda w, caller: {"crm_package": _crm_package(w)}),
    Case("hubspot.webhook", "POST", "/v1/integrations/hubspot/webhook", None,
         [{"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": 1}], frozenset(), refused=401,
         audited=False),
]


# --- outbound webhooks (README "Outbound webhooks"): masters only. The endpoints here want balance.low, which
# nothing emits yet, so no delivery runs behind the matrix's back; a replay's own delivery (to a closed
# loopback port) is waited for before the next caller ---

WEBHOOK_URL = "http://127.0.0.1:9/matrix"


def fresh_webhook_endpoint(w, caller):
    return {"webhook_endpoint": w.master.post("/v1/webhook-endpoints", {"url": WEBHOOK_URL,
                                                                       "event_types": ["balance.low"]})["id"]}


def fresh_webhook_delivery(w, caller):
    """A failed delivery of an endpoint of the matrix (written as the outbox would leave it)."""
    from creditdesk import clock
    from creditdesk.ids import new_id
    from creditdesk.webhooks.models import WebhookDelivery

    endpoint = fresh_webhook_endpoint(w, caller)["webhook_endpoint"]

    def write(session):
        now = clock.now()
        row = WebhookDelivery(id=new_id("whd"), workspace_id=w.ws.id, endpoint_id=endpoint, event_id=new_id("whevt"),
                              event_type="balance.low", body='{"type":"balance.low","data":{}}', status="failed",
                              attempts=1, next_attempt_at=None, last_error="HTTP 500", retry_from=now,
                              created_at=now, updated_at=now)
        session.add(row)
        return row.id
    return {"webhook_delivery": w.db.write(write)}


def _replayed_delivery_done(w, caller, values) -> None:
    """The replay's delivery runs in a thread of the server: wait until its outcome is recorded."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with w.db.read() as session:
            made = session.execute(text("SELECT count(*) FROM webhook_attempts WHERE delivery_id = :id"),
                                   {"id": values["webhook_delivery"]}).scalar_one()
        if made:  # its outcome recorded (refused: the next retry is minutes away, and no job runs here)
            return
        time.sleep(0.05)
    raise AssertionError("the replayed webhook delivery was never recorded")


CASES += [
    Case("webhook_endpoint.create", "POST", "/v1/webhook-endpoints", None,
         {"url": WEBHOOK_URL + "/{uniq}", "event_types": ["balance.low"]}, MASTER),
    Case("webhook_endpoint.update", "PATCH", "/v1/webhook-endpoints/{endpoint_id}", "webhook_endpoint",
         {"description": "Matrix"}, MASTER, fresh=fresh_webhook_endpoint),
    Case("webhook_endpoint.delete", "DELETE", "/v1/webhook-endpoints/{endpoint_id}", "webhook_endpoint", None,
         MASTER, fresh=fresh_webhook_endpoint),
    Case("webhook_endpoint.rotate_secret", "POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
         "webhook_endpoint", None, MASTER, fresh=fresh_webhook_endpoint),
    Case("webhook_delivery.replay", "POST", "/v1/webhook-deliveries/{delivery_id}/replay", "webhook_delivery", None,
         MASTER, fresh=fresh_webhook_delivery, restore=_replayed_delivery_done),
]


# --- the world ---------------------------------------------------------------------------------------

def _answer(r: httpx.Response) -> dict:
    assert r.status_code in (200, 201), f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r.json()


class Api:
    def __init__(self, base_url: str, key: str):
        self.client = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"})

    def post(self, path: str, body=None) -> dict:
        return _answer(self.client.post(path, json=body))

    def patch(self, path: str, body) -> dict:
        return _answer(self.client.patch(path, json=body))


class World:
    def __init__(self, db, live_server):
        self.db = db
        self.base = live_server.base_url
        self.ws = make_workspace(db, name="Roles matrix")
        self.master = Api(self.base, self.ws.api_key)
        self.keys: dict[str, str] = {"master": self.ws.api_key}
        self.user_ids: dict[str, str] = {"master": self.ws.master_id}
        self.key_ids: dict[str, str] = {}
        self.ids: dict[str, str] = {"master": self.ws.master_id, "ws_name": "Roles matrix", "unit": "unit"}
        self.fresh: dict = {}
        self.clients: dict[str, httpx.Client] = {}
        self.state_cache: dict | None = None
        self.stats = {"attempted": 0, "acknowledged": 0, "refused": 0, "violations": 0, "holes": 0}
        self.started = time.monotonic()
        self.schema = httpx.get(self.base + "/openapi.json", timeout=30).json()
        self._build()

    def _build(self) -> None:
        m, ids = self.master, self.ids
        m.post("/v1/credit-types", {"code": "unit", "name": "Units"})
        ids["o1"] = m.post("/v1/offices", {"name": "Office 1"})["id"]
        ids["o2"] = m.post("/v1/offices", {"name": "Office 2"})["id"]
        ids["customer"] = m.post("/v1/customers", {"name": "Matrix customer"})["id"]
        ids["team2"] = m.post("/v1/teams", {"name": "Team 2"})["id"]
        for name, (role, perms) in CALLER_USERS.items():
            self.user_ids[name] = m.post("/v1/users", {
                "name": f"Matrix {name}", "is_staff": True, "role": role, "permissions": perms,
                "email": f"{name}@example.com", "primary_office_id": ids["o1"]})["id"]
        for name, perms, office in (("teammate", ["send_sms"], "o1"), ("sms_o2", ["send_sms"], "o2"),
                                    ("plain", [], "o1")):
            ids[name] = m.post("/v1/users", {"name": f"Matrix {name}", "is_staff": True, "permissions": perms,
                                             "email": f"{name}@example.com", "primary_office_id": ids[office]})["id"]
        ids.update({name: self.user_ids[name] for name in ("mem_sms_team", "mem_sms", "mgr_all")})
        m.post("/v1/teams", {"name": "Team T", "office_id": ids["o1"],
                             "member_ids": [self.user_ids["mem_sms_team"], ids["teammate"]]})
        ids["project"] = m.post("/v1/projects", {"name": "Project 1", "office_id": ids["o1"]})["id"]
        # A master's key that stops working when the master is deactivated.
        old = m.post("/v1/users", {"name": "Matrix old master", "is_staff": True, "role": "master",
                                   "email": "old.master@example.com"})["id"]
        self.user_ids["deactivated"] = self.ids["old_master"] = old
        for name, user in self.user_ids.items():
            if name != "master":
                created = m.post("/v1/api-keys", {"name": f"key of {name}", "user_id": user})
                self.keys[name], self.key_ids[name] = created["key"], created["id"]
        m.patch(f"/v1/users/{old}", {"is_active": False})
        # Billing: settings with monthly periods since 2020 (always one due), an address, an account.
        m.patch("/v1/billing/settings", {"default_currency": "AUD", "multi_currency": True,
                                         "enabled_currencies": ["EUR"], "credit_terms": {
                                             "credit_period_days": 30, "min_days": 14, "max_days": 60},
                                         "accounting_periods": {"frequency": "monthly", "start_date": "2020-01-01"}})
        ids["address"] = m.post(f"/v1/customers/{ids['customer']}/addresses",
                                {"line1": "1 Matrix St", "city": "Sydney", "country": "AU"})["id"]
        ids["account"] = m.post("/v1/accounts", {"customer_id": ids["customer"], "name": "Account 1"})["id"]
        ids["rating"] = m.post("/v1/credit-ratings", {"code": "R1", "name": "Rating 1"})["id"]
        ids["rule"] = m.post("/v1/override-rules", {"name": "Rule 1", "events": ["invoice_post"]})["id"]
        self.key_ids["master"] = next(k["id"] for k in _answer(m.client.get("/v1/api-keys"))["data"]
                                      if k["user_id"] == self.ws.master_id)
        for holder in ({"kind": "office", "id": ids["o1"]}, {"kind": "office", "id": ids["o2"]}, {"kind": "workspace"}):
            _grant(self, holder, 1_000_000, name="Funding")
        ids["pack_o2"] = _grant(self, {"kind": "office", "id": ids["o2"]}, 1_000_000, name="Office 2 pack")
        ids["pack_plain"] = _grant(self, {"kind": "user", "id": ids["plain"]}, 1_000_000, name="Plain's pack")
        for holder, quantity in ((POOL, 1000), ({"kind": "user", "id": ids["teammate"]}, 1000),
                                 ({"kind": "user", "id": ids["mem_sms_team"]}, 1000),
                                 ({"kind": "user", "id": ids["mem_sms"]}, 100),
                                 ({"kind": "user", "id": self.user_ids["mgr_all"]}, 100),
                                 ({"kind": "user", "id": self.ws.master_id}, 100),
                                 ({"kind": "user", "id": ids["sms_o2"]}, 100)):
            assert m.post("/v1/sms/purchases", {"for": holder, "quantity": quantity,
                                                "billing": BILLING})["status"] == "paid"

    def client(self, caller: str) -> httpx.Client:
        # One client per caller for the whole module: making one per request costs more than the request.
        if caller not in self.clients:
            self.clients[caller] = httpx.Client(base_url=self.base, timeout=30,
                                                headers={"Authorization": f"Bearer {self.keys[caller]}"})
        return self.clients[caller]

    def values(self, case: Case, caller: str) -> dict:
        role, _ = CALLER_USERS.get(caller, ("master", []))
        values = {**self.ids, "self": self.user_ids[caller], "self_name": f"Matrix {caller}", "self_role": role,
                  "own_key": self.key_ids[caller], "own_key_name": f"key of {caller}"}
        if caller == "master":
            values.update(self_name="Master", own_key_name="First key")
        if case.fresh is not None:
            slot = (case.id, caller) if case.fresh_per_caller else case.id
            if slot not in self.fresh:
                self.fresh[slot] = case.fresh(self, caller)
                self.state_cache = None
            values.update(self.fresh[slot])
        return values

    def used_up(self, case: Case, caller: str) -> None:
        """A 2xx changed the objects `fresh` made: the next caller gets new ones."""
        self.fresh.pop((case.id, caller) if case.fresh_per_caller else case.id, None)
        self.state_cache = None

    def close(self) -> None:
        self.master.client.close()
        for client in self.clients.values():
            client.close()


_uniq = itertools.count()


def _fill(template, values: dict):
    if callable(template):
        return template(values)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        if "{uniq}" in template:
            return template.replace("{uniq}", f"{next(_uniq)}x{secrets.token_hex(3)}")
    return template


# --- what "nothing changed" means: every row of the workspace -------------------------------------------

APPEND_ONLY = {"audit_events", "ledger_transfers"}    # compared by count: rows are only ever added
VOLATILE = {("api_keys", "last_used_at")}              # written by authentication itself, at most once a minute


@functools.cache
def _state_sql(dialect: str) -> str:
    """One statement (one round trip) that reads every row of the workspace, each table as a JSON array
    of rows in primary key order; append-only tables by count."""
    columns = {}
    for name, table in ((t.name, t) for t in models.metadata.sorted_tables):
        if name == "workspaces" or "workspace_id" in table.c:
            columns[name] = ([c.name for c in table.c if (name, c.name) not in VOLATILE],
                             ", ".join(c.name for c in table.primary_key.columns))
    parts = []
    for name, (cols, order) in columns.items():
        where = "id = :ws" if name == "workspaces" else "workspace_id = :ws"
        listed = ", ".join(cols)
        if name in APPEND_ONLY:
            expr = f"SELECT count(*) FROM {name} WHERE {where}"
        elif dialect == "postgresql":
            expr = f"SELECT json_agg(json_build_array({listed}) ORDER BY {order})::text FROM {name} WHERE {where}"
        else:
            expr = (f"SELECT json_group_array(json_array({listed})) FROM "
                    f"(SELECT {listed} FROM {name} WHERE {where} ORDER BY {order})")
        parts.append(f"({expr}) AS {name}")
    return "SELECT " + ", ".join(parts)


def workspace_state(db, workspace_id: str) -> dict:
    """Every row of the workspace, as stored."""
    sql = _state_sql(db.dialect)
    with db.read() as session:
        return dict(session.execute(text(sql), {"ws": workspace_id}).one()._mapping)


def _changes(before: dict, after: dict, *, with_idempotency: bool) -> list[str]:
    out = []
    for name, was in before.items():
        if name == "idempotency_keys" and not with_idempotency:
            continue
        if was != after[name]:
            if name in APPEND_ONLY:
                out.append(f"{name}: {was} -> {after[name]} rows")
                continue
            old, new = json.loads(was or "[]"), json.loads(after[name] or "[]")
            added = [r for r in new if r not in old][:3]
            removed = [r for r in old if r not in new][:3]
            out.append(f"{name}: +{added} -{removed}"[:600])
    return out


def _audit_by(db, workspace_id: str, user_id: str) -> int:
    with db.read() as session:
        return session.execute(text("SELECT count(*) FROM audit_events WHERE workspace_id = :ws AND actor_id = :u"),
                               {"ws": workspace_id, "u": user_id}).scalar_one()


def _pairs():
    for case in CASES:
        for caller in CALLERS:
            reason = case.holes.get(caller)
            marks = [pytest.mark.xfail(strict=True, reason=f"HOLE: {reason}")] if reason else []
            yield pytest.param(case, caller, id=f"{case.id}-{caller}", marks=marks)


@pytest.fixture(scope="module")
def world(db, live_server):
    w = World(db, live_server)
    yield w
    s = w.stats
    summary.add({"test": "authorization roles", "db": db.dialect, "attempted": s["attempted"],
                 "acknowledged": s["acknowledged"], "refused": s["refused"], "violations": s["violations"],
                 "seconds": round(time.monotonic() - w.started, 1),
                 "notes": f"{len(CALLERS)} callers x {len(CASES)} cases, one workspace; "
                          f"{s['holes']} known holes (xfail)"})
    w.close()


@pytest.mark.parametrize("case,caller", list(_pairs()))
def test_roles_matrix(request, db, world, case: Case, caller: str):
    w = world
    values = w.values(case, caller)
    path = case.path
    if case.target is not None:
        # One target per path parameter, in order (a str for one).
        for target in (case.target,) if isinstance(case.target, str) else case.target:
            path = path.replace(path[path.index("{"):path.index("}") + 1], values[target], 1)
    body = _fill(case.body, values)
    expected = case.expected(caller)
    allowed = expected < 400
    before = w.state_cache if (w.state_cache is not None and not allowed) else workspace_state(db, w.ws.id)
    audit_before = _audit_by(db, w.ws.id, w.user_ids[caller]) if allowed else 0
    kwargs = {"json": body} if body is not None else {}
    r = w.client(caller).request(case.method, path, headers={"Idempotency-Key": f"matrix:{case.id}"}, **kwargs)
    w.stats["attempted"] += 1
    problems = []
    if r.status_code != expected:
        problems.append(f"answered {r.status_code} {r.text[:400]}, expected {expected}")
    if r.headers.get("Idempotent-Replayed"):
        problems.append("answered with another caller's stored answer (Idempotent-Replayed)")
    if r.status_code < 400:
        w.used_up(case, caller)
    if allowed:
        w.stats["acknowledged"] += r.status_code < 400
        if r.status_code < 400 and case.audited and _audit_by(db, w.ws.id, w.user_ids[caller]) <= audit_before:
            problems.append("no audit row by the caller")
        if r.status_code < 400 and case.restore is not None:
            case.restore(w, caller, values)
        w.state_cache = None
    else:
        w.stats["refused"] += r.status_code >= 400
        after = workspace_state(db, w.ws.id)
        changed = _changes(before, after, with_idempotency=expected in (401, 403))
        if changed:
            problems.append("a refused request changed the workspace: " + "; ".join(changed))
        w.state_cache = None if changed or r.status_code < 400 else after
    if problems:
        w.stats["holes" if request.node.get_closest_marker("xfail") else "violations"] += 1
    assert not problems, f"[{caller}] {case.method} {path} {body}: " + " | ".join(problems)


def test_every_write_endpoint_is_in_the_matrix(world):
    """A write endpoint without a case here fails: coverage cannot fall behind the API."""
    writes = {(method.upper(), path) for path, ops in world.schema["paths"].items()
              for method in ops if method in ("post", "put", "patch", "delete")}
    covered = {(c.method, c.path) for c in CASES}
    assert not writes - covered, f"write endpoints without a case in CASES: {sorted(writes - covered)}"
    assert not covered - writes, f"cases for endpoints that no longer exist: {sorted(covered - writes)}"
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique (they are the idempotency keys)"

