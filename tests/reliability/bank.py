"""The bank test driver: concurrent clients move credits while the server is SIGKILLed and restarted.

Two workspaces of ten holders each (offices, users, customers) start with a fixed total. Client
threads send consumptions, holds, captures, releases, transfers and grants over real HTTP, each
logical operation under its own Idempotency-Key. A killer thread SIGKILLs `creditdesk serve` at
random moments and starts it again on the same database. A request that times out, is cut off,
is answered 5xx or "still in progress" (409) is retried with the same key and the same body until
it gets a definite answer: applied (2xx) or refused (4xx, e.g. insufficient credits).

Every definite answer feeds a model of what the books must hold. Afterwards `check()` compares the
model with the API (balances, consumptions by reference), the tables (exactly one hold, transfer,
pack per acknowledged operation, none for a refused one), the ledger's sink accounts (conservation),
the audit log, idempotent replays of every acknowledged request, and `creditdesk ledger verify`.

Run it by hand against any database:
    python -m tests.reliability.bank --database-url sqlite:////tmp/bank.db --clients 16 --seconds 120 --kills 12
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select

from creditdesk import migrate
from creditdesk.audit import AuditEvent
from creditdesk.credits.models import CreditTransfer, CreditType, Hold, Pack
from creditdesk.db import Database
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties import service as parties
from tests.reliability.server import LiveServer

CREDIT_TYPE = "unit"
INITIAL_PER_HOLDER = 150
WEIGHTS = {"consume": 30, "hold": 16, "capture": 12, "release": 8, "transfer": 22, "grant": 12}
# Statuses that say nothing about whether the request was applied: retry with the same key.
IN_PROGRESS = "idempotency_request_in_progress"


@dataclass
class BankConfig:
    clients: int = 4
    seconds: float = 8.0
    min_kills: int = 2
    kill_gap: tuple[float, float] = (1.0, 2.5)
    request_timeout: float = 4.0
    # A request cut off by a kill leaves its key "in flight"; a retry may take it over after this.
    idempotency_lock_seconds: int = 3
    hard_limit_seconds: float = 300.0
    seed: int = 1
    replay_sample: int | None = None  # None: re-send every acknowledged request
    # `creditdesk serve` processes on the one database, clients spread over them (PostgreSQL: the way
    # past one machine); the killer SIGKILLs one of them at a time.
    servers: int = 1


@dataclass
class Holder:
    kind: str
    id: str

    def ref(self) -> dict:
        return {"kind": self.kind, "id": self.id}


@dataclass
class Workspace:
    id: str
    api_key: str
    holders: list[Holder] = field(default_factory=list)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Op:
    key: str
    kind: str
    ws: Workspace
    method: str
    path: str
    body: dict | None
    meta: dict = field(default_factory=dict)
    attempts: int = 0
    ambiguous: bool = False  # some attempt ended without telling whether it was applied
    status: int | None = None
    response: dict | None = None
    replayed: bool = False

    @property
    def applied(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class BankResult:
    backend: str
    config: BankConfig
    ops: list[Op]
    kills: int
    seconds: float
    transport_errors: int = 0
    server_errors: list[str] = field(default_factory=list)
    in_progress_retries: int = 0
    violations: list[str] = field(default_factory=list)
    checks: Counter = field(default_factory=Counter)
    self_test: list[str] = field(default_factory=list)
    servers: int = 1

    @property
    def attempted(self) -> int:
        return len(self.ops)

    @property
    def acknowledged(self) -> int:
        return sum(1 for op in self.ops if op.applied)

    @property
    def refused(self) -> int:
        return sum(1 for op in self.ops if op.status is not None and not op.applied)

    @property
    def ambiguous(self) -> int:
        return sum(1 for op in self.ops if op.ambiguous)

    @property
    def unresolved(self) -> int:
        return sum(1 for op in self.ops if op.status is None)

    @property
    def replayed_after_ambiguity(self) -> int:
        """Ambiguous operations whose retry was answered from the stored response: applied before the cut."""
        return sum(1 for op in self.ops if op.ambiguous and op.replayed)

    def row(self) -> dict:
        return {"test": "bank (kill -9)" + (f", {self.servers} servers" if self.servers > 1 else ""), "db": self.backend, "attempted": self.attempted,
                "acknowledged": self.acknowledged, "refused": self.refused, "ambiguous": self.ambiguous,
                "replayed": self.replayed_after_ambiguity, "kills": self.kills,
                "violations": len(self.violations), "seconds": round(self.seconds, 1)}


# --- setup ---------------------------------------------------------------------------------------

def _post(client: httpx.Client, ws: Workspace, path: str, body: dict) -> dict:
    response = client.post(path, json=body, headers={**ws.headers, "Idempotency-Key": new_id("setup")})
    if response.status_code not in (200, 201):
        raise RuntimeError(f"setup {path} -> {response.status_code} {response.text}")
    return response.json()


def setup_workspaces(db: Database, base_url: str, *, count: int = 2, holders_each: int = 10) -> list[Workspace]:
    """Workspaces made by the service (as the CLI does), holders and initial packs over the API."""
    workspaces = []
    for n in range(count):
        def make(session, n=n):
            ws, _user, _key, secret = parties.create_workspace(
                session, name=f"Bank {n}", master_name="Bank master",
                master_email=f"bank-{n}-{new_id('m')[-8:]}@example.com", master_password="correct horse battery")
            return Workspace(ws.id, secret)
        workspaces.append(db.write(make))
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for ws in workspaces:
            _post(client, ws, "/v1/credit-types", {"code": CREDIT_TYPE, "name": "Bank units"})
            kinds = ["office", "office", "office", "office", "user", "user", "user", "customer", "customer",
                     "customer"]
            for i, kind in enumerate(kinds[:holders_each]):
                if kind == "office":
                    obj = _post(client, ws, "/v1/offices", {"name": f"Office {i}"})
                elif kind == "user":
                    obj = _post(client, ws, "/v1/users", {"name": f"User {i}", "role": "member"})
                else:
                    obj = _post(client, ws, "/v1/customers", {"name": f"Customer {i}"})
                holder = Holder(kind, obj["id"])
                ws.holders.append(holder)
                _post(client, ws, "/v1/packs", {"holder": holder.ref(), "credit_type": CREDIT_TYPE,
                                                "quantity": INITIAL_PER_HOLDER, "name": "initial"})
    return workspaces


# --- the clients ---------------------------------------------------------------------------------

class Run:
    def __init__(self, servers: list[LiveServer], workspaces: list[Workspace], config: BankConfig):
        self.servers = servers
        self.workspaces = workspaces
        self.config = config
        self.ops: list[Op] = []
        self.ops_lock = threading.Lock()
        self.stop = threading.Event()
        self.give_up_at = time.monotonic() + config.hard_limit_seconds
        self.transport_errors = 0
        self.server_errors: list[str] = []
        self.in_progress_retries = 0
        self.killer_error: BaseException | None = None

    # One logical operation: the same key and body until a definite answer.
    def send(self, client: httpx.Client, op: Op) -> None:
        with self.ops_lock:
            self.ops.append(op)
        backoff = 0.05
        while time.monotonic() < self.give_up_at:
            op.attempts += 1
            try:
                response = client.request(op.method, op.path, json=op.body,
                                          headers={**op.ws.headers, "Idempotency-Key": op.key})
            except (httpx.ConnectError, httpx.ConnectTimeout):
                with self.ops_lock:
                    self.transport_errors += 1  # never reached the server: not ambiguous
            except httpx.TransportError:
                with self.ops_lock:
                    self.transport_errors += 1
                op.ambiguous = True
            else:
                code = _problem_code(response)
                if response.status_code >= 500:
                    op.ambiguous = True
                    self.server_errors.append(f"{op.method} {op.path} -> {response.status_code} {response.text[:300]}")
                elif response.status_code == 409 and code == IN_PROGRESS:
                    with self.ops_lock:
                        self.in_progress_retries += 1
                else:
                    op.status = response.status_code
                    op.replayed = response.headers.get("Idempotent-Replayed") == "true"
                    try:
                        op.response = response.json()
                    except ValueError:
                        op.response = {"raw": response.text}
                    return
            time.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 1.0)

    def client_loop(self, index: int) -> None:
        rng = random.Random(self.config.seed * 1000 + index)
        pending: list[Op] = []  # this client's holds that are still pending (by the model)
        kinds, weights = zip(*WEIGHTS.items())
        server = self.servers[index % len(self.servers)]
        with httpx.Client(base_url=server.base_url, timeout=self.config.request_timeout) as client:
            while not self.stop.is_set() and time.monotonic() < self.give_up_at:
                kind = rng.choices(kinds, weights)[0]
                if kind in ("capture", "release") and not pending:
                    kind = "hold"
                op = self.make_op(rng, kind, pending)
                self.send(client, op)
                if op.kind == "hold" and op.applied:
                    pending.append(op)

    def make_op(self, rng: random.Random, kind: str, pending: list[Op]) -> Op:
        key = new_id("bank")
        if kind in ("capture", "release"):
            hold_op = pending.pop(rng.randrange(len(pending)))
            hold_id = hold_op.response["id"]
            if kind == "capture":
                body = {"amount": rng.randint(1, hold_op.meta["amount"])} if rng.random() < 0.5 else {}
                return Op(key, kind, hold_op.ws, "POST", f"/v1/holds/{hold_id}/capture", body,
                          meta={"hold_key": hold_op.key, "hold_id": hold_id})
            return Op(key, kind, hold_op.ws, "POST", f"/v1/holds/{hold_id}/release", None,
                      meta={"hold_key": hold_op.key, "hold_id": hold_id})
        ws = rng.choice(self.workspaces)
        holder = rng.choice(ws.holders)
        if kind == "consume":
            amount = rng.randint(1, 40)
            return Op(key, kind, ws, "POST", "/v1/consumptions",
                      {"context": holder.ref(), "credit_type": CREDIT_TYPE, "amount": amount,
                       "reference": {"kind": "bank", "id": key}}, meta={"holder": holder, "amount": amount})
        if kind == "hold":
            amount = rng.randint(1, 20)
            return Op(key, kind, ws, "POST", "/v1/holds",
                      {"context": holder.ref(), "credit_type": CREDIT_TYPE, "amount": amount,
                       "timeout_seconds": 86400, "reference": {"kind": "bank", "id": key}},
                      meta={"holder": holder, "amount": amount})
        if kind == "transfer":
            to = rng.choice([h for h in ws.holders if h != holder])
            amount = rng.randint(1, 60)
            return Op(key, kind, ws, "POST", "/v1/transfers",
                      {"from": holder.ref(), "to": to.ref(), "credit_type": CREDIT_TYPE, "amount": amount,
                       "memo": key}, meta={"holder": holder, "to": to, "amount": amount})
        quantity = rng.randint(10, 50)
        return Op(key, "grant", ws, "POST", "/v1/packs",
                  {"holder": holder.ref(), "credit_type": CREDIT_TYPE, "quantity": quantity, "name": "bank grant",
                   "external_ref": key}, meta={"holder": holder, "amount": quantity})

    def killer_loop(self, started: float) -> None:
        rng = random.Random(self.config.seed)
        try:
            while not self.stop.is_set():
                self.stop.wait(rng.uniform(*self.config.kill_gap))
                if self.stop.is_set():
                    break
                victim = rng.choice(self.servers)
                victim.kill()
                time.sleep(rng.uniform(0, 0.3))
                victim.start()
                kills = sum(server.kills for server in self.servers)
                if kills >= self.config.min_kills and time.monotonic() - started >= self.config.seconds:
                    self.stop.set()
        except BaseException as exc:  # surfaced by run(); the clients must stop either way
            self.killer_error = exc
            self.stop.set()

    def run(self) -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=self.client_loop, args=(i,), name=f"bank-client-{i}", daemon=True)
                   for i in range(self.config.clients)]
        killer = threading.Thread(target=self.killer_loop, args=(started,), name="bank-killer", daemon=True)
        for thread in threads:
            thread.start()
        killer.start()
        killer.join(self.config.hard_limit_seconds)
        self.stop.set()
        for thread in threads:
            thread.join(self.config.hard_limit_seconds)
        if self.killer_error is not None:
            raise self.killer_error
        return time.monotonic() - started


def _problem_code(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --- the model and the checks --------------------------------------------------------------------

def expected_books(workspaces: list[Workspace], ops: list[Op]) -> dict:
    """What every holder must hold, from the definite answers alone (order does not matter)."""
    total = {(ws.id, h.kind, h.id): INITIAL_PER_HOLDER for ws in workspaces for h in ws.holders}
    held = defaultdict(int)
    granted = {ws.id: INITIAL_PER_HOLDER * len(ws.holders) for ws in workspaces}
    consumed = defaultdict(int)
    holds = {op.response["id"]: op for op in ops if op.kind == "hold" and op.applied}
    hold_state = {hid: {"status": "pending", "captured": 0} for hid in holds}

    def k(ws, holder):
        return (ws.id, holder.kind, holder.id)

    for op in ops:
        if not op.applied:
            continue
        m = op.meta
        if op.kind == "grant":
            total[k(op.ws, m["holder"])] += m["amount"]
            granted[op.ws.id] += m["amount"]
        elif op.kind == "consume":
            total[k(op.ws, m["holder"])] -= op.response["amount"]
            consumed[op.ws.id] += op.response["amount"]
        elif op.kind == "hold":
            held[k(op.ws, m["holder"])] += m["amount"]
        elif op.kind == "transfer":
            total[k(op.ws, m["holder"])] -= m["amount"]
            total[k(op.ws, m["to"])] += m["amount"]
        elif op.kind in ("capture", "release"):
            hold_op = holds[m["hold_id"]]
            owner = k(hold_op.ws, hold_op.meta["holder"])
            held[owner] -= hold_op.meta["amount"]
            if op.kind == "capture":
                captured = op.response["captured_amount"]
                total[owner] -= captured
                consumed[op.ws.id] += captured
                hold_state[m["hold_id"]] = {"status": "captured", "captured": captured}
            else:
                hold_state[m["hold_id"]] = {"status": "released", "captured": 0}
    return {"total": total, "held": held, "granted": granted, "consumed": consumed, "holds": hold_state}


def check(db: Database, server: LiveServer, workspaces: list[Workspace], result: BankResult, *,
          replays: bool = True, verify: bool = True) -> None:
    v = result.violations
    ops = result.ops
    for op in ops:
        if op.status is None:
            v.append(f"{op.kind} {op.key}: no definite answer after {op.attempts} attempts")
        elif op.status not in (200, 201, 409):
            v.append(f"{op.kind} {op.key}: unexpected status {op.status} {op.response}")
        elif op.status == 409 and (op.response or {}).get("code") != "insufficient_credits":
            v.append(f"{op.kind} {op.key}: refused with {op.response}")
    for error in result.server_errors:
        v.append(f"5xx: {error}")
    resolved = [op for op in ops if op.status is not None]
    books = expected_books(workspaces, resolved)

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        # Balances of every holder, from the API, against the model.
        for ws in workspaces:
            for h in ws.holders:
                r = client.get("/v1/balances", params={"holder_kind": h.kind, "holder_id": h.id,
                                                       "credit_type": CREDIT_TYPE}, headers=ws.headers)
                got = r.json()["data"][0]
                want_total = books["total"][(ws.id, h.kind, h.id)]
                want_held = books["held"][(ws.id, h.kind, h.id)]
                result.checks["balances"] += 1
                if (got["total"], got["held"], got["available"]) != (want_total, want_held, want_total - want_held):
                    v.append(f"balance of {h.kind} {h.id}: API total/held/available {got['total']}/{got['held']}/"
                             f"{got['available']}, expected {want_total}/{want_held}/{want_total - want_held}")

        # Consumptions: the API lists exactly the acknowledged ones, each once, by reference id.
        for ws in workspaces:
            listed = _all_pages(client, "/v1/consumptions", ws, {"reference_kind": "bank", "limit": 500})
            by_ref = Counter(c["reference"]["id"] for c in listed)
            acked = {op.key: op for op in ops if op.kind == "consume" and op.ws is ws and op.applied}
            for key, n in by_ref.items():
                if n != 1:
                    v.append(f"consumption {key} listed {n} times")
                if key not in acked:
                    op = next((o for o in ops if o.key == key), None)
                    v.append(f"consumption {key} exists but its request was "
                             f"{'refused: ' + str(op.response) if op else 'never sent'}")
            for key, op in acked.items():
                result.checks["consumptions"] += 1
                if by_ref.get(key) != 1:
                    v.append(f"acknowledged consumption {key} listed {by_ref.get(key, 0)} times")
            # Filtering by one reference id finds the same (a sample; the filter is what users call).
            for op in list(acked.values())[:25]:
                r = client.get("/v1/consumptions", params={"reference_id": op.key}, headers=ws.headers)
                data = r.json()["data"]
                if [c["id"] for c in data] != [op.response["id"]]:
                    v.append(f"GET /v1/consumptions?reference_id={op.key} -> {[c['id'] for c in data]}, "
                             f"expected [{op.response['id']}]")

        # Replays: every acknowledged request sent again with its key answers the stored response.
        sample = [op for op in ops if op.status is not None] if replays else []
        if result.config.replay_sample is not None and len(sample) > result.config.replay_sample:
            sample = random.Random(7).sample(sample, result.config.replay_sample)
        for op in sample:
            r = client.request(op.method, op.path, json=op.body, headers={**op.ws.headers, "Idempotency-Key": op.key})
            result.checks["replays"] += 1
            if r.status_code != op.status or r.headers.get("Idempotent-Replayed") != "true":
                v.append(f"replay of {op.kind} {op.key}: {r.status_code} replayed="
                         f"{r.headers.get('Idempotent-Replayed')}, first answer {op.status}")
            elif op.applied and r.json().get("id") != op.response.get("id"):
                v.append(f"replay of {op.kind} {op.key} answered another object: {r.json().get('id')} "
                         f"!= {op.response.get('id')}")

    # The tables: exactly one object per acknowledged operation, none for a refused one.
    with db.read() as session:
        for ws in workspaces:
            ws_ops = [op for op in resolved if op.ws is ws]
            holds = Counter(session.scalars(select(Hold.reference_id).where(
                Hold.workspace_id == ws.id, Hold.reference_kind == "bank")))
            xfers = Counter(session.scalars(select(CreditTransfer.memo).where(
                CreditTransfer.workspace_id == ws.id, CreditTransfer.memo.like("bank_%"))))
            grants = Counter(session.scalars(select(Pack.external_ref).where(
                Pack.workspace_id == ws.id, Pack.credit_transfer_id.is_(None), Pack.external_ref.like("bank_%"))))
            for kind, found in (("hold", holds), ("transfer", xfers), ("grant", grants)):
                keys = {op.key: op for op in ws_ops if op.kind == kind}
                for key, op in keys.items():
                    result.checks[kind + "s"] += 1
                    want = 1 if op.applied else 0
                    if found.get(key, 0) != want:
                        v.append(f"{kind} {key} ({'applied' if op.applied else 'refused'}) found "
                                 f"{found.get(key, 0)} times")
                for key in set(found) - set(keys):
                    v.append(f"{kind} {key} exists but was never acknowledged nor refused")
            # Holds end as the model says (captured amount, released, still pending).
            for hold in session.scalars(select(Hold).where(Hold.workspace_id == ws.id, Hold.reference_kind == "bank")):
                want = books["holds"].get(hold.id)
                if want is None:
                    continue
                result.checks["hold states"] += 1
                if (hold.status, hold.captured_amount) != (want["status"], want["captured"]):
                    v.append(f"hold {hold.id}: {hold.status}/{hold.captured_amount}, expected "
                             f"{want['status']}/{want['captured']}")
            # One audit row per applied operation.
            actions = Counter(session.scalars(select(AuditEvent.action).where(AuditEvent.workspace_id == ws.id)))
            for kind, action in (("consume", "consumption.create"), ("hold", "hold.create"),
                                 ("capture", "hold.capture"), ("release", "hold.release"),
                                 ("transfer", "credit_transfer.create")):
                want = sum(1 for op in ws_ops if op.kind == kind and op.applied)
                result.checks["audit"] += 1
                if actions.get(action, 0) != want:
                    v.append(f"workspace {ws.id}: {actions.get(action, 0)} audit rows {action}, {want} applied")
            # Conservation in the ledger: granted = held by packs + consumed + breakage.
            ct = session.scalar(select(CreditType).where(CreditType.workspace_id == ws.id,
                                                         CreditType.code == CREDIT_TYPE))
            sinks = ledger.recomputed_totals(session, account_ids=[ct.issuance_account_id, ct.consumed_account_id,
                                                                   ct.breakage_account_id])
            dp, cp, _, _ = sinks.get(ct.issuance_account_id, (0, 0, 0, 0))
            issued = dp - cp
            dp, cp, _, _ = sinks.get(ct.consumed_account_id, (0, 0, 0, 0))
            consumed = cp - dp
            dp, cp, _, _ = sinks.get(ct.breakage_account_id, (0, 0, 0, 0))
            breakage = cp - dp
            in_packs = session.scalar(select(func.coalesce(func.sum(LedgerAccount.credits_posted
                                                                     - LedgerAccount.debits_posted), 0))
                                      .join(Pack, Pack.ledger_account_id == LedgerAccount.id)
                                      .where(Pack.workspace_id == ws.id))
            result.checks["conservation"] += 1
            want_in_packs = sum(t for (wid, _, _), t in books["total"].items() if wid == ws.id)
            figures = (issued, in_packs, consumed, breakage)
            wanted = (books["granted"][ws.id], want_in_packs, books["consumed"][ws.id], 0)
            if figures != wanted or issued != in_packs + consumed + breakage:
                v.append(f"workspace {ws.id}: ledger issued/in packs/consumed/breakage {figures}, "
                         f"expected {wanted}")

    if not verify:
        return
    # The ledger's own invariants, by the command an operator runs.
    proc = subprocess.run([sys.executable, "-m", "creditdesk.cli", "ledger", "verify", "--database-url",
                           server.database_url], capture_output=True, text=True, timeout=300)
    result.checks["ledger verify"] += 1
    if proc.returncode != 0:
        v.append(f"creditdesk ledger verify exited {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")


def self_test(db: Database, server: LiveServer, workspaces: list[Workspace], result: BankResult) -> list[str]:
    """The checks must not be vacuous: told that one applied consumption was refused and that one
    applied transfer was never sent, they must complain about both."""
    import copy

    consume = next((op for op in result.ops if op.kind == "consume" and op.applied), None)
    transfer = next((op for op in result.ops if op.kind == "transfer" and op.applied), None)
    if consume is None or transfer is None:
        return ["self-test skipped: no applied consumption or transfer"]
    flipped = copy.copy(consume)
    flipped.status, flipped.response = 409, {"code": "insufficient_credits"}
    ops = [flipped if op is consume else op for op in result.ops if op is not transfer]
    lied = BankResult(result.backend, result.config, ops, result.kills, result.seconds)
    check(db, server, workspaces, lied, replays=False, verify=False)
    missed = [key for key in (consume.key, transfer.key) if not any(key in msg for msg in lied.violations)]
    return [f"self-test: the checks did not notice a tampered {key}" for key in missed]


def _all_pages(client: httpx.Client, path: str, ws: Workspace, params: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        r = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}, headers=ws.headers)
        r.raise_for_status()
        page = r.json()
        items.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def run_bank(database_url: str, config: BankConfig, log_path: Path, *, backend: str) -> BankResult:
    """Migrate, set up, run the clients and the killer, restart once more, check. Never raises on violations."""
    db = Database(database_url)
    try:
        migrate.upgrade(db)
        env = {"CREDITDESK_IDEMPOTENCY_LOCK_SECONDS": str(config.idempotency_lock_seconds),
               "CREDITDESK_JOBS_INTERVAL_SECONDS": "5"}
        servers = [LiveServer(database_url, log_path.with_name(f"{log_path.stem}-{n}{log_path.suffix}")
                              if n else log_path, env=env) for n in range(config.servers)]
        try:
            for server in servers:
                server.start()
            server = servers[0]
            workspaces = setup_workspaces(db, server.base_url)
            run = Run(servers, workspaces, config)
            seconds = run.run()
            # A last kill of every server after the clients stopped: what was acknowledged must survive it too.
            for each in servers:
                each.kill()
            server.start()
            result = BankResult(backend, config, run.ops, sum(each.kills for each in servers), seconds,
                                run.transport_errors, run.server_errors, run.in_progress_retries)
            result.servers = len(servers)
            check(db, server, workspaces, result)
            result.self_test = self_test(db, server, workspaces, result)
        finally:
            for each in servers:
                each.stop()
    finally:
        db.dispose()
    return result


def format_result(result: BankResult) -> str:
    kinds = Counter(op.kind for op in result.ops)
    applied = Counter(op.kind for op in result.ops if op.applied)
    lines = [f"bank test on {result.backend} ({result.servers} server process{'es' if result.servers > 1 else ''}): "
             f"{result.attempted} attempted, {result.acknowledged} acknowledged, "
             f"{result.refused} refused, {result.ambiguous} ambiguous ({result.replayed_after_ambiguity} of them "
             f"had been applied and were replayed), {result.unresolved} unresolved, {result.kills} kills, "
             f"{result.transport_errors} transport errors, {result.in_progress_retries} in-progress retries, "
             f"{len(result.violations)} violations, {result.seconds:.1f}s",
             "  per kind (applied/attempted): " + ", ".join(f"{k} {applied[k]}/{kinds[k]}" for k in WEIGHTS),
             "  checks: " + ", ".join(f"{k} {n}" for k, n in sorted(result.checks.items()))]
    lines += [f"  VIOLATION: {msg}" for msg in result.violations[:50]]
    lines += [f"  {msg}" for msg in result.self_test] or ["  self-test: a tampered copy of the answers was caught"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="A database of its own (it is migrated).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--servers", type=int, default=1, help="serve processes on the database, clients spread")
    args = parser.parse_args(argv)
    config = BankConfig(clients=args.clients, seconds=args.seconds, min_kills=args.kills, seed=args.seed,
                        servers=args.servers,
                        kill_gap=(2.0, 6.0), hard_limit_seconds=max(600.0, args.seconds * 4))
    log = Path(tempfile.mkdtemp(prefix="creditdesk-bank-")) / "server.log"
    backend = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    result = run_bank(args.database_url, config, log, backend=backend)
    print(format_result(result))
    print(f"server log: {log}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
