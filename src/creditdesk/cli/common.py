"""What every `creditdesk` command shares: the consoles, the database option, opening the database,
failing with a message, running one write transaction, and who a command acts as."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from creditdesk.config import get_settings
from creditdesk.db import Database, get_database

console = Console(soft_wrap=True)
# Progress and notes go to stderr, so that stdout carries only the answer (`--json` output for scripts).
notes = Console(soft_wrap=True, stderr=True)
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
        notes.print("Empty database: applying migrations ...")
        migrate.upgrade(db)
        return
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()
    if migrate.current_revision(db) != head:
        fail("The database schema is behind this version of creditdesk. Run: creditdesk db upgrade")


def open_schema_db(database_url: str | None) -> Database:
    """The database of a command that needs the schema to be there already."""
    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=False)
    return db


def actor_for(db: Database, workspace_id: str, user_id: str | None):
    """The user a CLI command acts as (default: the workspace's first active master user)."""
    from sqlalchemy import select

    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User

    with db.read() as session:
        stmt = select(User).where(User.workspace_id == workspace_id, User.is_active.is_(True))
        stmt = stmt.where(User.id == user_id) if user_id else stmt.where(User.role == "master").order_by(User.id)
        user = session.scalars(stmt).first()
        if user is None:
            fail(f"No active {'user ' + user_id if user_id else 'master user'} in workspace {workspace_id}.")
        return parties.actor_for_user(session, user)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeRemainingColumn(), transient=False)
