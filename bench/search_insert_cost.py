"""What the pack text search index (migration 0011) costs a pack write on SQLite: the CSV importer
(`importer.import_stream`, the path `creditdesk packs import` runs) into two fresh databases of the same
world, one as migrated and one with the search triggers dropped, alternately, twice.

    .venv/bin/python -m bench.search_insert_cost --rows 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def _import_once(workdir: Path, name: str, rows: int, indexed: bool) -> float:
    from sqlalchemy import text

    from bench._world import make_world, sqlite_db, write_packs_csv
    from creditdesk.credits import importer

    db = sqlite_db(str(workdir / f"{name}.db"))
    world = make_world(db, offices=1000, users=1000)
    if not indexed:
        with db.engine.begin() as conn:
            for trigger in ("packs_fts_insert", "packs_fts_update", "packs_fts_delete"):
                conn.execute(text(f"DROP TRIGGER {trigger}"))
    path = workdir / f"{name}.csv"
    write_packs_csv(str(path), world, rows, seed=11)
    started = time.perf_counter()
    with open(path, newline="") as handle:
        report = importer.import_stream(db, handle, actor=world.actor)
    seconds = time.perf_counter() - started
    assert report.granted == rows, report
    db.dispose()
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-search-insert-"))
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(2):
        for indexed in (False, True):
            seconds = _import_once(workdir, f"r{round_}-{indexed}", args.rows, indexed)
            times[indexed].append(seconds)
            print(f"{'indexed' if indexed else 'no index'}: {args.rows} packs in {seconds:.1f} s = "
                  f"{args.rows / seconds:,.0f} packs/s", file=sys.stderr, flush=True)
    best = {k: min(v) for k, v in times.items()}
    per_pack = (best[True] - best[False]) / args.rows * 1e6
    print(f"best of 2: {args.rows / best[False]:,.0f} packs/s without the index, {args.rows / best[True]:,.0f} "
          f"with it; the index costs {per_pack:.0f} us a pack ({best[True] / best[False] - 1:+.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
