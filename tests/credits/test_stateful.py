"""The credit ledger against a model: a hypothesis state machine drives grant / consume / hold / capture /
release / reverse / transfer / expire / hold timeout / change holder / void through the real API (with
Idempotency-Keys) and checks after every step that each pack and each holder's balances match a small
in-memory model, that nothing is negative, that `ledger verify` is clean, and that replaying a request
with its idempotency key never applies it twice.

The model is written from the rules (burn order: priority, soonest expiry, free before paid, oldest;
expired or voided packs send returned credits to breakage; a hold on an expiring pack is honoured
until its timeout), not from the code. Time only moves through the injected clock.

CREDITDESK_STATEFUL_EXAMPLES=500 runs a longer search.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from creditdesk.jobs import runner
from creditdesk.ledger import service as ledger
from tests.conftest import make_workspace

EXAMPLES = int(os.environ.get("CREDITDESK_STATEFUL_EXAMPLES", "20"))
STEPS = int(os.environ.get("CREDITDESK_STATEFUL_STEPS", "30"))
FAR = datetime.max.replace(tzinfo=UTC)


@dataclass
class MPack:
    id: str
    holder: tuple[str, str | None]
    priority: int
    expires_at: datetime | None
    is_paid: bool
    created_at: datetime
    posted: int  # credits in the pack, held ones included
    pending: int = 0  # held
    status: str = "active"

    def burn_key(self):
        return (self.priority, self.expires_at or FAR, self.is_paid, self.created_at, self.id)

    def usable(self, now: datetime) -> bool:
        return self.status == "active" and (self.expires_at is None or self.expires_at > now)

    @property
    def available(self) -> int:
        return self.posted - self.pending

    def refresh(self) -> None:
        if self.status in ("expired", "voided"):
            return
        self.status = "depleted" if self.posted == 0 and self.pending == 0 else "active"


@dataclass
class MHold:
    id: str
    amount: int
    timeout_at: datetime
    lines: list[tuple[str, int]]
    status: str = "pending"
    captured: list[tuple[str, int]] = field(default_factory=list)
    reversed: bool = False


@dataclass
class MConsumption:
    id: str
    lines: list[tuple[str, int]]
    reversed: bool = False


@dataclass
class Sent:
    """A request as sent, with the answer it got: replayed later with the same key."""
    method: str
    path: str
    body: dict | None
    key: str
    status: int
    answer: dict
    at: datetime


class LedgerMachine(RuleBasedStateMachine):
    """One workspace per example; `client`, `db` and `clock` are bound by the test below."""

    client = None
    db = None
    clock = None

    def __init__(self):
        super().__init__()
        self.packs: dict[str, MPack] = {}
        self.holds: dict[str, MHold] = {}
        self.consumptions: dict[str, MConsumption] = {}
        self.sent: list[Sent] = []
        self.breakage = 0
        self.seq = 0

    # --- plumbing ------------------------------------------------------------------------------

    @initialize()
    def setup(self):
        ws = make_workspace(self.db, name="Stateful")
        self.ws = ws.id
        self.headers = {"Authorization": f"Bearer {ws.api_key}"}
        self.request("POST", "/v1/credit-types", {"code": "credits", "name": "Credits"}, expect=201)
        offices = [self.request("POST", "/v1/offices", {"name": f"Office {i}"}, expect=201)["id"] for i in range(2)]
        user = self.request("POST", "/v1/users", {"name": "User", "primary_office_id": offices[0]}, expect=201)["id"]
        self.holders = [("office", offices[0]), ("office", offices[1]), ("user", user), ("workspace", None)]

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def tick(self) -> None:
        # Every step is a second apart: creation times differ, so "oldest first" is well defined.
        self.clock.advance(seconds=1)

    def request(self, method: str, path: str, body: dict | None = None, *, expect: int | tuple = (200, 201),
                code: str | None = None) -> dict:
        self.seq += 1
        key = f"stateful-{self.seq}"
        r = self.client.request(method, path, json=body, headers={**self.headers, "Idempotency-Key": key})
        expected = (expect,) if isinstance(expect, int) else expect
        assert r.status_code in expected, f"{method} {path} {body}: {r.status_code} {r.text}"
        answer = r.json()
        if code is not None:
            assert answer.get("code") == code, f"{method} {path} {body}: expected {code}, got {answer}"
        self.sent.append(Sent(method, path, body, key, r.status_code, answer, self.now))
        return answer

    def holder_body(self, holder) -> dict:
        return {"kind": holder[0], "id": holder[1]}

    def eligible(self, holder) -> list[MPack]:
        return sorted((p for p in self.packs.values() if p.holder == holder and p.usable(self.now)),
                      key=MPack.burn_key)

    def plan(self, packs: list[MPack], amount: int) -> list[tuple[MPack, int]]:
        out, need = [], amount
        for p in packs:
            take = min(p.available, need)
            if take > 0:
                out.append((p, take))
                need -= take
        return out

    def release_model(self, hold: MHold, status: str) -> None:
        for pack_id, amount in hold.lines:
            self.give_back_held(self.packs[pack_id], amount)
        for pack_id, _ in hold.lines:
            self.packs[pack_id].refresh()
        hold.status = status

    def give_back_held(self, pack: MPack, amount: int) -> None:
        pack.pending -= amount
        if pack.status in ("expired", "voided"):
            pack.posted -= amount
            self.breakage += amount

    def lazy_release(self, candidates: list[MPack]) -> None:
        """Timed-out holds on the packs a consumption or hold looks at are released first."""
        ids = {p.id for p in candidates if p.pending}
        for hold in self.holds.values():
            if hold.status == "pending" and hold.timeout_at <= self.now and any(i in ids for i, _ in hold.lines):
                self.release_model(hold, "timed_out")

    def snapshot_model(self):
        return ({k: (p.posted, p.pending, p.status, p.holder) for k, p in self.packs.items()},
                {k: (h.status, h.reversed) for k, h in self.holds.items()},
                {k: c.reversed for k, c in self.consumptions.items()}, self.breakage)

    def restore_model(self, snap) -> None:
        packs, holds, cons, self.breakage = snap
        for k, (posted, pending, status, holder) in packs.items():
            p = self.packs[k]
            p.posted, p.pending, p.status, p.holder = posted, pending, status, holder
        for k, (status, rev) in holds.items():
            self.holds[k].status, self.holds[k].reversed = status, rev
        for k, rev in cons.items():
            self.consumptions[k].reversed = rev

    # --- rules ---------------------------------------------------------------------------------

    @rule(h=st.integers(0, 3), quantity=st.integers(1, 40), priority=st.sampled_from([10, 100, 100, 500]),
          expires_in_hours=st.one_of(st.none(), st.integers(1, 96)), paid=st.booleans())
    def grant(self, h, quantity, priority, expires_in_hours, paid):
        self.tick()
        holder = self.holders[h]
        expires = self.now + timedelta(hours=expires_in_hours) if expires_in_hours else None
        body = {"holder": self.holder_body(holder), "credit_type": "credits", "quantity": quantity,
                "name": f"Pack {self.seq}", "priority": priority, "is_paid": paid,
                "expires_at": expires.isoformat() if expires else None}
        if paid:
            body |= {"price_paid": quantity * 100, "currency": "EUR"}
        out = self.request("POST", "/v1/packs", body, expect=201)
        self.packs[out["id"]] = MPack(out["id"], holder, priority, expires, paid, self.now, quantity)

    @rule(h=st.integers(0, 3), amount=st.integers(1, 60), partial=st.booleans())
    def consume(self, h, amount, partial):
        self.tick()
        holder = self.holders[h]
        before = self.snapshot_model()
        self.lazy_release(self.eligible(holder))
        plan = self.plan(self.eligible(holder), amount)
        taken = sum(t for _, t in plan)
        body = {"context": self.holder_body(holder), "credit_type": "credits", "amount": amount,
                "allow_partial": partial}
        if taken == 0 or (taken < amount and not partial):
            self.restore_model(before)  # the refused request rolled back its lazy releases too
            self.request("POST", "/v1/consumptions", body, expect=409, code="insufficient_credits")
            return
        out = self.request("POST", "/v1/consumptions", body, expect=201)
        assert [(line["pack_id"], line["amount"]) for line in out["lines"]] == [(p.id, t) for p, t in plan]
        for p, t in plan:
            p.posted -= t
            p.refresh()
        self.consumptions[out["id"]] = MConsumption(out["id"], [(p.id, t) for p, t in plan])

    @rule(h=st.integers(0, 3), amount=st.integers(1, 40), timeout=st.sampled_from([600, 6 * 3600, 30 * 3600]))
    def hold(self, h, amount, timeout):
        self.tick()
        holder = self.holders[h]
        before = self.snapshot_model()
        self.lazy_release(self.eligible(holder))
        plan = self.plan(self.eligible(holder), amount)
        body = {"context": self.holder_body(holder), "credit_type": "credits", "amount": amount,
                "timeout_seconds": timeout}
        if sum(t for _, t in plan) < amount:
            self.restore_model(before)
            self.request("POST", "/v1/holds", body, expect=409, code="insufficient_credits")
            return
        out = self.request("POST", "/v1/holds", body, expect=201)
        assert [(line["pack_id"], line["amount"]) for line in out["lines"]] == [(p.id, t) for p, t in plan]
        for p, t in plan:
            p.pending += t
        self.holds[out["id"]] = MHold(out["id"], amount, self.now + timedelta(seconds=timeout),
                                      [(p.id, t) for p, t in plan])

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), whole=st.booleans())
    def capture(self, data, whole):
        self.tick()
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)))]
        amount = None if whole else data.draw(st.integers(1, hold.amount + 2))
        path = f"/v1/holds/{hold.id}/capture"
        body = {} if amount is None else {"amount": amount}
        if hold.status != "pending":
            self.request("POST", path, body, expect=409, code="hold_not_pending")
            return
        if self.now >= hold.timeout_at:
            self.request("POST", path, body, expect=409, code="hold_expired")
            return
        amount = hold.amount if amount is None else amount
        if amount > hold.amount:
            self.request("POST", path, body, expect=422, code="capture_exceeds_hold")
            return
        self.request("POST", path, body, expect=200)
        left = amount
        for pack_id, line in hold.lines:
            pack, take = self.packs[pack_id], min(left, line)
            left -= take
            pack.pending -= line
            pack.posted -= take
            if take:
                hold.captured.append((pack_id, take))
            if line - take and pack.status in ("expired", "voided"):
                pack.posted -= line - take
                self.breakage += line - take
        for pack_id, _ in hold.lines:
            self.packs[pack_id].refresh()
        hold.status = "captured"

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data):
        self.tick()
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)))]
        if hold.status != "pending":
            self.request("POST", f"/v1/holds/{hold.id}/release", None, expect=409, code="hold_not_pending")
            return
        self.request("POST", f"/v1/holds/{hold.id}/release", None, expect=200)
        self.release_model(hold, "released")

    def return_to_packs(self, lines: list[tuple[str, int]]) -> None:
        for pack_id, amount in lines:
            pack = self.packs[pack_id]
            pack.posted += amount
            dead = pack.status in ("expired", "voided") or (pack.expires_at is not None
                                                            and pack.expires_at <= self.now)
            if dead:
                pack.posted -= amount
                self.breakage += amount
                if pack.status == "depleted":
                    pack.status = "expired"
        for pack_id, _ in lines:
            self.packs[pack_id].refresh()

    @precondition(lambda self: self.consumptions)
    @rule(data=st.data())
    def reverse_consumption(self, data):
        self.tick()
        c = self.consumptions[data.draw(st.sampled_from(sorted(self.consumptions)))]
        path = f"/v1/consumptions/{c.id}/reverse"
        if c.reversed:
            self.request("POST", path, {"reason": "again"}, expect=409, code="already_reversed")
            return
        self.request("POST", path, {"reason": "refund"}, expect=200)
        self.return_to_packs(c.lines)
        c.reversed = True

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def reverse_hold(self, data):
        self.tick()
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)))]
        path = f"/v1/holds/{hold.id}/reverse"
        if hold.status != "captured":
            self.request("POST", path, {"reason": "x"}, expect=409, code="nothing_to_reverse")
            return
        if hold.reversed:
            self.request("POST", path, {"reason": "x"}, expect=409, code="already_reversed")
            return
        self.request("POST", path, {"reason": "refund"}, expect=200)
        self.return_to_packs(hold.captured)
        hold.reversed = True

    @rule(src=st.integers(0, 3), dst=st.integers(0, 3), amount=st.integers(1, 40))
    def transfer(self, src, dst, amount):
        self.tick()
        source, to = self.holders[src], self.holders[dst]
        body = {"from": self.holder_body(source), "to": self.holder_body(to), "credit_type": "credits",
                "amount": amount}
        if source == to:
            self.request("POST", "/v1/transfers", body, expect=422, code="same_holder")
            return
        plan = self.plan(self.eligible(source), amount)
        if sum(t for _, t in plan) < amount:
            self.request("POST", "/v1/transfers", body, expect=409, code="insufficient_credits")
            return
        out = self.request("POST", "/v1/transfers", body, expect=201)
        assert [(line["from_pack_id"], line["amount"]) for line in out["lines"]] == [(p.id, t) for p, t in plan]
        for (p, t), line in zip(plan, out["lines"]):
            p.posted -= t
            p.refresh()
            # The moved credits keep their expiry, priority and paid/free nature.
            self.packs[line["to_pack_id"]] = MPack(line["to_pack_id"], to, p.priority, p.expires_at, p.is_paid,
                                                   self.now, t)

    @precondition(lambda self: self.packs)
    @rule(data=st.data(), h=st.integers(0, 3))
    def change_holder(self, data, h):
        self.tick()
        pack = self.packs[data.draw(st.sampled_from(sorted(self.packs)))]
        to = self.holders[h]
        path = f"/v1/packs/{pack.id}/change-holder"
        body = {"holder": self.holder_body(to), "reason": "correction"}
        if pack.status == "voided":
            self.request("POST", path, body, expect=409, code="pack_not_active")
        elif pack.holder == to:
            self.request("POST", path, body, expect=422, code="same_holder")
        elif not pack.usable(self.now):
            self.request("POST", path, body, expect=409, code="pack_not_active")
        elif pack.available <= 0:
            self.request("POST", path, body, expect=409, code="nothing_to_move")
        else:
            # What is available moves, now, to a new pack of the new holder; held credits stay with their hold.
            out = self.request("POST", path, body, expect=200)
            assert (out["balance"], out["held"], out["origin_pack_id"]) == (pack.available, 0, pack.id)
            self.packs[out["id"]] = MPack(out["id"], to, pack.priority, pack.expires_at, pack.is_paid, self.now,
                                          pack.available)
            pack.posted -= pack.available
            pack.refresh()

    @precondition(lambda self: self.packs)
    @rule(data=st.data())
    def void(self, data):
        self.tick()
        pack = self.packs[data.draw(st.sampled_from(sorted(self.packs)))]
        path = f"/v1/packs/{pack.id}/void"
        if pack.status == "voided":
            self.request("POST", path, {"reason": "again"}, expect=409, code="pack_already_voided")
            return
        self.request("POST", path, {"reason": "mistake"}, expect=200)
        self.breakage += pack.available
        pack.posted -= pack.available
        pack.status = "voided"

    @rule(hours=st.integers(1, 48))
    def time_passes_and_jobs_run(self, hours):
        """Expiry and hold timeouts, by moving the clock and running the jobs (as `serve` does)."""
        self.clock.advance(hours=hours)
        runner.release_timed_out_holds(self.db, workspace_id=self.ws)
        runner.expire_due_packs(self.db, workspace_id=self.ws)
        for hold in self.holds.values():
            if hold.status == "pending" and hold.timeout_at <= self.now:
                self.release_model(hold, "timed_out")
        for pack in self.packs.values():
            if pack.status == "active" and pack.expires_at is not None and pack.expires_at <= self.now:
                self.breakage += pack.available
                pack.posted -= pack.available
                pack.status = "expired"

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay_with_the_same_key(self, data):
        """A retried request (same key, same body) answers as the first time and applies nothing."""
        recent = [s for s in self.sent if self.now - s.at < timedelta(hours=24)]  # keys are kept >= 24 h
        if not recent:
            return
        sent = data.draw(st.sampled_from(recent))
        r = self.client.request(sent.method, sent.path, json=sent.body,
                                headers={**self.headers, "Idempotency-Key": sent.key})
        assert (r.status_code, r.json()) == (sent.status, sent.answer)
        assert r.headers.get("Idempotent-Replayed") == "true"

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def packs_match_the_model(self):
        if not self.packs:
            return
        got = {}
        cursor = None
        while True:
            params = {"limit": 100, "status": ["active", "depleted", "expired", "voided"]}
            if cursor:
                params["cursor"] = cursor
            r = self.client.get("/v1/packs", params=params, headers=self.headers)
            assert r.status_code == 200, r.text
            page = r.json()
            for p in page["data"]:
                got[p["id"]] = (p["balance"], p["remaining"], p["held"], p["status"], (p["holder"]["kind"], p["holder"]["id"]))
            cursor = page["next_cursor"]
            if not cursor:
                break
        # An active pack past its expiry reads as expired before the job sweeps it.
        want = {k: (p.posted, p.available, p.pending, "expired" if p.status == "active" and not p.usable(self.now)
                    else p.status, (p.holder[0], p.holder[1] or self.ws))
                for k, p in self.packs.items()}
        assert got == want
        assert all(p.posted >= 0 and p.pending >= 0 and p.available >= 0 for p in self.packs.values())

    @invariant()
    def balances_match_the_model(self):
        if not hasattr(self, "holders"):
            return
        for holder in self.holders:
            params = {"holder_kind": holder[0], "credit_type": "credits"}
            if holder[1]:
                params["holder_id"] = holder[1]
            r = self.client.get("/v1/balances", params=params, headers=self.headers)
            assert r.status_code == 200, r.text
            (row,) = r.json()["data"]
            mine = [p for p in self.packs.values() if p.holder == holder]
            usable = [p for p in mine if p.usable(self.now)]
            want = {"available": sum(p.available for p in usable), "held": sum(p.pending for p in mine),
                    "total": sum(p.posted for p in usable) + sum(p.pending for p in mine if not p.usable(self.now))}
            assert {k: row[k] for k in want} == want, holder
            assert min(row["available"], row["held"], row["total"]) >= 0

    @invariant()
    def ledger_verifies_and_credits_are_conserved(self):
        if not hasattr(self, "ws"):
            return
        with self.db.read() as session:
            report = ledger.verify(session, workspace_id=self.ws)
        assert report.ok, report.problems
        granted = sum(p.posted for p in self.packs.values())  # what is still in packs
        consumed = sum(t for c in self.consumptions.values() if not c.reversed for _, t in c.lines) + sum(
            t for h in self.holds.values() if not h.reversed for _, t in h.captured)
        issued = self.issued()
        assert granted + consumed + self.breakage == issued

    def issued(self) -> int:
        # Grants are the packs with no origin; a transfer's packs were funded by their origin.
        return sum(s.body["quantity"] for s in self.sent
                   if s.method == "POST" and s.path == "/v1/packs" and s.status == 201)


@pytest.mark.timeout(1800)
def test_the_ledger_behaves_like_its_model(db, client, frozen_clock):
    LedgerMachine.client, LedgerMachine.db, LedgerMachine.clock = client, db, frozen_clock
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True, print_blob=True,
        suppress_health_check=list(HealthCheck)))
