"""Build a benchmark database fast: one workspace, a credit type, N offices holding M packs.

The workspace, its master user and API key, the credit type and the customer are made by the real
services. Offices and packs are then written with core INSERTs in large batches, row for row what
`parties.create_office` and `grant_pack` would have written: the office and its audit event;
for each pack its ledger account (no-overdraft, credits_posted = quantity), the grant transfer from
issuance, the pack row and its `pack.create` audit event (the same `snapshot` the service takes).
`creditdesk ledger verify` is clean on the result (checked by `--verify`).

    .venv/bin/python -m bench.seed --url sqlite:////tmp/bench.db --packs 1000000 --holders 100000

A JSON sidecar (`<db>.json`, or `--meta`) records the API key and the holder ids for the load generator.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import JSON, Boolean, create_engine, event

from creditdesk import clock
from creditdesk.audit import Actor, AuditEvent
from creditdesk.credits import schemas as credit_schemas
from creditdesk.credits import credit_types, repository
from creditdesk.credits.packs import grant_pack
from creditdesk.credits.models import Pack
from creditdesk.db import Database, UTCDateTime, normalize_url
from creditdesk.ids import _ALPHABET as ids_alphabet
from creditdesk.ids import _encode
from creditdesk.ledger.models import DEBITS_MUST_NOT_EXCEED_CREDITS, POSTED, LedgerAccount, LedgerTransfer
from creditdesk.parties import schemas as party_schemas
from creditdesk.parties import service as parties
from creditdesk.parties.models import Office

CREDIT_TYPE = "credit"
BATCH = 20_000

_PACK_COLUMNS = [c.key for c in Pack.__table__.columns]
_OFFICE_COLUMNS = [c.key for c in Office.__table__.columns]


def _snapshot(row: dict, columns: list[str]) -> dict:
    # What audit.snapshot(obj) gives for an object with these column values.
    # (Values here are str, int, bool, None, datetimes and flat lists of str, so only datetimes change.)
    return {k: (_iso(v) if type(v) is datetime else v) for k in columns for v in (row.get(k),)}


@functools.lru_cache(maxsize=4096)
def _iso(moment: datetime) -> str:
    return moment.isoformat()


class _Ids:
    """ids.new_id's format (prefix, 48-bit ms, 80-bit increasing part), made fast for millions of rows."""

    _PAIRS = [a + b for a in ids_alphabet for b in ids_alphabet]

    def __init__(self) -> None:
        self.counter = int.from_bytes(os.urandom(10), "big") >> 2
        self.ms, self.head = 0, ""

    def __call__(self, prefix: str) -> str:
        self.counter += 1
        ms = int(time.time() * 1000)
        if ms != self.ms:
            self.ms, self.head = ms, _encode(ms, 10)
        r, p = self.counter, self._PAIRS
        return (f"{prefix}_{self.head}{p[(r >> 70) & 1023]}{p[(r >> 60) & 1023]}{p[(r >> 50) & 1023]}"
                f"{p[(r >> 40) & 1023]}{p[(r >> 30) & 1023]}{p[(r >> 20) & 1023]}{p[(r >> 10) & 1023]}{p[r & 1023]}")


class _Writer:
    """executemany straight on the DBAPI cursor, values converted as the column types would."""

    def __init__(self, conn, dialect: str):
        self.cursor = conn.connection.driver_connection.cursor()
        self.sqlite = dialect == "sqlite"
        self.json = None
        if not self.sqlite:
            from psycopg.types.json import Json
            self.json = Json

    _last = (None, None)

    def value(self, v):
        if isinstance(v, datetime):
            if self._last[0] is v:
                return self._last[1]
            out = v.astimezone(UTC).replace(tzinfo=None)
            out = out.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else out
            self._last = (v, out)
            return out
        if isinstance(v, (dict, list)):
            return json.dumps(v) if self.sqlite else self.json(v)
        if isinstance(v, bool) and self.sqlite:
            return int(v)
        return v

    def insert(self, table, rows: list[dict]) -> None:
        if not rows:
            return
        cols = [c.key for c in table.columns]
        # Only columns whose type changes the value (times, JSON, booleans on SQLite) are converted.
        convert = [i for i, c in enumerate(table.columns)
                   if isinstance(c.type, (UTCDateTime, JSON)) or (self.sqlite and isinstance(c.type, Boolean))]
        mark = "?" if self.sqlite else "%s"
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
        value = self.value
        out = []
        for r in rows:
            t = [r.get(c) for c in cols]
            for i in convert:
                if t[i] is not None:
                    t[i] = value(t[i])
            out.append(t)
        self.cursor.executemany(sql, out)


