"""Text search of the pack report (issue 11 item 6): `q` over many packs, on SQLite or PostgreSQL.

    .venv/bin/python -m bench.search --packs 1000000                      # SQLite, a file in --workdir
    .venv/bin/python -m bench.search --packs 1000000 --url postgresql://postgres@127.0.0.1/cd_bench

Seeds N packs with bench.seed, then gives them varied searched text with one UPDATE (the search index
follows through migration 0011's triggers on SQLite, its GIN indexes on PostgreSQL; the time is
printed): name "Pack <rowid % 1000> <hex>", external_ref "ERP-<n>", notes "renewal <n>" on 1 pack in 100.
Times `reads.list_packs` + `reads.packs_out` (what GET /v1/packs and /credits run), one read session per
call, for searches matching nothing, one pack, a thousand, ten thousand and every pack, alone and with
other filters; then GET /v1/packs?q= through the API (TestClient, the app in-process). p50/p95/p99 in ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.reads import _timed


def _vary_text(url: str) -> float:
    from sqlalchemy import create_engine, text

    from creditdesk.db import normalize_url

    engine = create_engine(normalize_url(url))
    started = time.perf_counter()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(
                "UPDATE packs SET name = 'Pack ' || (rowid % 1000) || ' ' || lower(hex(randomblob(3))), "
                "external_ref = 'ERP-' || rowid, "
                "notes = CASE WHEN rowid % 100 = 7 THEN 'renewal ' || rowid ELSE '' END"))
        else:
            conn.execute(text(
                "WITH n AS (SELECT id, row_number() OVER (ORDER BY id) AS r FROM packs) "
                "UPDATE packs SET name = 'Pack ' || (n.r % 1000) || ' ' || substr(md5(n.r::text), 1, 6), "
                "external_ref = 'ERP-' || n.r, "
                "notes = CASE WHEN n.r % 100 = 7 THEN 'renewal ' || n.r ELSE '' END FROM n WHERE n.id = packs.id"))
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return seconds


def run(url: str, packs: int, holders: int, iterations: int, log, meta_file: Path, reuse: bool) -> dict:
    from bench import seed as seeding

    if reuse:
        meta, update_s = json.loads(meta_file.read_text()), 0.0
    else:
        log(f"seeding {packs:,} packs over {holders:,} holders")
        meta = seeding.seed(url, packs=packs, holders=holders, progress=lambda m: log(f"  {m}"))
        log("giving the packs varied names, references and notes (one UPDATE, search index kept)")
        update_s = _vary_text(url)
        log(f"  {update_s:.1f} s")
        meta_file.write_text(json.dumps({k: meta[k] for k in ("workspace_id", "user_id", "api_key")}
                                        | {"office_ids": meta["office_ids"][:1000]}))

    from fastapi.testclient import TestClient

    from creditdesk.audit import Actor
    from creditdesk.credits import reads
    from creditdesk.db import Database

    db = Database(url)
    ws = meta["workspace_id"]
    actor = Actor(workspace_id=ws, user_id=meta["user_id"], role="master")
    office = meta["office_ids"][len(meta["office_ids"]) // 2]
    now = datetime.now(UTC)
    active = dict(status=["active"], sort="expires_at")
    searches = {
        "no match": dict(active, q="no such pack"),
        "no match, 2 characters (unindexed)": dict(active, q="zq"),
        "one pack (external ref)": dict(active, q=f"ERP-{packs // 2}"),
        "~1,000 packs (name)": dict(active, q="pack 123 "),
        "~10,000 packs (notes)": dict(active, q="renewal"),
        "every pack": dict(active, q="pack"),
        "no match + one office": dict(active, q="no such pack", office_id=office),
        "every pack + one office": dict(active, q="pack", office_id=office),
        "~10,000 + expiring in 30 days": dict(active, q="renewal", expires_from=now,
                                             expires_to=now + timedelta(days=30)),
        "~1,000 by remaining, descending": dict(status=["active"], q="pack 123 ", sort="remaining",
                                               descending=True),
        "no match, API order (created)": dict(status=["active"], q="no such pack"),
    }
    results: dict = {"packs": packs, "database": db.engine.dialect.name, "text_update_s": round(update_s, 1),
                     "report": {}}
    for name, kwargs in searches.items():
        def report(kwargs=kwargs):
            with db.read() as s:
                page = reads.list_packs(s, actor=actor, limit=50, **kwargs)
                reads.packs_out(s, page.items)
        results["report"][name] = _timed(report, iterations, warm=1)
        log(f"  {name}: {results['report'][name]}")

    from creditdesk.api.app import create_app

    client = TestClient(create_app(db=db))
    headers = {"Authorization": f"Bearer {meta['api_key']}"}
    results["api"] = {}
    for name, q in (("no match", "no such pack"), ("one pack", f"ERP-{packs // 2}"), ("every pack", "pack")):
        def call(q=q):
            r = client.get("/v1/packs", params={"q": q, "limit": 50}, headers=headers)
            assert r.status_code == 200, r.text
        results["api"][name] = _timed(call, iterations, warm=1)
        log(f"  GET /v1/packs?q= {name}: {results['api'][name]}")
    db.dispose()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=1_000_000)
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--url", help="An empty database (default: a SQLite file in --workdir).")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--reuse", action="store_true", help="Time again on the database seeded in --workdir.")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.url or f"sqlite:///{workdir / 'search.db'}"
    results = run(url, args.packs, args.holders, args.iterations, lambda m: print(m, file=sys.stderr, flush=True),
                  workdir / "search.json", args.reuse)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
