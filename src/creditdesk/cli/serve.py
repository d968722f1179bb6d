"""`creditdesk serve`: the REST API and the back office under uvicorn, and the limits it runs them with."""

from __future__ import annotations

import os
import sys
from enum import Enum

import typer

from creditdesk.cli.common import DatabaseOption, console, ensure_schema, fail, open_db, run_service
from creditdesk.config import get_settings


def session_secret_for_serve(*, demo: bool, database_url: str) -> str:
    """The key that will sign back-office sessions, or exit with how to set one.

    Outside --demo the shipped placeholder or a short key is refused: with it anyone can sign a session
    cookie for any user. The demo makes a random key once and keeps it beside its database."""
    from creditdesk.config import SECRET_KEY_HINT, secret_key_problem

    key = get_settings().secret_key
    problem = secret_key_problem(key)
    if problem is None:
        return key
    if not demo:
        fail(f"{problem}\n{SECRET_KEY_HINT}\n(`creditdesk serve --demo` makes and keeps a key of its own.)")
    from creditdesk import demo as demo_data

    try:
        key = demo_data.demo_secret_key(database_url)
    except (OSError, ValueError) as exc:
        fail(f"Cannot keep a demo session key: {exc}")
    # Worker processes and the app read the key from the settings, as they read the database URL.
    os.environ["CREDITDESK_SECRET_KEY"] = key
    get_settings.cache_clear()
    return key


def proxy_options() -> dict:
    """uvicorn believes X-Forwarded-For/-Proto only from CREDITDESK_TRUSTED_PROXIES (its own default would
    trust 127.0.0.1: any local process, or a proxy passing the header through, could pick its address and
    so dodge the per-address login throttle)."""
    trusted = get_settings().trusted_proxies.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


class HttpParser(str, Enum):
    auto = "auto"
    h11 = "h11"
    httptools = "httptools"


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
    demo: bool = typer.Option(False, "--demo", help="On an empty database, first create a demo workspace "
                                                    "and print its back-office login and an API key."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request."),
    http: HttpParser = typer.Option(HttpParser.auto, "--http",
                                    help="HTTP parser: auto (httptools when installed: fastest, no header "
                                         "size cap), h11 (refuses headers over 16 KiB), httptools."),
    database_url: str = DatabaseOption,
):
    """Serve the REST API (/v1, docs at /docs) and the back office (/).

    Needs CREDITDESK_SECRET_KEY (32 bytes or more) to sign back-office sessions, except with --demo."""
    import uvicorn

    from creditdesk.parties import service as parties

    db = open_db(database_url)
    session_secret_for_serve(demo=demo, database_url=db.url)
    ensure_schema(db, apply_if_empty=True)
    if demo:
        from creditdesk import demo as demo_data

        info = run_service(db, demo_data.ensure_demo)
        console.rule("creditdesk demo")
        console.print(f"Back office:  http://{host}:{port}/   login [bold]{info.email}[/bold] / "
                      f"password [bold]{info.password}[/bold]")
        console.print("Other staff:  manager@demo.example.com (manager, manages office SMS credits), "
                      "alice@demo.example.com (member, team with Bob), bob@ (member), carol@ (member without "
                      "send_sms), dan@ (frozen SMS credits); same password")
        console.print(f"Workspace:    {info.workspace_id}  (the --workspace of every CLI command)")
        console.print(f"API key:      [bold]{info.api_key}[/bold]  (a new key at every --demo start)")
        console.print(f"Try:          curl -H 'Authorization: Bearer {info.api_key}' http://{host}:{port}/v1/offices")
        console.print(f"API docs:     http://{host}:{port}/docs")
        where = db.url.split("///", 1)[1] if db.url.startswith("sqlite") else "the PostgreSQL database"
        console.print(f"Stop:         Ctrl+C. Reset the demo: stop, delete {where}, start again.")
        console.rule()
    else:
        with db.read() as session:
            if parties.count_workspaces(session) == 0:
                console.print("[yellow]No workspace yet.[/yellow] Create one with:\n"
                              "  creditdesk workspace create \"My business\" --master-email you@example.com\n"
                              "or start with demo data: creditdesk serve --demo")
    sys.stdout.flush()
    if workers == 1:
        from creditdesk.api.app import create_app

        uvicorn.run(create_app(db=db, run_jobs=True), host=host, port=port, access_log=access_log,
                    log_level="info", **proxy_options(), **server_options(http))
        return
    # Worker processes import the app afresh; they find the database through the environment.
    os.environ["CREDITDESK_DATABASE_URL"] = db.url
    uvicorn.run("creditdesk.api.app:create_server_app", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info", **proxy_options(), **server_options(http))


# Request headers above this size are refused by the h11 parser (its default, said out loud). httptools
# has no such cap: in front of the internet, a reverse proxy caps and times out headers (README, Security).
MAX_HEADER_BYTES = 16 * 1024


def server_options(http: HttpParser) -> dict:
    """uvicorn's connection limits for `serve`. The body read timeout is not here: uvicorn has none, so
    the app enforces it (api/security.py BodyReadTimeout, CREDITDESK_BODY_READ_TIMEOUT_SECONDS)."""
    settings = get_settings()
    return {
        "http": http.value,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        # Past this many open connections or running requests, new requests get 503 at once instead
        # of piling up memory and file descriptors.
        "limit_concurrency": settings.limit_concurrency or None,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "server_header": False,  # no "server: uvicorn" on every answer
    }
