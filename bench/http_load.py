"""HTTP load generator: N keep-alive connections, each sending one request after another.

A minimal HTTP/1.1 client on asyncio streams (Content-Length bodies, keep-alive), run in its own
process. It is deliberately lean: on a 2-core machine shared with the server, a heavier client
(httpx costs a few hundred microseconds of CPU per request) would cap the baseline and flatter
the ratio. `--client httpx` uses httpx instead, as a cross-check.

    python -m bench.http_load --url http://127.0.0.1:8000/v1/consumptions --connections 16 \\
        --duration 15 --warmup 3 --body-template consume --meta /tmp/bench.json

Prints one JSON object: requests, ok, errors by status, throughput (ok requests/s after warm-up),
p50/p90/p99/max latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


class Bodies:
    """What each request sends: a fixed small body, or a consumption from a holder of the dataset."""

    def __init__(self, template: str, meta: dict | None, holder: str | None):
        self.template = template
        self.meta = meta or {}
        self.offices = self.meta.get("office_ids") or []
        self.holder = holder
        self.rng = random.Random()

    def next(self) -> tuple[bytes, dict[str, str]]:
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        if self.meta.get("api_key"):
            headers["Authorization"] = f"Bearer {self.meta['api_key']}"
        if self.template == "trivial":
            body = {"name": "bench", "amount": self.rng.randint(1, 1000), "tags": ["a", "b"]}
        else:
            office = self.holder or self.rng.choice(self.offices)
            body = {"context": {"kind": "office", "id": office}, "credit_type": "credit", "amount": 1,
                    "reference": {"kind": "bench", "id": uuid.uuid4().hex[:16]}}
        return json.dumps(body).encode(), headers


async def _worker_raw(host: str, port: int, path: str, bodies: Bodies, stop_at: float, measure_from: float,
                      results: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            body, headers = bodies.next()
            head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
                    f"Content-Length: {len(body)}"]
            head += [f"{k}: {v}" for k, v in headers.items()]
            started = time.perf_counter()
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length) if length else b""
            elapsed = time.perf_counter() - started
            _record(results, started, measure_from, stop_at, status, elapsed, payload)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _worker_httpx(client, url: str, bodies: Bodies, stop_at: float, measure_from: float, results: dict):
    while time.perf_counter() < stop_at:
        body, headers = bodies.next()
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        response = await client.post(url, content=body, headers=headers)
        elapsed = time.perf_counter() - started
        _record(results, started, measure_from, stop_at, response.status_code, elapsed, response.content)


def _record(results: dict, started: float, measure_from: float, stop_at: float, status: int, elapsed: float,
            payload: bytes) -> None:
    if started < measure_from or started + elapsed > stop_at:
        return  # warm-up, or cut off by the end of the run
    results["latencies"].append(elapsed)
    if 200 <= status < 300:
        results["ok"] += 1
    else:
        results["errors"][str(status)] = results["errors"].get(str(status), 0) + 1
        if len(results["samples"]) < 3:
            results["samples"].append(payload[:300].decode("utf-8", "replace"))


async def run(url: str, *, connections: int, duration: float, warmup: float, bodies: Bodies,
              client: str = "raw") -> dict:
    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
    results = {"ok": 0, "errors": {}, "latencies": [], "samples": []}
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            await asyncio.gather(*[_worker_httpx(http, url, bodies, stop_at, measure_from, results)
                                   for _ in range(connections)])
    else:
        await asyncio.gather(*[_worker_raw(host, port, path, bodies, stop_at, measure_from, results)
                               for _ in range(connections)])
    lat = sorted(results.pop("latencies"))
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    total = results["ok"] + sum(results["errors"].values())
    return {"requests": total, "ok": results["ok"], "errors": results["errors"], "error_samples": results["samples"],
            "seconds": duration, "throughput": round(results["ok"] / duration, 1), "p50_ms": ms(percentile(lat, 0.5)),
            "p90_ms": ms(percentile(lat, 0.9)), "p99_ms": ms(percentile(lat, 0.99)), "max_ms": ms(lat[-1] if lat else None),
            "connections": connections}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--body-template", choices=["trivial", "consume"], default="trivial")
    parser.add_argument("--meta", help="Dataset sidecar written by bench.seed (API key, holder ids).")
    parser.add_argument("--holder", help="Consume from this one office (the hot-holder workload).")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    args = parser.parse_args(argv)
    meta = None
    if args.meta:
        with open(args.meta) as handle:
            meta = json.load(handle)
    try:
        import uvloop  # the same event loop the server uses, when installed
        uvloop.install()
    except ImportError:
        pass
    bodies = Bodies(args.body_template, meta, args.holder)
    result = asyncio.run(run(args.url, connections=args.connections, duration=args.duration, warmup=args.warmup,
                             bodies=bodies, client=args.client))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
