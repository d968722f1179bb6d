"""CLI commands of the ledger and credits: verify, jobs, packs import/grant, consume, balance, history."""

from __future__ import annotations

import json
import os

import typer
from rich.table import Table

from creditdesk.cli.common import actor_for, console, err, fail, open_schema_db, progress_bar, run_service

ledger_app = typer.Typer(help="The double-entry ledger under every balance.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs (also run by `serve` every few seconds).", no_args_is_help=True)
packs_app = typer.Typer(help="Credit packs: grant, import, list history.", no_args_is_help=True)

# The wording these commands' --help has always had (the others say "in the working directory" too).
DatabaseOption = typer.Option(None, "--database-url", envvar="CREDITDESK_DATABASE_URL",
                              help="Database URL (default: sqlite:///creditdesk.db).")
WorkspaceOption = typer.Option(..., "--workspace", help="Workspace id (ws_...).")
UserOption = typer.Option(None, "--as", help="Act as this user id (default: the first master user).")


# --- ledger ---

@ledger_app.command("verify")
def ledger_verify(workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace."),
                  database_url: str = DatabaseOption):
    """Recompute every balance from the transfers and check the invariants. Exits 1 if anything is wrong."""
    from sqlalchemy import func, select

    from creditdesk.ledger import service as ledger
    from creditdesk.ledger.models import LedgerAccount

    db = open_schema_db(database_url)
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(LedgerAccount).where(
            *([LedgerAccount.workspace_id == workspace_id] if workspace_id else []))) or 0
        with progress_bar() as progress:
            task = progress.add_task("Checking accounts", total=total)
            report = ledger.verify(session, workspace_id=workspace_id, progress=lambda: progress.advance(task))
        # Billing's stored period balances must be what the ledger says at each period's end.
        from creditdesk.billing.verify import verify_period_balances

        period_balances, billing_problems = verify_period_balances(session, workspace_id=workspace_id)
        report.problems.extend(billing_problems)
        # Each invoice's amount due is its total less allocations and credit notes; accounts match the ledger.
        from creditdesk.billing.verify import verify_invoices

        invoices_checked, invoice_problems = verify_invoices(session, workspace_id=workspace_id)
        report.problems.extend(invoice_problems)
    for problem in report.problems:
        err.print(f"[red]✗[/red] {problem}")
    if not report.ok:
        err.print(f"[red]{len(report.problems)} problem(s)[/red] in {report.accounts_checked} accounts, "
                      f"{report.transfers_checked} transfers.")
        raise typer.Exit(1)
    console.print(f"[green]Ledger OK[/green]: {report.accounts_checked} accounts, "
                      f"{report.transfers_checked} transfers; cached balances match, debits equal credits "
                      "per unit, no account below zero; "
                      f"{period_balances} period opening balance(s) match the ledger; "
                      f"{invoices_checked} invoice(s) agree with their payments and credit notes.")


# --- jobs ---

@jobs_app.command("expire")
def jobs_expire(workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace."),
                batch_size: int = typer.Option(2000, help="Packs per transaction."),
                database_url: str = DatabaseOption):
    """Expire packs past their expiry date (remaining credits go to breakage). Safe to re-run."""
    from creditdesk.credits import repository
    from creditdesk.jobs import runner

    db = open_schema_db(database_url)
    with db.read() as session:
        due = repository.count_due_packs(session, workspace_id=workspace_id)
    with progress_bar() as progress:
        task = progress.add_task("Expiring packs", total=due)
        count = runner.expire_due_packs(db, batch_size=batch_size, workspace_id=workspace_id,
                                        progress=lambda n: progress.advance(task, n))
    console.print(f"{count} pack(s) expired.")


@jobs_app.command("release-holds")
def jobs_release_holds(workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace."),
                       database_url: str = DatabaseOption):
    """Release holds past their timeout. Safe to re-run."""
    from creditdesk.jobs import runner

    db = open_schema_db(database_url)
    count = runner.release_timed_out_holds(db, workspace_id=workspace_id)
    console.print(f"{count} hold(s) released.")


@jobs_app.command("run")
def jobs_run(database_url: str = DatabaseOption):
    """Run every job once (hold timeouts, then expiry)."""
    from creditdesk.jobs import runner

    result = runner.run_all(open_schema_db(database_url))
    console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items()))


# --- packs ---

