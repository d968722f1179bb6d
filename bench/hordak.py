"""Workload 4: transfers between holders, creditdesk against django-hordak's `Account.transfer_to`,
on the same PostgreSQL server (synchronous_commit on, as shipped), each on a throwaway database of
its own (created here, dropped afterwards).

    .venv/bin/pip install -e '.[dev,bench]'     # django + django-hordak, only for this workload
    .venv/bin/python -m bench.hordak --transfers 2000 --clients 4

Like with like: both sides are driven in-process through their Python service layer, by the same
number of client threads, with the same plan of transfers (random pairs among the same holders, the
same amounts, from the same funded start). Neither goes through HTTP.

- creditdesk: `api.deps.WriteContext.run` (what POST /v1/transfers runs below the HTTP layer: the
  Idempotency-Key claim, `transfers.transfer_credits` and the stored response in one transaction).
- hordak: in `transaction.atomic()`, lock the source account (`select_for_update`), read its balance
  (`get_balance`) and refuse an overdraft, then `transfer_to`. That is what an application has to
  write around hordak to move prepaid credits safely; `transfer_to` alone does not check balances.
  Bare `transfer_to` (no lock, no balance check, may overdraw) is measured as well, for reference.

Exactly once: after the timed run every creditdesk request is sent again with its key (a client
retry), and a sample is sent twice at the same moment from two threads; then the effects are
counted (credit transfers, packs made by transfers, credits moved) and `ledger verify` is run. hordak
has no idempotency keys: a retried `transfer_to` is a second transfer (shown on a few retries).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, Queue

PG = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
GOAL = 5.0


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def _drive(plan: list, clients: int, one, on_exit=None) -> dict:
    """Run `one(item)` for every planned item from `clients` threads; throughput and latencies."""
    queue: Queue = Queue()
    for item in plan:
        queue.put(item)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker():
        mine, bad = [], []
        while True:
            try:
                item = queue.get_nowait()
            except Empty:
                break
            started = time.perf_counter()
            try:
                one(item)
            except Exception as exc:  # counted, and shown
                bad.append(f"{type(exc).__name__}: {exc}")
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)
        if on_exit:
            on_exit()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {"n": len(plan), "seconds": round(seconds, 2), "per_s": round(len(plan) / seconds, 1),
            "p50_ms": round(_pct(latencies, 0.5), 2), "p99_ms": round(_pct(latencies, 0.99), 2),
            "errors": len(errors), "first_errors": errors[:3]}


def _plan(holders: int, transfers: int, seed: int) -> list[tuple[int, int, int, str]]:
    rnd = random.Random(seed)
    out = []
    for i in range(transfers):
        a = rnd.randrange(holders)
        b = rnd.randrange(holders - 1)
        b = b + 1 if b >= a else b
        out.append((a, b, rnd.randrange(1, 4), f"bench-xfer-{seed}-{i}"))
    return out


# --- creditdesk ----------------------------------------------------------------------------------

def run_creditdesk(db_name: str, holders: int, funding: int, plan, clients: int, duplicates: int, log) -> dict:
    from sqlalchemy import func, select

    from creditdesk import idempotency, migrate
    from creditdesk.api.deps import WriteContext
    from creditdesk.credits import schemas as cs
    from creditdesk.credits import credit_types, packs, transfers
    from creditdesk.credits.models import CreditTransfer, Pack
    from creditdesk.db import Database
    from creditdesk.ledger import service as ledger
    from creditdesk.parties import schemas as ps
    from creditdesk.parties import service as parties

    db = Database(f"{PG}/{db_name}", pool_size=clients + 4)
    migrate.upgrade(db)

    def setup(session):
        ws, master, _key, _secret = parties.create_workspace(
            session, name="Bench", master_name="Master", master_email="bench@example.com",
            master_password="correct horse battery")
        actor = parties.actor_for_user(session, master)
        credit_types.create_credit_type(session, cs.CreditTypeCreate(code="credit", name="Credits"), actor=actor)
        offices = []
        for i in range(holders):
            office = parties.create_office(session, ps.OfficeCreate(name=f"Holder {i}"), actor=actor)
            packs.grant_pack(session, cs.PackCreate(holder={"kind": "office", "id": office.id},
                                                    credit_type="credit", quantity=funding, name="Funding"),
                             actor=actor)
            offices.append(office.id)
        return actor, offices

    actor, offices = db.write(setup)
    path = "/v1/transfers"
    outcomes: dict[str, list[int]] = {}
    outcome_lock = threading.Lock()

    def send(item):
        a, b, amount, key = item
        body = cs.TransferRequest.model_validate({"from": {"kind": "office", "id": offices[a]},
                                                  "to": {"kind": "office", "id": offices[b]},
                                                  "credit_type": "credit", "amount": amount})
        raw = json.dumps(body.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
        ctx = WriteContext(db=db, actor=actor, key=key, fingerprint=idempotency.request_fingerprint("POST", path, raw),
                           method="POST", path=path)

        def run(session, actor_):
            result = transfers.transfer_credits(session, body, actor=actor_)
            return transfers.transfer_out(session, result.transfer, result.lines).model_dump(mode="json",
                                                                                             by_alias=True)
        response = ctx.run(run, status_code=201)
        with outcome_lock:
            outcomes.setdefault(key, []).append(response.status_code)
        if response.status_code >= 500:
            raise RuntimeError(f"{response.status_code}: {response.body[:200]!r}")

    log(f"[4] creditdesk: {len(plan)} transfers, {clients} clients")
    timed = _drive(plan, clients, send)
    first = {k: v[0] for k, v in outcomes.items()}
    log("[4] creditdesk: every request again with its key (retries)")
    retried = _drive(plan, clients, send)
    log(f"[4] creditdesk: {duplicates} requests sent twice at once (two threads, one key)")
    extra = _plan(holders, duplicates, seed=99)
    dup_plan = [item for item in extra for _ in range(2)]
    concurrent = _drive(dup_plan, 2, send)
    with db.read() as s:
        effects = s.scalar(select(func.count()).select_from(CreditTransfer)) or 0
        moved = s.scalar(select(func.coalesce(func.sum(CreditTransfer.amount), 0))) or 0
        made = s.scalar(select(func.coalesce(func.sum(Pack.quantity), 0)).where(Pack.source == "transfer")) or 0
        report = ledger.verify(s)
        total = s.scalar(select(func.coalesce(func.sum(Pack.quantity), 0)).where(Pack.source != "transfer"))
    accepted = {k for k, v in first.items() if v == 201}
    dup_keys = {item[3] for item in extra}
    dup_accepted = {k for k in dup_keys if 201 in outcomes.get(k, [])}
    # A key answered 201 twice is fine only if the second was a replay: effects are counted below.
    expected_effects = len(accepted) + len(dup_accepted)
    expected_moved = sum(i[2] for i in plan if i[3] in accepted) + sum(i[2] for i in extra if i[3] in dup_accepted)
    refused = {k: v for k, v in first.items() if v != 201}
    replay_mismatch = sum(1 for k, v in outcomes.items() if k in first and len(set(v)) > 1 and k not in dup_keys)
    db.dispose()
    return {"timed": timed, "retries": retried, "concurrent_duplicates": concurrent,
            "accepted_first_time": len(accepted), "refused_first_time": len(refused),
            "refusal_statuses": sorted({v for v in refused.values()}),
            "effects": effects, "expected_effects": expected_effects, "credits_moved": moved,
            "expected_credits_moved": expected_moved, "packs_made_by_transfers_total": made,
            "retry_status_changed": replay_mismatch, "ledger_verify_ok": report.ok,
            "funded_total": total, "exactly_once": effects == expected_effects and moved == expected_moved == made
            and report.ok and replay_mismatch == 0}


# --- django-hordak -------------------------------------------------------------------------------

def run_hordak(db_name: str, holders: int, funding: int, plan, clients: int, log) -> dict:
    from urllib.parse import urlsplit

    where = urlsplit(PG)
    os.environ["BENCH_HORDAK_DB"] = db_name
    os.environ["BENCH_PGHOST"] = where.hostname or "127.0.0.1"
    os.environ["BENCH_PGPORT"] = str(where.port or 5432)
    os.environ["BENCH_PGUSER"] = where.username or "postgres"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.hordak_settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections, transaction
    from djmoney.money import Money
    from hordak.models import Account, AccountType, Leg

    call_command("migrate", verbosity=0)
    issuance = Account.objects.create(name="Issuance", type=AccountType.income, currencies=["EUR"])
    accounts = []
    for i in range(holders):
        account = Account.objects.create(name=f"Holder {i}", type=AccountType.asset, currencies=["EUR"])
        issuance.transfer_to(account, Money(funding, "EUR"))
        accounts.append(account.pk)

    class Overdraft(Exception):
        pass

    def safe(item):
        a, b, amount, _key = item
        with transaction.atomic():
            source = Account.objects.select_for_update().get(pk=accounts[a])
            balance = source.get_balance().monies()
            if not balance or balance[0].amount < amount:
                raise Overdraft("insufficient balance")
            source.transfer_to(Account.objects.get(pk=accounts[b]), Money(amount, "EUR"))

    def bare(item):
        a, b, amount, _key = item
        with transaction.atomic():
            Account.objects.get(pk=accounts[a]).transfer_to(Account.objects.get(pk=accounts[b]),
                                                            Money(amount, "EUR"))

    log(f"[4] hordak (lock, balance check, transfer_to): {len(plan)} transfers, {clients} clients")
    safe_run = _drive(plan, clients, safe, on_exit=connections.close_all)
    log(f"[4] hordak (bare transfer_to): {len(plan)} transfers, {clients} clients")
    bare_plan = [(a, b, amount, key + "-bare") for a, b, amount, key in plan]
    bare_run = _drive(bare_plan, clients, bare, on_exit=connections.close_all)
    legs_before = Leg.objects.count()
    retry = plan[:5]
    for item in retry:
        bare(item)  # a client retrying: hordak cannot tell, it is a second transfer
    doubled = (Leg.objects.count() - legs_before) // 2
    connections.close_all()
    return {"safe": safe_run, "bare": bare_run, "retried": len(retry), "retries_applied_again": doubled}


def run_workload_4(args) -> dict:
    global PG
    PG = (getattr(args, "pg_url", None) or PG).rstrip("/")
    quick = getattr(args, "scale", "full") == "small"  # bench.run --scale small: a minutes-long smoke run
    transfers = int(getattr(args, "transfers", None) or (200 if quick else 2000))
    clients = int(getattr(args, "clients", None) or 4)
    holders = int(getattr(args, "holders", None) or 100)
    duplicates = int(getattr(args, "duplicates", None) or 50)
    funding = 1_000_000
    log = getattr(args, "log", None) or (lambda message: print(message, file=sys.stderr))
    tag = uuid.uuid4().hex[:8]
    ours_db, theirs_db = f"creditdesk_bench_w4_{tag}", f"creditdesk_bench_hordak_{tag}"
    plan = _plan(holders, transfers, seed=4)
    _admin(f'CREATE DATABASE "{ours_db}"')
    _admin(f'CREATE DATABASE "{theirs_db}"')
    try:
        ours = run_creditdesk(ours_db, holders, funding, plan, clients, duplicates, log)
        theirs = run_hordak(theirs_db, holders, funding, plan, clients, log)
    finally:
        for name in (ours_db, theirs_db):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = ours["timed"]["per_s"] / theirs["safe"]["per_s"]
    ratio_bare = ours["timed"]["per_s"] / theirs["bare"]["per_s"]
    met = ratio >= GOAL and ours["exactly_once"] and ours["timed"]["errors"] == 0
    measured = (f"creditdesk {ours['timed']['per_s']:.0f} transfers/s (p50 {ours['timed']['p50_ms']:.1f} ms, "
                f"p99 {ours['timed']['p99_ms']:.1f} ms) vs hordak lock+check+transfer_to "
                f"{theirs['safe']['per_s']:.0f}/s (p99 {theirs['safe']['p99_ms']:.1f} ms), bare transfer_to "
                f"{theirs['bare']['per_s']:.0f}/s ({ratio_bare:.1f}x); {clients} clients in-process, PostgreSQL; "
                f"retries: {ours['effects']} effects for {ours['expected_effects']} accepted requests, "
                f"{ours['credits_moved']} credits moved of {ours['expected_credits_moved']}, ledger verify "
                f"{'clean' if ours['ledger_verify_ok'] else 'FAILED'} "
                f"({'exactly once' if ours['exactly_once'] else 'NOT exactly once'}); hordak applied "
                f"{theirs['retries_applied_again']} of {theirs['retried']} retries again")
    return {"workload": 4, "name": "Transfer between holders vs django-hordak, PostgreSQL, 4 clients", "goal": ">= 5x django-hordak transfer_to; exactly once under retried keys",
            "measured": measured, "ratio": round(ratio, 2), "met": met,
            "details": {"creditdesk": ours, "hordak": theirs, "ratio_vs_bare_transfer_to": round(ratio_bare, 2),
                        "transfers": transfers, "clients": clients, "holders": holders}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--holders", type=int, default=100)
    parser.add_argument("--duplicates", type=int, default=50)
    args = parser.parse_args(argv)
    print(json.dumps(run_workload_4(args), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
