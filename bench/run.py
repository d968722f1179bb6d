"""Run the benchmark workloads of issue 6 and print their ratios against baselines measured in the same run.

    .venv/bin/python -m bench.run --workloads 1,2,3 --scale small       # quick iteration (minutes)
    .venv/bin/python -m bench.run --workloads 1,3 --scale full          # 1M packs over 100k holders
    .venv/bin/python -m bench.run --workloads 2 --scale full --write-readme

Workloads are dispatched by number through WORKLOADS: each entry names a module and a function
`run_workload_N(args) -> dict` returning at least {workload, goal, measured, ratio, met}. Modules are
imported only when their workload is asked for, and a module that does not exist yet is reported as
such rather than failing the run. Every result is kept in bench/results.json (by workload number), so
runs of different workloads add up to one table; `--write-readme` rewrites the table in bench/README.md.

`args` (an argparse.Namespace) carries: scale ("small" | "full"), duration and warmup (seconds of
load), data_dir (datasets are cached there), pg_url (a PostgreSQL server; each workload creates and
drops its own database), verify (run the ledger verify afterwards), results (results of the workloads
already run in this invocation, by number).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results.json"
README = BENCH_DIR / "README.md"

# number -> (module, function). Workloads 4-6 live in their own modules (written separately).
WORKLOADS: dict[int, tuple[str, str]] = {
    1: ("bench.run", "run_workload_1"),
    2: ("bench.run", "run_workload_2"),
    3: ("bench.run", "run_workload_3"),
    4: ("bench.hordak", "run_workload_4"),
    5: ("bench.bulk", "run_workload_5"),
    6: ("bench.reads", "run_workload_6"),
    7: ("bench.billing", "run_workload_7"),
}

SCALES = {
    # packs, holders (SQLite); packs, holders (PostgreSQL); seconds of load
    "small": {"packs": 20_000, "holders": 2_000, "pg_packs": 20_000, "pg_holders": 2_000, "duration": 8},
    "full": {"packs": 1_000_000, "holders": 100_000, "pg_packs": 200_000, "pg_holders": 20_000, "duration": 20},
}


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def creditdesk_command() -> list[str]:
    script = Path(sys.executable).parent / "creditdesk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "creditdesk.cli"]


@contextmanager
def server(cmd: list[str], *, port: int, log_path: Path, env: dict | None = None, health: str = "/healthz"):
    """Start a server process, wait until it answers, stop it (SIGINT, then SIGKILL) afterwards."""
    env = {**os.environ, **(env or {})}
    # `creditdesk serve` refuses to start without a session key of its own; a throwaway one does here.
    env.setdefault("CREDITDESK_SECRET_KEY", secrets.token_urlsafe(48))
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2):
                    break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError(f"server did not start; see {log_path}")
                time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def load(url: str, *, connections: int, args, template: str, meta_path: Path | None = None,
         holder: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.http_load", "--url", url, "--connections", str(connections),
           "--duration", str(args.duration), "--warmup", str(args.warmup), "--body-template", template,
           "--client", args.client]
    if meta_path:
        cmd += ["--meta", str(meta_path)]
    if holder:
        cmd += ["--holder", holder]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH_DIR.parent, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve_cmd(url: str, port: int, workers: int = 1) -> list[str]:
    # Exactly as a user starts it: `creditdesk serve` with its defaults (access log, jobs); one worker
    # on SQLite (one writer), on PostgreSQL the README's production count (one per core).
    return creditdesk_command() + ["serve", "--database-url", url, "--port", str(port), "--workers", str(workers)]


# --- datasets -------------------------------------------------------------------------------------

def sqlite_dataset(args) -> tuple[str, Path]:
    """A working copy of the cached seeded SQLite database for this scale (seeded on first use)."""
    from bench import seed

    scale = SCALES[args.scale]
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    pristine = data / f"sqlite-{args.scale}.db"
    meta = pristine.with_suffix(".json")
    if not (pristine.exists() and meta.exists()):
        for p in data.glob(f"sqlite-{args.scale}.db*"):
            p.unlink()
        log(f"seeding {scale['packs']:,} packs over {scale['holders']:,} holders into {pristine} ...")
        info = seed.seed(f"sqlite:///{pristine}", packs=scale["packs"], holders=scale["holders"],
                         progress=lambda m: log("  " + m))
        meta.write_text(json.dumps(info))
        log(f"seeded in {info['seed_seconds']}s; verifying the ledger ...")
        if seed.verify(f"sqlite:///{pristine}") != 0:
            raise SystemExit("the seeded database does not verify")
    _upgrade_if_behind(f"sqlite:///{pristine}")
    work = data / f"work-{args.scale}.db"
    for p in data.glob(f"work-{args.scale}.db*"):
        p.unlink()
    shutil.copyfile(pristine, work)
    return f"sqlite:///{work}", meta


def _upgrade_if_behind(url: str) -> None:
    """A dataset seeded before a new migration is brought up to the schema (as `creditdesk db upgrade`)."""
    from alembic.script import ScriptDirectory

    from creditdesk import migrate
    from creditdesk.db import Database

    db = Database(url)
    try:
        head = ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()
        if migrate.current_revision(db) != head:
            log(f"upgrading the cached dataset {url} to {head} ...")
            migrate.upgrade(db)
    finally:
        db.dispose()


def run_verify(url: str) -> str:
    out = subprocess.run(creditdesk_command() + ["ledger", "verify", "--database-url", url],
                         capture_output=True, text=True)
    last = (out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["?"])[-1]
    return ("clean: " if out.returncode == 0 else "FAILED: ") + last


def fmt(r: dict) -> str:
    return f"{r['throughput']:,.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"


# --- workload 1 -----------------------------------------------------------------------------------

def baseline_trivial(args, connections: int) -> dict:
    """The faster of a trivial sync and a trivial async FastAPI POST under the same uvicorn settings."""
    port = free_port()
    logs = Path(args.data_dir) / "baseline.log"
    best = None
    with server([sys.executable, "-m", "bench.baseline_app", "--port", str(port)], port=port, log_path=logs,
                health="/docs"):
        for kind in ("sync", "async"):
            r = load(f"http://127.0.0.1:{port}/{kind}", connections=connections, args=args, template="trivial")
            r["endpoint"] = kind
            log(f"  baseline {kind}: {fmt(r)}")
            if best is None or r["throughput"] > best["throughput"]:
                best = r
    return best


def consume_run(args, url: str, meta_path: Path, *, connections: int, holder: str | None = None,
                workers: int = 1) -> dict:
    port = free_port()
    logs = Path(args.data_dir) / "server.log"
    with server(serve_cmd(url, port, workers), port=port, log_path=logs):
        return load(f"http://127.0.0.1:{port}/v1/consumptions", connections=connections, args=args,
                    template="consume", meta_path=meta_path, holder=holder)


def run_workload_1(args) -> dict:
    url, meta_path = sqlite_dataset(args)
    log("workload 1: baseline (trivial FastAPI POST, 16 connections)")
    base = baseline_trivial(args, 16)
    log("workload 1: consume 1 credit, 16 connections, SQLite")
    ours = consume_run(args, url, meta_path, connections=16)
    log(f"  consume: {fmt(ours)} errors={ours['errors']}")
    ratio = ours["throughput"] / base["throughput"] if base["throughput"] else None
    verify = run_verify(url) if args.verify else "not run"
    packs = json.loads(meta_path.read_text())["packs"]
    met = ratio is not None and ratio >= 0.5 and ours["p99_ms"] < 50 and not ours["errors"]
    return {"workload": 1, "name": "HTTP consume, SQLite, 16 connections",
            "goal": ">= 0.5x trivial FastAPI POST, p99 < 50 ms",
            "measured": f"{fmt(ours)}; baseline ({base['endpoint']}) {fmt(base)}; {packs:,} packs",
            "ratio": ratio, "met": met, "ours": ours, "baseline": base, "verify": verify}


# --- workload 3 -----------------------------------------------------------------------------------

def run_workload_3(args) -> dict:
    url, meta_path = sqlite_dataset(args)
    meta = json.loads(meta_path.read_text())
    reference = args.results.get(1)
    if reference is None:
        log("workload 3: measuring workload 1's consume as the reference")
        ref = consume_run(args, url, meta_path, connections=16)
    else:
        ref = reference["ours"]
    log("workload 3: hot holder, 8 connections on one office with 10 packs")
    ours = consume_run(args, url, meta_path, connections=8, holder=meta["hot_office_id"])
    log(f"  hot holder: {fmt(ours)} errors={ours['errors']}")
    ratio = ours["throughput"] / ref["throughput"] if ref["throughput"] else None
    verify = run_verify(url) if args.verify else "not run"
    met = ratio is not None and ratio >= 0.3 and not ours["errors"]
    return {"workload": 3, "name": "Hot holder (one office, 10 packs), 8 connections, SQLite",
            "goal": ">= 0.3x workload 1, zero errors",
            "measured": f"{fmt(ours)}, errors {sum(ours['errors'].values())}; workload 1 {ref['throughput']:,.0f} req/s",
            "ratio": ratio, "met": met, "ours": ours, "reference": ref, "verify": verify}


# --- workload 2 -----------------------------------------------------------------------------------

PGBENCH_SCRIPT = """\\set a random(1, {n})
\\set b random(1, {n})
BEGIN;
UPDATE bench_accounts SET balance = balance - 1 WHERE id = :a;
UPDATE bench_accounts SET balance = balance + 1 WHERE id = :b;
INSERT INTO bench_transfers (debit_id, credit_id, amount) VALUES (:a, :b, 1);
END;
"""


def _pg_parts(pg_url: str) -> dict:
    from urllib.parse import urlsplit

    p = urlsplit(pg_url)
    return {"host": p.hostname or "127.0.0.1", "port": str(p.port or 5432), "user": p.username or "postgres"}


def _psql(pg: dict, db: str, sql: str) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"],
                    "-d", db, "-c", sql], check=True, capture_output=True)


def pgbench_transfer(args, pg: dict, db: str, clients: int) -> dict:
    n = 100_000
    _psql(pg, db, "CREATE TABLE bench_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);"
                  f"INSERT INTO bench_accounts SELECT g, 1000000 FROM generate_series(1, {n}) g;"
                  "CREATE TABLE bench_transfers (id bigserial PRIMARY KEY, debit_id bigint NOT NULL, "
                  "credit_id bigint NOT NULL, amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());")
    _psql(pg, db, "VACUUM ANALYZE bench_accounts")  # not inside the implicit transaction of a multi-statement -c
    script = Path(args.data_dir) / "pgbench_transfer.sql"
    script.write_text(PGBENCH_SCRIPT.format(n=n))
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(int(args.duration)),
                          "-h", pg["host"], "-p", pg["port"], "-U", pg["user"], "-f", str(script), db],
                         capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return {"throughput": tps, "latency_avg_ms": float(lat.group(1)) if lat else None}


def run_workload_2(args) -> dict:
    from bench import seed

    pg = _pg_parts(args.pg_url)
    db = f"creditdesk_bench_{os.getpid()}"
    scale = SCALES[args.scale]
    subprocess.run(["createdb", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"], db], check=True)
    try:
        url = f"postgresql://{pg['user']}@{pg['host']}:{pg['port']}/{db}"
        log(f"workload 2: seeding {scale['pg_packs']:,} packs over {scale['pg_holders']:,} holders into {db}")
        info = seed.seed(url, packs=scale["pg_packs"], holders=scale["pg_holders"], progress=lambda m: log("  " + m))
        meta_path = Path(args.data_dir) / "pg.json"
        meta_path.write_text(json.dumps(info))
        log("workload 2: baseline pgbench double-entry transfer (2 updates, 1 insert), 8 clients")
        base = pgbench_transfer(args, pg, db, 8)
        log(f"  pgbench: {base['throughput']:,.0f} tps, latency avg {base['latency_avg_ms']} ms")
        workers = args.pg_workers
        log(f"workload 2: consume 1 credit, 8 connections, PostgreSQL, serve --workers {workers}")
        ours = consume_run(args, url, meta_path, connections=8, workers=workers)
        log(f"  consume: {fmt(ours)} errors={ours['errors']}")
        verify = run_verify(url) if args.verify else "not run"
    finally:
        subprocess.run(["dropdb", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"], "--if-exists", db])
    ratio = ours["throughput"] / base["throughput"] if base["throughput"] else None
    met = ratio is not None and ratio >= 0.4 and not ours["errors"]
    return {"workload": 2, "name": f"HTTP consume, PostgreSQL, 8 connections, {workers} serve workers",
            "goal": ">= 0.4x pgbench double-entry transfer",
            "measured": f"{fmt(ours)}; pgbench {base['throughput']:,.0f} tps (avg {base['latency_avg_ms']} ms); "
                        f"{info['packs']:,} packs",
            "ratio": ratio, "met": met, "ours": ours, "baseline": base, "verify": verify}


# --- dispatch and report --------------------------------------------------------------------------

def machine_note() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            "shared machine")


def run_one(number: int, args) -> dict:
    module_name, function_name = WORKLOADS[number]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return {"workload": number, "goal": "", "measured": f"not available ({module_name} not written yet)",
                "ratio": None, "met": False, "skipped": True}
    fn = getattr(module, function_name, None)
    if fn is None:
        return {"workload": number, "goal": "", "measured": f"not available ({module_name}.{function_name} missing)",
                "ratio": None, "met": False, "skipped": True}
    return fn(args)


def load_results() -> dict[str, dict]:
    if RESULTS_FILE.exists():
        return json.loads(RESULTS_FILE.read_text())
    return {}


def markdown_table(results: dict[str, dict]) -> str:
    lines = ["| # | Workload | Goal | Measured | Ratio | Met | Date | Scale |",
             "|---|---|---|---|---|---|---|---|"]
    for key in sorted(results, key=int):
        r = results[key]
        ratio = "—" if r.get("ratio") is None else (f"{r['ratio']:.3f}x" if r["ratio"] < 0.1 else f"{r['ratio']:.2f}x")
        lines.append(f"| {r['workload']} | {r.get('name', '')} | {r.get('goal', '')} | {r.get('measured', '')} | "
                     f"{ratio} | {'yes' if r.get('met') else '**no**'} | {r.get('date', '')} | {r.get('scale', '')} |")
    return "\n".join(lines)


def write_readme(table: str, machine: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n\n<!-- results:start -->\n<!-- results:end -->\n"
    block = f"<!-- results:start -->\n{table}\n\nMachine: {machine}\n<!-- results:end -->"
    text = re.sub(r"<!-- results:start -->.*?<!-- results:end -->", lambda _m: block, text, flags=re.S)
    README.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="1,2,3", help="Comma-separated workload numbers (1-6).")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--duration", type=float, help="Seconds of measured load per run (default by scale).")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--data-dir", default=os.environ.get("CREDITDESK_BENCH_DIR", "/tmp/creditdesk-bench"))
    parser.add_argument("--pg-workers", type=int, default=os.cpu_count() or 2,
                        help="serve --workers for workload 2 (the README's production advice: one per core)")
    parser.add_argument("--pg-url", default=os.environ.get("CREDITDESK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="Load generator's HTTP client.")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="Skip `ledger verify` afterwards.")
    parser.add_argument("--write-readme", action="store_true", help="Rewrite the results table in bench/README.md.")
    parser.add_argument("--no-save", dest="save", action="store_false", help="Do not record into bench/results.json.")
    parser.add_argument("--report-only", action="store_true",
                        help="Run nothing: print (and with --write-readme, write) the table of bench/results.json.")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = SCALES[args.scale]["duration"]
    numbers = [] if args.report_only else [int(n) for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in numbers if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {unknown}; known: {sorted(WORKLOADS)}")
    args.results = {}
    machine = machine_note()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    for number in numbers:
        result = run_one(number, args)
        result.setdefault("date", date)
        result.setdefault("scale", args.scale)
        result.setdefault("machine", machine)
        args.results[number] = result
        ratio = "n/a" if result.get("ratio") is None else f"{result['ratio']:.2f}x"
        log(f"workload {number}: {result.get('measured')} -> ratio {ratio}, goal met: {result.get('met')}")
    saved = load_results()
    if args.save:
        for number, result in args.results.items():
            if not result.get("skipped"):
                saved[str(number)] = result
        RESULTS_FILE.write_text(json.dumps(saved, indent=1, sort_keys=True, default=str) + "\n")
    table = markdown_table({**saved, **{str(n): r for n, r in args.results.items() if str(n) not in saved}})
    print(table)
    print(f"\nMachine: {machine}")
    if args.write_readme:
        write_readme(table, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