@packs_app.command("import")
def packs_import(path: str = typer.Argument(None, help="CSV file with a header row (see README)."),
                 workspace_id: str = WorkspaceOption, as_user: str = UserOption,
                 batch_size: int = typer.Option(5000, help="Rows per transaction."),
                 dry_run: bool = typer.Option(False, "--dry-run",
                                              help="Show what the file would grant, skip and refuse; write nothing."),
                 template: bool = typer.Option(False, "--template",
                                               help="Print a CSV template with a sample row for this workspace."),
                 database_url: str = DatabaseOption):
    """Grant packs from a CSV file, streamed. Bad rows are reported with their line numbers; valid rows
    are committed; re-running the same file grants nothing twice."""
    from creditdesk.credits import importer
    from creditdesk.errors import CreditdeskError

    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, as_user)
    if template:
        with db.read() as session:
            typer.echo(importer.template_csv(session, actor.workspace_id), nl=False)
        return
    if not path:
        fail("Give the CSV file to import (or --template for a template).")
    if dry_run:
        _packs_import_dry_run(db, path, actor, batch_size)
        return
    size = os.path.getsize(path)
    with open(path, newline="", encoding="utf-8-sig") as handle, progress_bar() as progress:
        task = progress.add_task("Importing packs (bytes)", total=size)

        def advance(_rows: int) -> None:
            progress.update(task, completed=handle.buffer.tell() if hasattr(handle, "buffer") else 0)

        try:
            report = importer.import_stream(db, handle, actor=actor, batch_size=batch_size, progress=advance)
        except CreditdeskError as exc:
            fail(f"{exc.message} ({exc.code})")
        progress.update(task, completed=size)
    for line, message in report.errors[:200]:
        err.print(f"[red]line {line}[/red]: {message}")
    if report.error_count > 200:
        err.print(f"... and {report.error_count - 200} more errors")
    console.print(f"{report.granted} pack(s) granted, {report.skipped} already imported, "
                      f"{report.error_count} error(s).")
    if report.error_count:
        raise typer.Exit(1)


def _packs_import_dry_run(db, path: str, actor, batch_size: int) -> None:
    """The file imported in a transaction that is rolled back (the back office's preview): what it would do."""
    from creditdesk.credits import importer
    from creditdesk.errors import CreditdeskError

    with db.read() as session:
        units = importer.units_of(session, actor.workspace_id)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        check = importer.validate_file(handle, units=units)
    if check.file_error:
        fail(check.file_error)
    try:
        preview = importer.preview_rows(db, check.rows, actor=actor, skipped=check.skipped, batch_size=batch_size)
    except CreditdeskError as exc:
        fail(f"{exc.message} ({exc.code})")
    for row in preview.to_create[:200]:
        raw = row.raw or {}
        console.print(f"line {row.line}: would grant {raw.get('name')!r} ({raw.get('credit_type')})")
    for line, why in preview.skipped[:200]:
        console.print(f"line {line}: would skip: {why}")
    for line, message in preview.errors[:200]:
        err.print(f"[red]line {line}[/red]: {message}")
    console.print(f"Dry run, nothing written: {preview.create_count} pack(s) would be granted, "
                  f"{len(preview.skipped)} skipped, {preview.error_count} error(s).")
    if preview.error_count:
        raise typer.Exit(1)


@packs_app.command("grant")
def packs_grant(workspace_id: str = WorkspaceOption,
                holder: str = typer.Option(..., help="kind:id, e.g. office:off_..., user:usr_..., or workspace."),
                credit_type: str = typer.Option(..., help="Credit type code, e.g. sms."),
                quantity: int = typer.Option(..., help="Positive integer in the type's smallest unit."),
                name: str = typer.Option(..., help="Pack name."),
                expires_at: str = typer.Option(None, help="ISO date/time the pack expires."),
                expiry_months: int = typer.Option(None, help="Expire N months after purchase."),
                price_paid: int = typer.Option(0, help="Price in minor units."),
                currency: str = typer.Option(None, help="ISO currency, e.g. GBP."),
                as_user: str = UserOption, database_url: str = DatabaseOption):
    """Grant one pack to a holder."""
    from creditdesk.credits import schemas
    from creditdesk.credits import packs

    kind, _, holder_id = holder.partition(":")
    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, as_user)
    try:
        data = schemas.PackCreate(holder=schemas.Holder(kind=kind, id=holder_id or None), credit_type=credit_type,
                                  quantity=quantity, name=name, expires_at=expires_at, expiry_months=expiry_months,
                                  price_paid=price_paid, currency=currency)
    except Exception as exc:
        fail(str(exc))
    pack = run_service(db, lambda s: packs.grant_pack(s, data, actor=actor))
    console.print(f"Pack {pack.id} granted: {quantity} {credit_type} to {kind} {holder_id}.")


