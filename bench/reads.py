"""Workload 6: reads and the expiry sweep, on SQLite (WAL, synchronous=FULL, as shipped).

    .venv/bin/python -m bench.reads --packs 1000000 --holders 100000

1. Balance of a holder with 1M ledger entries: the seed's hot office (10 packs) gets N consumption
   transfers written straight into the ledger (cached totals kept, so `ledger verify` stays clean);
   then `reads.balances` (the service function behind GET /v1/balances, the CLI and the back office)
   is timed, one read session per call as a request has. Goal p99 < 2 ms.
2. The filtered active-pack report over 1M packs: `reads.list_packs` + `reads.packs_out` (what GET
   /v1/packs and the back office's /credits page run), one read session per call, for the filter
   sets people use (the /credits defaults: active, by expiry; by credit type; an expiry window; an
   office; remaining below a threshold; a status label; text search). Goal p95 < 50 ms.
3. Expiry sweep of 100k due packs: 100k random active packs are made due (their expiry moved into
   the past), then `creditdesk jobs expire` runs in a child process. Goal >= 20k packs/s.

Baselines in the same run, for the ratios: a primary-key lookup of one pack row through the same
session machinery (the floor of any read), and, for the sweep, the pack-by-pack expiry (ORM,
`audit.record`, `ledger.post`) on a sample of the due packs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _timed(fn, n: int, warm: int = 5, budget: float = 30.0) -> dict:
    """n timed calls after `warm` untimed ones; a slow query stops after `budget` seconds (at least 5 calls)."""
    for _ in range(warm):
        fn()
    samples = []
    deadline = time.perf_counter() + budget
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        if len(samples) >= 5 and time.perf_counter() > deadline:
            break
    return {"n": len(samples), "p50_ms": round(_pct(samples, 0.5), 3), "p95_ms": round(_pct(samples, 0.95), 3),
            "p99_ms": round(_pct(samples, 0.99), 3), "mean_ms": round(statistics.fmean(samples), 3)}


def _sqlite_path(url: str) -> str:
    return url.split("sqlite:///", 1)[1]


def add_ledger_entries(url: str, account_ids: list[str], consumed_account: str, ws: str, unit: str,
                       entries: int, user_id: str | None) -> None:
    """`entries` one-credit consume transfers spread over these pack accounts, cached totals kept."""
    import sqlite3

    from creditdesk.ids import new_ids

    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    per_account = {a: 0 for a in account_ids}
    done = 0
    while done < entries:
        n = min(50_000, entries - done)
        rows = []
        for i, tid in enumerate(new_ids("lt", n)):
            account = account_ids[(done + i) % len(account_ids)]
            per_account[account] += 1
            rows.append((tid, ws, account, consumed_account, 1, unit, "consume", "posted", None, None, None,
                         "bench", f"bench-{done + i}", None, user_id, None, stamp))
        conn.executemany("INSERT INTO ledger_transfers (id, workspace_id, debit_account_id, credit_account_id, "
                         "amount, unit, code, phase, pending_id, timeout_at, operation_id, reference_kind, "
                         "reference_id, reference_url, actor_id, idempotency_key, created_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        done += n
    conn.executemany("UPDATE ledger_accounts SET debits_posted = debits_posted + ? WHERE id = ?",
                     [(n, a) for a, n in per_account.items()])
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def make_due(url: str, ws: str, count: int, seed: int = 5) -> int:
    """Move the expiry of `count` random active, expiring packs into the past (a bench shortcut)."""
    import sqlite3

    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None)
    ids = [r[0] for r in conn.execute("SELECT id FROM packs WHERE workspace_id = ? AND status = 'active' "
                                      "AND expires_at IS NOT NULL", (ws,))]
    chosen = random.Random(seed).sample(ids, min(count, len(ids)))
    past = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("UPDATE packs SET expires_at = ? WHERE id = ?", [(past, i) for i in chosen])
    conn.execute("COMMIT")
    conn.close()
    return len(chosen)


def expire_pack_by_pack(session, pack_ids: list[str]) -> int:
    """The sweep as it was before it went bulk (ORM objects, audit.record, ledger.post), for the baseline."""
    from sqlalchemy import select

    from creditdesk import audit, clock
    from creditdesk.audit import Actor
    from creditdesk.credits.models import CreditType, Pack
    from creditdesk.ledger import service as ledger
    from creditdesk.ledger.service import Reference, TransferSpec

    now = clock.now()
    packs = session.scalars(select(Pack).where(Pack.id.in_(pack_ids))).all()
    accounts = ledger.lock_accounts(session, [p.ledger_account_id for p in packs])
    packs = session.scalars(select(Pack).where(Pack.id.in_(pack_ids)).execution_options(populate_existing=True)).all()
    types, expired, by_ws = {}, 0, {}
    for pack in packs:
        if pack.status != "active" or pack.expires_at is None or pack.expires_at > now:
            continue
        ct = types.get(pack.credit_type_id) or session.get(CreditType, pack.credit_type_id)
        types[ct.id] = ct
        account = accounts[pack.ledger_account_id]
        if account.available > 0:
            by_ws.setdefault(pack.workspace_id, []).append(
                TransferSpec(account.id, ct.breakage_account_id, account.available, "expire", Reference("pack", pack.id)))
        pack.status = "expired"
        pack.updated_at = now
        audit.record(session, actor=Actor.system(pack.workspace_id), action="pack.expire", object_type="pack",
                     object_id=pack.id, before={"status": "active"},
                     after={"status": "expired", "breakage": account.available, "held": account.debits_pending})
        expired += 1
    for ws, specs in by_ws.items():
        ledger.post(session, specs, workspace_id=ws, locked=accounts)
    return expired


def _cli(*args: str) -> tuple[float, int, str]:
    import subprocess

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from creditdesk.cli import app; app()", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return time.perf_counter() - started, proc.returncode, proc.stdout + proc.stderr


def run_workload_6(args) -> dict:
    quick = getattr(args, "scale", "full") == "small"  # bench.run --scale small: a minutes-long smoke run
    packs = int(getattr(args, "packs", None) or (20_000 if quick else 1_000_000))
    holders = int(getattr(args, "holders", None) or (2_000 if quick else 100_000))
    entries = int(getattr(args, "entries", None) or (20_000 if quick else 1_000_000))
    due = int(getattr(args, "due", None) or (2_000 if quick else 100_000))
    iterations = int(getattr(args, "iterations", None) or 300)
    log = getattr(args, "log", None) or (lambda message: print(message, file=sys.stderr))
    workdir = Path(getattr(args, "workdir", None) or tempfile.mkdtemp(prefix="creditdesk-bench-reads-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'reads.db'}"
    reuse = bool(getattr(args, "reuse", False)) and (workdir / "reads.json").exists()
    data_dir = getattr(args, "data_dir", None)
    if data_dir and not reuse:
        # bench.run: the seeded dataset (packs and the hot holder's ledger entries) is built once in
        # data_dir and copied per run, then brought up to the current migrations.
        _cached_copy(Path(data_dir), workdir, packs, holders, entries, log)
        reuse = True
    _run.verify = getattr(args, "verify", True)
    try:
        return _run(url, workdir, packs, holders, entries, due, iterations, log, reuse)
    finally:
        if not getattr(args, "keep", False):
            for f in workdir.iterdir():
                f.unlink()
            workdir.rmdir()


def _cached_copy(data_dir: Path, workdir: Path, packs: int, holders: int, entries: int, log) -> None:
    import shutil

    from creditdesk import migrate
    from creditdesk.db import Database

    data_dir.mkdir(parents=True, exist_ok=True)
    cached = data_dir / f"reads-{packs}-{holders}-{entries}.db"
    cached_meta = cached.with_suffix(".json")
    if not (cached.exists() and cached_meta.exists()):
        build = data_dir / f"reads-build-{os.getpid()}"
        build.mkdir(exist_ok=True)
        try:
            _run.seed_only = True
            _run(f"sqlite:///{build / 'reads.db'}", build, packs, holders, entries, 0, 0, log, False)
        finally:
            _run.seed_only = False
        import sqlite3

        conn = sqlite3.connect(build / "reads.db")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        os.replace(build / "reads.json", cached_meta)
        os.replace(build / "reads.db", cached)
        shutil.rmtree(build, ignore_errors=True)
    log(f"[6] copying the cached dataset {cached}")
    shutil.copyfile(cached, workdir / "reads.db")
    shutil.copyfile(cached_meta, workdir / "reads.json")
    db = Database(f"sqlite:///{workdir / 'reads.db'}")
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()


def _run(url, workdir, packs, holders, entries, due, iterations, log, reuse) -> dict:
    from bench import seed as seeding

    if reuse:
        meta = json.loads((workdir / "reads.json").read_text())
    else:
        log(f"[6] seeding {packs:,} packs over {holders:,} holders")
        meta = seeding.seed(url, packs=packs, holders=holders, progress=lambda m: log(f"[6]   {m}"))
        (workdir / "reads.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "office_ids"}
                                                       | {"office_ids": meta["office_ids"][:1000]}))
    from sqlalchemy import select

    from creditdesk.audit import Actor
    from creditdesk.credits import reads
    from creditdesk.credits.models import CreditType, Pack
    from creditdesk.db import Database
    from creditdesk.ledger.models import LedgerAccount

    db = Database(url)
    ws, hot = meta["workspace_id"], meta["hot_office_id"]
    actor = Actor(workspace_id=ws, user_id=meta["user_id"], role="master")
    with db.read() as s:
        hot_accounts = list(s.scalars(select(Pack.ledger_account_id).where(Pack.workspace_id == ws,
                                                                           Pack.holder_id == hot)))
        ct = s.scalar(select(CreditType).where(CreditType.workspace_id == ws))
        consumed, unit = ct.consumed_account_id, ct.code
        transfers_on_hot = s.scalar(select(LedgerAccount.debits_posted).where(
            LedgerAccount.id == hot_accounts[0]))
    if not reuse or not transfers_on_hot:
        log(f"[6] writing {entries:,} ledger entries on the hot office's {len(hot_accounts)} packs")
        add_ledger_entries(url, hot_accounts, consumed, ws, unit, entries, meta["user_id"])
    if getattr(_run, "seed_only", False):
        db.dispose()
        return {}
    results: dict = {"packs": packs, "holders": holders, "ledger_entries_on_holder": entries}

    # Baseline: one pack row by primary key, through the same session machinery.
    some_pack = hot_accounts and None
    with db.read() as s:
        some_pack = s.scalar(select(Pack.id).where(Pack.workspace_id == ws).limit(1))

    def pk_lookup():
        with db.read() as s:
            s.get(Pack, some_pack)
    results["baseline_pk_lookup"] = _timed(pk_lookup, iterations)

    def balance():
        with db.read() as s:
            rows = reads.balances(s, actor=actor, holder_kind="office", holder_id=hot)
        assert rows and rows[0].available >= 0
    log("[6] balance of the hot holder")
    results["balance"] = _timed(balance, max(iterations, 1000))
    log(f"[6]   {results['balance']}")

    now = datetime.now(UTC)
    office = meta["office_ids"][len(meta["office_ids"]) // 2]
    filters = {
        "credits page default (active, by expiry)": dict(status=["active"], sort="expires_at"),
        "API default (active, by creation)": dict(status=["active"]),
        "credit type, by expiry": dict(status=["active"], credit_type=unit, sort="expires_at"),
        "expiring in the next 30 days": dict(status=["active"], sort="expires_at", expires_from=now,
                                             expires_to=now + timedelta(days=30)),
        "one office": dict(status=["active"], office_id=office, sort="expires_at"),
        "remaining <= 10, by expiry": dict(status=["active"], remaining_max=10, sort="expires_at"),
        "status label": dict(status=["active"], status_label="drive-2026", sort="expires_at"),
        "text search (no match)": dict(status=["active"], q="no such pack", sort="expires_at"),
        "by remaining, descending": dict(status=["active"], sort="remaining", descending=True),
    }
    results["report"] = {}
    for name, kwargs in filters.items():
        def report(kwargs=kwargs):
            with db.read() as s:
                page = reads.list_packs(s, actor=actor, limit=50, **kwargs)
                reads.packs_out(s, page.items)
        log(f"[6] report: {name}")
        results["report"][name] = _timed(report, iterations, warm=1)
        log(f"[6]   {results['report'][name]}")

    def labels():
        with db.read() as s:
            reads.status_labels(s, actor=actor, status=["active"])
    results["status_labels"] = _timed(labels, iterations, warm=1)
    log(f"[6]   status labels {results['status_labels']}")
    db.dispose()

    log(f"[6] making {due:,} packs due; baseline: pack by pack on a sample, then `creditdesk jobs expire`")
    made_due = make_due(url, ws, due)
    from creditdesk.credits import repository

    db = Database(url)
    sample = min(2000, made_due // 10)
    with db.read() as s:
        ids = repository.due_pack_ids(s, limit=sample)
    started = time.perf_counter()
    by_hand = 0
    for start in range(0, len(ids), 500):
        by_hand += db.write(lambda s, chunk=ids[start:start + 500]: expire_pack_by_pack(s, chunk))
    base_rate = by_hand / (time.perf_counter() - started) if by_hand else None
    db.dispose()
    seconds, code, output = _cli("jobs", "expire", "--database-url", url)
    expired = int(output.split(" pack(s) expired")[0].split()[-1]) if " pack(s) expired" in output else 0
    results["expiry"] = {"due": made_due, "baseline_pack_by_pack": by_hand,
                         "baseline_packs_per_s": round(base_rate) if base_rate else None, "expired": expired,
                         "seconds": round(seconds, 2), "packs_per_s": round(expired / seconds) if seconds else None,
                         "exit": code}
    expired += by_hand
    seconds, code, output = _cli("jobs", "expire", "--database-url", url)
    results["expiry"]["rerun_expired"] = int(output.split(" pack(s) expired")[0].split()[-1]) \
        if " pack(s) expired" in output else None
    if getattr(_run, "verify", True) and not os.environ.get("BENCH_SKIP_VERIFY"):
        log("[6] creditdesk ledger verify")
        seconds, code, output = _cli("ledger", "verify", "--database-url", url)
        results["verify"] = {"ok": code == 0 and "Ledger OK" in output, "seconds": round(seconds, 1)}

    bal = results["balance"]
    report_p95 = {k: v["p95_ms"] for k, v in results["report"].items()}
    slow = {k: v for k, v in report_p95.items() if v >= 50}
    rate = results["expiry"]["packs_per_s"] or 0
    met = (bal["p99_ms"] < 2 and not slow and rate >= 20_000 and expired == made_due
           and results.get("verify", {"ok": True})["ok"])
    measured = (f"balance p99 {bal['p99_ms']:.2f} ms (p50 {bal['p50_ms']:.2f}); report p95 "
                f"{min(report_p95.values()):.1f}-{max(report_p95.values()):.1f} ms over {len(report_p95)} filter sets"
                + (f" ({len(slow)} at or over 50 ms: " + ", ".join(f"{k} {v:.0f} ms" for k, v in slow.items()) + ")"
                   if slow else "")
                + f"; expiry {expired:,} packs in {results['expiry']['seconds']:.1f}s = {rate:,.0f} packs/s")
    base = results["baseline_pk_lookup"]["p99_ms"]
    return {"workload": 6, "name": "Reads: balance, active-pack report, expiry sweep (SQLite)", "goal": "balance p99 < 2 ms; report p95 < 50 ms; expiry >= 20k packs/s",
            "measured": measured, "ratio": round(bal["p99_ms"] / base, 1) if base else None, "met": met,
            "details": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=1_000_000)
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000, help="Ledger entries on the hot holder.")
    parser.add_argument("--due", type=int, default=100_000, help="Packs made due for the sweep.")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the database (with --reuse: seed once).")
    parser.add_argument("--reuse", action="store_true", help="Reuse a database kept in --workdir.")
    args = parser.parse_args(argv)
    print(json.dumps(run_workload_6(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