def _bulk_engine(url: str):
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            # A one-off build: no fsync per batch. The server reopens it with its own settings.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-400000")
            cur.close()
        return engine
    return create_engine(url)


def seed(url: str, *, packs: int, holders: int, hot_packs: int = 10, quantity: int = 1000,
         hot_quantity: int = 10_000_000, seed_value: int = 1, progress=None) -> dict:
    """Seed an empty database. Returns the metadata the load generator needs."""
    from creditdesk import migrate

    rng = random.Random(seed_value)
    db = Database(url)
    if not migrate.is_empty(db):
        raise SystemExit(f"{url} already has a schema; seed an empty database.")
    migrate.upgrade(db)

    def setup(session):
        ws, master, _key, secret = parties.create_workspace(
            session, name="Bench", master_name="Bench master", master_email="bench@example.com")
        actor = parties.actor_for_user(session, master)
        ct = credit_types.create_credit_type(session, credit_schemas.CreditTypeCreate(code=CREDIT_TYPE, name="Credits"),
                                             actor=actor)
        customer = parties.create_customer(session, party_schemas.CustomerCreate(name="Bench customer"), actor=actor)
        hot = parties.create_office(session, party_schemas.OfficeCreate(name="Hot office", customer_id=customer.id),
                                    actor=actor)
        for i in range(hot_packs):
            grant_pack(session, credit_schemas.PackCreate(
                holder=credit_schemas.Holder(kind="office", id=hot.id), credit_type=CREDIT_TYPE,
                quantity=hot_quantity, name=f"Hot pack {i}"), actor=actor)
        return {"workspace_id": ws.id, "user_id": master.id, "api_key": secret, "credit_type_id": ct.id,
                "issuance_account_id": ct.issuance_account_id, "customer_id": customer.id, "hot_office_id": hot.id}

    meta = db.write(setup)
    db.dispose()

    engine = _bulk_engine(url)
    ws, user_id, customer_id = meta["workspace_id"], meta["user_id"], meta["customer_id"]
    actor = Actor(workspace_id=ws, user_id=user_id, role="master")
    started = time.perf_counter()
    office_ids: list[str] = []
    new_id = _Ids()
    with engine.begin() as conn:
        writer = _Writer(conn, engine.dialect.name)
        for start in range(0, holders, BATCH):
            now = clock.now()
            offices, events = [], []
            for i in range(start, min(holders, start + BATCH)):
                row = {"id": new_id("off"), "workspace_id": ws, "customer_id": customer_id,
                       "name": f"Office {i}", "email": None, "created_at": now, "updated_at": now}
                offices.append(row)
                events.append(_event(new_id, actor, "office.create", "office", row["id"],
                                     _snapshot(row, _OFFICE_COLUMNS), now))
                office_ids.append(row["id"])
            writer.insert(Office.__table__, offices)
            writer.insert(AuditEvent.__table__, events)
        if progress:
            progress(f"{holders} offices in {time.perf_counter() - started:.1f}s")

        per_holder, extra = divmod(packs, holders)
        done = 0
        accounts, transfers, pack_rows, events = [], [], [], []

        def flush():
            writer.insert(LedgerAccount.__table__, accounts)
            writer.insert(Pack.__table__, pack_rows)
            writer.insert(LedgerTransfer.__table__, transfers)
            writer.insert(AuditEvent.__table__, events)
            for batch in (accounts, transfers, pack_rows, events):
                batch.clear()

        now = clock.now()
        for h, office_id in enumerate(office_ids):
            for _ in range(per_holder + (1 if h < extra else 0)):
                _pack(new_id, rng, ws, meta, office_id, quantity, now, actor, accounts, transfers, pack_rows, events)
                done += 1
                if len(pack_rows) >= BATCH:
                    flush()
                    now = clock.now()
                    if progress and done % 100_000 == 0:
                        rate = done / (time.perf_counter() - started)
                        progress(f"{done}/{packs} packs ({rate:,.0f}/s)")
        if pack_rows:
            flush()
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    meta.update({"url": url, "packs": packs + hot_packs, "holders": holders, "office_ids": office_ids,
                 "seed_seconds": round(time.perf_counter() - started, 1)})
    return meta


