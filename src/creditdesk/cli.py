"""The `creditdesk` command. Each command opens its own transaction and calls the same services as the API."""

from __future__ import annotations

import os
import secrets
import sys
from enum import Enum

import typer
from rich.console import Console

from creditdesk.config import get_settings
from creditdesk.db import Database, get_database

app = typer.Typer(help="creditdesk: prepaid credits and account billing. Every command has --help.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema: apply and check migrations.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")
app.add_typer(apikey_app, name="apikey")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DatabaseOption = typer.Option(None, "--database-url", envvar="CREDITDESK_DATABASE_URL",
                              help="Database URL (default: sqlite:///creditdesk.db in the working directory).")


def open_db(database_url: str | None) -> Database:
    return get_database(database_url or get_settings().database_url)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def run_service(db: Database, fn):
    """Run one write transaction; domain errors end the command with their message and code."""
    from creditdesk.errors import CreditdeskError

    try:
        return db.write(fn)
    except CreditdeskError as exc:
        fail(f"{exc.message} ({exc.code})")


def ensure_schema(db: Database, *, apply_if_empty: bool) -> None:
    from creditdesk import migrate

    if migrate.is_empty(db):
        if not apply_if_empty:
            fail("The database has no schema yet. Run: creditdesk db upgrade")
        console.print("Empty database: applying migrations ...")
        migrate.upgrade(db)
        return
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()
    if migrate.current_revision(db) != head:
        fail("The database schema is behind this version of creditdesk. Run: creditdesk db upgrade")


# --- db ---

@db_app.command("upgrade")
def db_upgrade(database_url: str = DatabaseOption, revision: str = typer.Argument("head", help="Target revision.")):
    """Apply the migrations up to REVISION (default: the newest)."""
    from creditdesk import migrate

    db = open_db(database_url)
    migrate.upgrade(db, revision)
    console.print(f"Database at revision [bold]{migrate.current_revision(db)}[/bold] ({db.dialect}).")


@db_app.command("check")
def db_check(database_url: str = DatabaseOption):
    """Fail if the models and the migrations disagree (alembic check)."""
    from creditdesk import migrate

    db = open_db(database_url)
    try:
        migrate.check(db)
    except Exception as exc:  # alembic raises its own error types; all mean "not in sync"
        fail(str(exc))
    console.print("Models and migrations agree.")


# --- workspace ---

@workspace_app.command("create")
def workspace_create(
    name: str = typer.Argument(..., help="The workspace (business) name."),
    master_email: str = typer.Option(..., "--master-email", help="Email of the first master user (their login)."),
    master_name: str = typer.Option("Administrator", "--master-name", help="Name of the first master user."),
    password: str = typer.Option(None, "--password", envvar="CREDITDESK_MASTER_PASSWORD",
                                 help="Back-office password of the master user (generated and printed if omitted)."),
    database_url: str = DatabaseOption,
):
    """Create a workspace with its first master user and an API key (printed once)."""
    from creditdesk.parties import service as parties

    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=True)
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    ws, user, key, secret = run_service(db, lambda s: parties.create_workspace(
        s, name=name, master_name=master_name, master_email=master_email, master_password=password))
    console.print(f"Workspace [bold]{ws.name}[/bold] created: {ws.id}")
    console.print(f"Master user: {user.email} ({user.id})" + (f", password: [bold]{password}[/bold]" if generated else ""))
    console.print(f"API key (shown once, keep it safe): [bold]{secret}[/bold]")


# --- apikey ---

@apikey_app.command("create")
def apikey_create(
    workspace_id: str = typer.Option(..., "--workspace", help="Workspace id (ws_...)."),
    user_id: str = typer.Option(None, "--user", help="User the key acts as (default: the first master user)."),
    name: str = typer.Option("CLI key", "--name", help="A name to recognise the key by."),
    database_url: str = DatabaseOption,
):
    """Create an API key acting as a user of a workspace (printed once)."""
    from sqlalchemy import select

    from creditdesk.audit import Actor
    from creditdesk.parties import schemas
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User

    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=False)

    def fn(session):
        uid = user_id or session.scalar(select(User.id).where(
            User.workspace_id == workspace_id, User.role == "master", User.is_active.is_(True)).order_by(User.id))
        if uid is None:
            from creditdesk.errors import NotFound
            raise NotFound(f"No workspace {workspace_id!r} with an active master user.")
        return parties.create_api_key(session, schemas.ApiKeyCreate(name=name, user_id=uid),
                                      actor=Actor.system(workspace_id))

    key, secret = run_service(db, fn)
    console.print(f"API key {key.id} acting as {key.user_id} (shown once): [bold]{secret}[/bold]")


# --- serve ---

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


@app.command()
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
                      "alice@demo.example.com (member, team with Bob), bob@, carol@, dan@ (frozen SMS credits); "
                      "same password")
        console.print(f"API key:      [bold]{info.api_key}[/bold]  (a new key at every --demo start)")
        console.print(f"Try:          curl -H 'Authorization: Bearer {info.api_key}' http://{host}:{port}/v1/offices")
        console.print(f"API docs:     http://{host}:{port}/docs")
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


def _register_domain_commands() -> None:
    from creditdesk import cli_credits

    cli_credits.register(app)


_register_domain_commands()

if __name__ == "__main__":
    app()