@packs_app.command("list")
def packs_list(workspace_id: str = WorkspaceOption,
               holder: str = typer.Option(None, help="kind:id"),
               status: str = typer.Option(None, help="active, depleted, expired or voided"),
               limit: int = typer.Option(50, help="Rows per page."), cursor: str = typer.Option(None),
               database_url: str = DatabaseOption,
               as_json: bool = typer.Option(False, "--json", help="Print the page as the API's JSON list.")):
    """List packs (one page; pass --cursor to continue)."""
    from creditdesk.credits import reads

    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, None)
    kind, _, hid = (holder or "").partition(":")
    with db.read() as session:
        page = reads.list_packs(session, actor=actor, limit=limit, cursor=cursor, holder_kind=kind or None,
                                holder_id=hid or None, status=[status] if status else None)
        views = reads.packs_out(session, page.items)
    if as_json:
        import json
        typer.echo(json.dumps({"object": "list", "data": [v.model_dump(mode="json") for v in views],
                               "next_cursor": page.next_cursor}))
        return
    table = Table("id", "holder", "type", "remaining", "quantity", "expires", "status", "label")
    for v in views:
        table.add_row(v.id, f"{v.holder['kind']}:{v.holder['id']}", v.credit_type, str(v.remaining),
                      str(v.quantity), v.expires_at.date().isoformat() if v.expires_at else "never", v.status,
                      v.status_label)
    console.print(table)
    if page.next_cursor:
        console.print(f"More: --cursor {page.next_cursor}")


def consume(workspace_id: str = WorkspaceOption,
            context: str = typer.Option(..., help="kind:id - project:prj_..., user:usr_..., office:off_..., "
                                                  "customer:cus_..., or workspace."),
            credit_type: str = typer.Option(..., help="Credit type code."),
            amount: int = typer.Option(..., help="How many (smallest unit)."),
            product: str = typer.Option(None, help="Product code being paid for."),
            reference: str = typer.Option(None, help="kind:id of what it pays for, e.g. project:prj_..."),
            allow_partial: bool = typer.Option(False, help="Take what there is instead of refusing."),
            as_user: str = UserOption, database_url: str = DatabaseOption):
    """Consume credits in burn order (priority, soonest expiry, free before paid, oldest)."""
    from creditdesk.credits import schemas
    from creditdesk.credits import consumptions

    kind, _, cid = context.partition(":")
    ref = None
    if reference:
        rkind, _, rid = reference.partition(":")
        ref = schemas.ReferenceIn(kind=rkind, id=rid)
    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, as_user)
    data = schemas.ConsumeRequest(context=schemas.Context(kind=kind, id=cid or None), credit_type=credit_type,
                                  amount=amount, product_code=product, reference=ref, allow_partial=allow_partial)
    out = run_service(db, lambda s: consumptions.consume(s, data, actor=actor))
    console.print(f"Consumption {out.id}: {out.amount} {credit_type}")
    for line in out.lines:
        console.print(f"  {line.pack_id}: {line.amount}")


def balance(workspace_id: str = WorkspaceOption,
            holder: str = typer.Option(..., help="kind:id, or workspace"),
            credit_type: str = typer.Option(None, help="Only this credit type."),
            database_url: str = DatabaseOption):
    """Available, held and total credits of a holder per credit type."""
    from creditdesk.credits import reads

    kind, _, hid = holder.partition(":")
    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, None)
    from creditdesk.errors import CreditdeskError

    try:
        with db.read() as session:
            rows = reads.balances(session, actor=actor, holder_kind=kind, holder_id=hid or None,
                                  credit_type=credit_type)
    except CreditdeskError as exc:
        fail(f"{exc.message} ({exc.code})")
    table = Table("credit type", "available", "held", "total", "frozen", "packs")
    for b in rows:
        table.add_row(b.credit_type, str(b.available), str(b.held), str(b.total), str(b.frozen), str(b.packs))
    console.print(table)


def history(pack_id: str = typer.Argument(..., help="Pack id (pack_...)."), workspace_id: str = WorkspaceOption,
            as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
            database_url: str = DatabaseOption):
    """Every movement in and out of a pack, with running balance."""
    from creditdesk.credits import reads
    from creditdesk.errors import CreditdeskError

    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, None)
    try:
        with db.read() as session:
            entries = reads.pack_history(session, actor=actor, pack_id=pack_id)
    except CreditdeskError as exc:
        fail(f"{exc.message} ({exc.code})")
    if as_json:
        for e in entries:
            print(json.dumps(e.model_dump(mode="json")))
        return
    table = Table("when", "what", "amount", "balance", "held", "reference")
    for e in entries:
        ref = f"{e.reference.kind}:{e.reference.id}" if e.reference.kind else ""
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M"), e.kind, str(e.amount), str(e.balance_after),
                      str(e.held_after), ref)
    console.print(table)