def _event(new_id, actor: Actor, action: str, object_type: str, object_id: str, after: dict, now) -> dict:
    return {"id": new_id("evt"), "workspace_id": actor.workspace_id, "actor_kind": actor.kind,
            "actor_id": actor.user_id, "api_key_id": actor.api_key_id, "action": action, "object_type": object_type,
            "object_id": object_id, "before": None, "after": after, "created_at": now}


def _pack(new_id, rng, ws, meta, office_id, quantity, now, actor, accounts, transfers, pack_rows, events) -> None:
    account_id = new_id("la")
    accounts.append({"id": account_id, "workspace_id": ws, "unit": CREDIT_TYPE, "code": "pack",
                     "flags": DEBITS_MUST_NOT_EXCEED_CREDITS, "system_key": None, "debits_posted": 0,
                     "credits_posted": quantity, "debits_pending": 0, "credits_pending": 0, "created_at": now})
    pack_id = new_id("pack")
    paid = rng.random() < 0.5
    # Some never expire; the rest within the next three years (none is due during a run).
    expires = None if rng.random() < 0.2 else now + timedelta(days=rng.randint(30, 3 * 365))
    row = {"id": pack_id, "workspace_id": ws, "holder_kind": "office", "holder_id": office_id,
           "customer_id": meta["customer_id"], "credit_type_id": meta["credit_type_id"], "unit": CREDIT_TYPE,
           "quantity": quantity, "price_paid": 5000 if paid else 0, "currency": "EUR" if paid else None,
           "is_paid": paid, "source": "manual", "external_ref": None, "name": "Bench pack",
           "relationship_manager_id": None, "project_manager_id": None, "purchased_at": now, "starts_at": now,
           "expires_at": expires, "expiry_months": None, "priority": 100, "product_codes": [], "status": "active",
           "status_label": "", "notes": "", "void_reason": None, "ledger_account_id": account_id,
           "origin_pack_id": None, "credit_transfer_id": None, "idempotency_key": None, "created_at": now,
           "updated_at": now}
    pack_rows.append(row)
    transfers.append({"id": new_id("lt"), "workspace_id": ws, "debit_account_id": meta["issuance_account_id"],
                      "credit_account_id": account_id, "amount": quantity, "unit": CREDIT_TYPE,
                      "code": repository.GRANT, "phase": POSTED, "pending_id": None, "timeout_at": None,
                      "operation_id": pack_id, "reference_kind": "pack", "reference_id": pack_id, "reference_url": None,
                      "actor_id": actor.user_id, "idempotency_key": None, "created_at": now})
    events.append(_event(new_id, actor, "pack.create", "pack", pack_id, _snapshot(row, _PACK_COLUMNS), now))


def sqlite_path(url: str) -> Path:
    return Path(normalize_url(url).split("sqlite:///", 1)[1])


def meta_path(url: str) -> Path:
    return sqlite_path(url).with_suffix(".json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="An empty database (sqlite:///path or postgresql://...).")
    parser.add_argument("--packs", type=int, default=1_000_000)
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--meta", help="Where to write the JSON sidecar (default: next to a SQLite file).")
    parser.add_argument("--verify", action="store_true", help="Run the ledger verify routine afterwards.")
    args = parser.parse_args(argv)
    meta = seed(args.url, packs=args.packs, holders=args.holders, progress=lambda m: print(m, file=sys.stderr))
    out = Path(args.meta) if args.meta else meta_path(args.url)
    out.write_text(json.dumps(meta))
    print(f"seeded {meta['packs']} packs over {meta['holders']} holders in {meta['seed_seconds']}s -> {out}")
    if args.verify:
        return verify(args.url)
    return 0


def verify(url: str) -> int:
    from creditdesk.ledger import service as ledger

    db = Database(url)
    with db.read() as session:
        report = ledger.verify(session)
    db.dispose()
    for problem in report.problems[:20]:
        print("verify:", problem, file=sys.stderr)
    print(f"ledger verify: {'OK' if report.ok else 'PROBLEMS'} ({report.accounts_checked} accounts, "
          f"{report.transfers_checked} transfers)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
