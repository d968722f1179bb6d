"""CLI commands of invoices: export."""

from __future__ import annotations

import sys
from datetime import datetime

import typer

from creditdesk.cli.common import DatabaseOption, actor_for, console, fail, open_schema_db, progress_bar

invoices_app = typer.Typer(help="Invoices of the billing accounts.", no_args_is_help=True)


def _day(value: str | None, option: str):
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        fail(f"{option} is a date like 2026-12-31, not {value!r}.")


@invoices_app.command("export")
def invoices_export(
        workspace_id: str = typer.Option(..., "--workspace", help="The workspace (ws_...)."),
        output: str = typer.Option(None, "--output", "-o", help="Write the CSV to this file (with a progress bar); "
                                                                "default: standard output."),
        status: str = typer.Option(None, help="draft, posted, settled or void."),
        account_id: str = typer.Option(None, "--account", help="Only this account (acc_...)."),
        customer_id: str = typer.Option(None, "--customer", help="Only this customer's accounts (cus_...)."),
        due_before: str = typer.Option(None, "--due-before", help="Due on or before this date (YYYY-MM-DD)."),
        due_after: str = typer.Option(None, "--due-after", help="Due on or after this date (YYYY-MM-DD)."),
        overdue: bool = typer.Option(None, "--overdue/--not-overdue",
                                     help="Only invoices past due with something left to pay (or only the others)."),
        as_user: str = typer.Option(None, "--as", help="Read as this user id (default: the first master user)."),
        database_url: str = DatabaseOption):
    """Export invoices as CSV (UTF-8, a header row, amounts in major units), oldest first, streamed: the
    same rows whatever their number. Filters combine like the API's (GET /v1/invoices)."""
    from creditdesk import csvexport
    from creditdesk.billing import invoices

    if status is not None and status not in ("draft", "posted", "settled", "void"):
        fail("--status is draft, posted, settled or void.")
    filters = {"status": status, "account_id": account_id, "customer_id": customer_id,
               "due_before": _day(due_before, "--due-before"), "due_after": _day(due_after, "--due-after"),
               "overdue": overdue}
    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, as_user)
    with db.read() as session:
        if output is None:
            for chunk in csvexport.stream(invoices.EXPORT_COLUMNS, invoices.export_rows(session, actor=actor,
                                                                                         **filters)):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        total = invoices.count_invoices(session, actor=actor, **filters)
        written = 0
        with open(output, "wb") as handle, progress_bar() as progress:
            task = progress.add_task("Exporting invoices", total=total)

            def counted():
                nonlocal written
                for row in invoices.export_rows(session, actor=actor, **filters):
                    written += 1
                    progress.advance(task)
                    yield row
            for chunk in csvexport.stream(invoices.EXPORT_COLUMNS, counted()):
                handle.write(chunk)
    console.print(f"{written} invoice(s) written to {output}.")
