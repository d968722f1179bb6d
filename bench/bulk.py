"""Workload 5: bulk import of packs from CSV on SQLite, as users run it (`creditdesk packs import`).

    .venv/bin/python -m bench.bulk --rows 1000000

Builds throwaway SQLite databases (migrations, a workspace, offices and users as holders), writes a
CSV of N valid packs, and runs the real CLI in a child process for a small file (default 100k rows)
and the big one (N rows), each into a fresh database. Measures packs/s (wall clock) and the child's
peak RSS (wait4), so "memory flat in file size" is the peak RSS of the big run against the small one.
Then re-runs the small file (everything must be skipped, nothing granted twice) and runs
`creditdesk ledger verify` on the big database.

Baseline in the same run: the same rows granted one by one through `packs.grant_pack` (1000 per
transaction, as the importer worked before it batched), on a sample. Ratio = import rate / that rate.
Goal: >= 50,000 packs/s, and the big run's peak RSS within 1.25x (+20 MB) of the small run's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATE = 50_000

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, env: dict | None = None) -> tuple[float, int, int, str]:
    """Run the creditdesk CLI in a child; return (seconds, peak RSS in KiB, exit code, output)."""
    out = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from creditdesk.cli import app; app()", *args],
                            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "200", **(env or {})})
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    return seconds, usage.ru_maxrss, proc.returncode, out.read().decode(errors="replace")


def _prepare(workdir: Path, name: str, *, offices: int, users: int):
    from bench._world import make_world, sqlite_db

    db = sqlite_db(str(workdir / f"{name}.db"))
    world = make_world(db, offices=offices, users=users)
    return db, world


def _baseline(workdir: Path, rows: int, offices: int, users: int) -> float:
    """grant_pack row by row (the pre-batching importer's path), packs/s."""
    from creditdesk.credits import importer
    from creditdesk.credits import packs

    from bench._world import write_packs_csv

    db, world = _prepare(workdir, "baseline", offices=offices, users=users)
    path = workdir / "baseline.csv"
    write_packs_csv(str(path), world, rows, seed=7)
    with open(path, newline="") as handle:
        parsed = [(r.raw, r.key if r.derived else None) for r in importer.read_rows(handle)]
    started = time.perf_counter()
    for start in range(0, len(parsed), 1000):
        chunk = parsed[start:start + 1000]

        def grant(session, chunk=chunk):
            for raw, key in chunk:
                packs.grant_pack(session, importer._row_to_pack(raw), actor=world.actor, internal_key=key)
        db.write(grant)
    rate = rows / (time.perf_counter() - started)
    db.dispose()
    return rate


def run_workload_5(args) -> dict:
    quick = getattr(args, "scale", "full") == "small"  # bench.run --scale small: a minutes-long smoke run
    rows = int(getattr(args, "rows", None) or (20_000 if quick else 1_000_000))
    small = int(getattr(args, "small_rows", None) or min(100_000, max(rows // 10, 1000)))
    baseline_rows = int(getattr(args, "baseline_rows", None) or 3000)
    offices = int(getattr(args, "offices", None) or 2000)
    users = int(getattr(args, "users", None) or 2000)
    keep = bool(getattr(args, "keep", False))
    # Rows per transaction: the CLI's own default unless asked (--batch-size, to compare sizes).
    batch_size = getattr(args, "batch_size", None)
    batch_option = ("--batch-size", str(batch_size)) if batch_size else ()
    from bench._world import write_packs_csv

    workdir = Path(getattr(args, "workdir", None) or tempfile.mkdtemp(prefix="creditdesk-bench-bulk-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = getattr(args, "log", None) or (lambda message: print(message, file=sys.stderr))
    results: dict = {"rows": rows, "small_rows": small, "batch_size": batch_size or "CLI default"}
    try:
        log(f"[5] baseline: grant_pack one by one, {baseline_rows} rows")
        base_rate = _baseline(workdir, baseline_rows, offices, users)
        results["baseline_packs_per_s"] = round(base_rate)
        runs = {}
        for label, count in (("small", small), ("big", rows)):
            db, world = _prepare(workdir, label, offices=offices, users=users)
            url = db.url
            db.dispose()
            path = workdir / f"{label}.csv"
            log(f"[5] writing {count} rows to {path}")
            write_packs_csv(str(path), world, count, seed=11)
            log(f"[5] creditdesk packs import ({label}, {count} rows)")
            seconds, rss, code, output = _cli("packs", "import", str(path), "--workspace", world.ws,
                                              "--database-url", url, *batch_option)
            summary = re.search(r"(\d+) pack\(s\) granted, (\d+) already imported, (\d+) error", output)
            if code != 0 or not summary or int(summary.group(1)) != count:
                raise RuntimeError(f"import of {label} failed (exit {code}): {output[-2000:]}")
            runs[label] = {"rows": count, "seconds": round(seconds, 2), "packs_per_s": round(count / seconds),
                           "peak_rss_mib": round(rss / 1024, 1), "url": url, "path": str(path), "ws": world.ws}
            log(f"[5]   {count} rows in {seconds:.1f}s = {count / seconds:,.0f} packs/s, "
                f"peak RSS {rss / 1024:.0f} MiB")
        results["runs"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("url", "path", "ws")}
                           for k, v in runs.items()}
        s = runs["small"]
        log("[5] re-running the small file (nothing may be granted twice)")
        seconds, rss, code, output = _cli("packs", "import", s["path"], "--workspace", s["ws"],
                                          "--database-url", s["url"], *batch_option)
        summary = re.search(r"(\d+) pack\(s\) granted, (\d+) already imported, (\d+) error", output)
        rerun_ok = bool(summary) and code == 0 and (int(summary.group(1)), int(summary.group(2))) == (0, small)
        results["rerun"] = {"granted": int(summary.group(1)) if summary else None,
                            "skipped": int(summary.group(2)) if summary else None, "seconds": round(seconds, 2),
                            "ok": rerun_ok}
        b = runs["big"]
        log("[5] creditdesk ledger verify on the big database")
        seconds, _rss, code, output = _cli("ledger", "verify", "--database-url", b["url"])
        results["verify"] = {"ok": code == 0 and "Ledger OK" in output, "seconds": round(seconds, 1)}
        rate = b["rows"] / b["seconds"]
        flat = b["peak_rss_mib"] <= s["peak_rss_mib"] * 1.25 + 20
        met = rate >= GOAL_RATE and flat and rerun_ok and results["verify"]["ok"]
        measured = (f"{rate:,.0f} packs/s for {b['rows']:,} rows (CLI, SQLite WAL synchronous=FULL); "
                    f"peak RSS {s['peak_rss_mib']:.0f} MiB at {s['rows']:,} rows vs {b['peak_rss_mib']:.0f} MiB "
                    f"at {b['rows']:,} ({'flat' if flat else 'NOT flat'}); re-run granted "
                    f"{results['rerun']['granted']} of {small:,}; ledger verify "
                    f"{'clean' if results['verify']['ok'] else 'FAILED'}; baseline grant_pack one by one "
                    f"{base_rate:,.0f} packs/s")
        return {"workload": 5, "name": "Bulk import of packs from CSV, SQLite", "goal": ">= 50k packs/s on SQLite, memory flat in file size",
                "measured": measured, "ratio": round(rate / base_rate, 1), "met": met, "details": results}
    finally:
        if not keep:
            for f in workdir.iterdir():
                f.unlink()
            workdir.rmdir()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=None, help="The small file (default 100k).")
    parser.add_argument("--baseline-rows", type=int, default=3000)
    parser.add_argument("--offices", type=int, default=2000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the databases and CSV files.")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="Rows per transaction given to the CLI (default: the CLI's own default).")
    args = parser.parse_args(argv)
    result = run_workload_5(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
