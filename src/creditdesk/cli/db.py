"""`creditdesk db`: apply and check the migrations."""

from __future__ import annotations

import typer

from creditdesk.cli.common import DatabaseOption, console, fail, open_db

db_app = typer.Typer(help="Database schema: apply and check migrations.", no_args_is_help=True)


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
