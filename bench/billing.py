"""Workload 7: a billing run on SQLite, as users run it (`creditdesk billing run --as-of`).

    .venv/bin/python -m bench.billing --subscriptions 20000

Builds a throwaway SQLite database: billing settings, a taxed subscription service with a default price,
`accounts` customers each with an account, and N active monthly subscriptions spread over them (written
set-wise: the set-up is not what is measured). Then runs the real CLI in a child process, billing every
subscription as of the first day of a month: one posted bill each (invoice, line, ledger postings,
audit rows). Measures subscriptions billed per second (wall clock of the child) and its peak RSS against a
run of a tenth of the size (memory flat). Runs it again as of the same day: nothing must be billed twice.
Then `creditdesk ledger verify`.

Ratio: the run's rate / workload 5's import rate (packs/s) from bench/results.json, when there is one.
Goal (issue 15): >= 5,000 subscriptions billed per second, memory flat.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench.bulk import _cli

GOAL_RATE = 5_000
ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2027, 2, 1)


def _prepare(path: Path, subscriptions: int, accounts: int) -> tuple[str, str]:
    """A SQLite database with N active subscriptions; returns (url, workspace id)."""
    from bench._world import sqlite_db, subscriptions_world

    db = sqlite_db(str(path))
    ws = subscriptions_world(db, subscriptions, accounts)
    url = db.url
    db.dispose()
    return url, ws


def _run(url: str, ws: str) -> tuple[float, int, int, str]:
    return _cli("billing", "run", "--as-of", AS_OF.isoformat(), "--workspace", ws, "--database-url", url)


def run_workload_7(args) -> dict:
    quick = getattr(args, "scale", "full") == "small"
    count = int(getattr(args, "subscriptions", None) or (5_000 if quick else 100_000))
    small = max(count // 10, 500)
    accounts = int(getattr(args, "accounts", None) or min(count, 10_000))
    log = getattr(args, "log", None) or (lambda message: print(message, file=sys.stderr))
    workdir = Path(getattr(args, "workdir", None) or tempfile.mkdtemp(prefix="creditdesk-bench-billing-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, n in (("small", small), ("big", count)):
        log(f"[7] preparing {n} subscriptions over {min(accounts, n)} accounts")
        url, ws = _prepare(workdir / f"{label}.db", n, min(accounts, n))
        log(f"[7] creditdesk billing run --as-of {AS_OF} ({label})")
        seconds, rss, code, output = _run(url, ws)
        found = re.search(r"(\d+) subscription\(s\) billed, (\d+) bill\(s\) posted, (\d+) refused", output)
        if code != 0 or not found or int(found.group(2)) != n:
            raise RuntimeError(f"billing run ({label}) failed (exit {code}): {output[-2000:]}")
        runs[label] = {"subscriptions": n, "seconds": round(seconds, 2), "per_s": round(n / seconds),
                       "peak_rss_mib": round(rss / 1024, 1), "url": url, "ws": ws}
        log(f"[7]   {n} subscriptions in {seconds:.1f}s = {n / seconds:,.0f}/s, peak RSS {rss / 1024:.0f} MiB")
    big = runs["big"]
    _s, _r, code, output = _run(big["url"], big["ws"])
    again = re.search(r"(\d+) bill\(s\) posted", output)
    rerun_bills = int(again.group(1)) if again else -1
    _s, _r, vcode, voutput = _cli("ledger", "verify", "--database-url", big["url"])
    rate = big["per_s"]
    flat = big["peak_rss_mib"] <= runs["small"]["peak_rss_mib"] * 1.25 + 20
    import5 = None
    results_path = ROOT / "bench" / "results.json"
    if results_path.exists():
        stored = json.loads(results_path.read_text()).get("5") or {}
        match = re.search(r"([\d,]+) packs/s", stored.get("measured", ""))
        import5 = int(match.group(1).replace(",", "")) if match else None
    ratio = rate / import5 if import5 else None
    return {"workload": 7, "name": "Billing run, SQLite (creditdesk billing run --as-of)",
            "goal": f">= {GOAL_RATE:,} subscriptions/s, memory flat",
            "measured": (f"{rate:,} subscriptions/s ({big['subscriptions']:,} in {big['seconds']}s), peak RSS "
                         f"{big['peak_rss_mib']} MiB vs {runs['small']['peak_rss_mib']} MiB at "
                         f"{runs['small']['subscriptions']:,}; re-run billed {rerun_bills}; verify exit {vcode}"),
            "ratio": round(ratio, 3) if ratio else None, "ratio_of": "workload 5's import rate (packs/s)",
            "met": rate >= GOAL_RATE and flat and rerun_bills == 0 and vcode == 0,
            "runs": {k: {kk: vv for kk, vv in v.items() if kk not in ("url", "ws")} for k, v in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    print(json.dumps(run_workload_7(args), indent=2))


if __name__ == "__main__":
    main()
