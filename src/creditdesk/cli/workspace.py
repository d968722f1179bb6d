"""`creditdesk workspace` and `creditdesk apikey`: a tenant with its first master user, and API keys."""

from __future__ import annotations

import json
import secrets

import typer

from creditdesk.cli.common import DatabaseOption, console, ensure_schema, open_db, run_service

workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
JsonOption = typer.Option(False, "--json", help="Print one JSON object (for scripts) instead of sentences.")


@workspace_app.command("create")
def workspace_create(
    name: str = typer.Argument(..., help="The workspace (business) name."),
    master_email: str = typer.Option(..., "--master-email", help="Email of the first master user (their login)."),
    master_name: str = typer.Option("Administrator", "--master-name", help="Name of the first master user."),
    password: str = typer.Option(None, "--password", envvar="CREDITDESK_MASTER_PASSWORD",
                                 help="Back-office password of the master user (generated and printed if omitted)."),
    time_zone: str = typer.Option("UTC", "--time-zone",
                                  help="Where the business is (IANA name, e.g. Australia/Sydney): bare dates are "
                                       "days there, times are shown in it."),
    database_url: str = DatabaseOption,
    as_json: bool = JsonOption,
):
    """Create a workspace with its first master user and an API key (printed once)."""
    from creditdesk.parties import service as parties

    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=True)
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    ws, user, key, secret = run_service(db, lambda s: parties.create_workspace(
        s, name=name, master_name=master_name, master_email=master_email, master_password=password,
        time_zone=time_zone))
    if as_json:
        typer.echo(json.dumps({"workspace_id": ws.id, "name": ws.name, "master_user_id": user.id,
                               "master_email": user.email, "password": password if generated else None,
                               "api_key_id": key.id, "api_key": secret}))
        return
    console.print(f"Workspace [bold]{ws.name}[/bold] created: {ws.id}")
    console.print(f"Master user: {user.email} ({user.id})" + (f", password: [bold]{password}[/bold]" if generated else ""))
    console.print(f"API key (shown once, keep it safe): [bold]{secret}[/bold]")


@apikey_app.command("create")
def apikey_create(
    workspace_id: str = typer.Option(..., "--workspace", help="Workspace id (ws_...)."),
    user_id: str = typer.Option(None, "--user", help="User the key acts as (default: the first master user)."),
    name: str = typer.Option("CLI key", "--name", help="A name to recognise the key by."),
    database_url: str = DatabaseOption,
    as_json: bool = JsonOption,
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
    if as_json:
        typer.echo(json.dumps({"api_key_id": key.id, "user_id": key.user_id, "workspace_id": workspace_id,
                               "api_key": secret}))
        return
    console.print(f"API key {key.id} acting as {key.user_id} (shown once): [bold]{secret}[/bold]")


@apikey_app.command("list")
def apikey_list(
    workspace_id: str = typer.Option(..., "--workspace", help="Workspace id (ws_...)."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Keys per page (1 to 500)."),
    cursor: str = typer.Option(None, "--cursor", help="The next page: the cursor printed after a full page."),
    database_url: str = DatabaseOption,
    as_json: bool = JsonOption,
):
    """List a workspace's API keys (never their secrets): id, name, the user it acts as, prefix, last used,
    revoked. Newest last; `--cursor` pages on."""
    from rich.table import Table

    from creditdesk.audit import Actor
    from creditdesk.parties import service as parties

    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=False)
    with db.read() as session:
        page = parties.list_api_keys(session, actor=Actor.system(workspace_id), limit=limit, cursor=cursor)
        rows = [{"id": k.id, "name": k.name, "user_id": k.user_id, "prefix": k.prefix,
                 "created_at": k.created_at.isoformat() if k.created_at else None,
                 "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                 "revoked": k.revoked_at is not None} for k in page.items]
    if as_json:
        typer.echo(json.dumps({"data": rows, "next_cursor": page.next_cursor}))
        return
    table = Table("id", "name", "acts as", "prefix", "last used", "revoked")
    for r in rows:
        table.add_row(r["id"], r["name"], r["user_id"], r["prefix"], (r["last_used_at"] or "never")[:19],
                      "yes" if r["revoked"] else "")
    console.print(table)
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}")


@workspace_app.command("list")
def workspace_list(database_url: str = DatabaseOption, as_json: bool = JsonOption):
    """List the workspaces of this database: id, name, when created, and how many users each has."""
    from rich.table import Table
    from sqlalchemy import func, select

    from creditdesk.parties.models import User, Workspace

    db = open_db(database_url)
    ensure_schema(db, apply_if_empty=False)
    with db.read() as session:
        users = dict(session.execute(select(User.workspace_id, func.count()).group_by(User.workspace_id)).all())
        rows = [{"id": w.id, "name": w.name, "created_at": w.created_at.isoformat() if w.created_at else None,
                 "users": users.get(w.id, 0)}
                for w in session.scalars(select(Workspace).order_by(Workspace.id))]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "name", "created", "users")
    for r in rows:
        table.add_row(r["id"], r["name"], (r["created_at"] or "")[:19], str(r["users"]))
    console.print(table)
