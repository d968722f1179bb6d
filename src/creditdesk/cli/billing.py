"""CLI commands of billing: accounting periods."""

from __future__ import annotations

import typer

from creditdesk.cli.common import actor_for, console, fail, open_schema_db, progress_bar

periods_app = typer.Typer(help="Accounting periods of the billing accounts (also closed by `serve`'s jobs when due).",
                          no_args_is_help=True)

DatabaseOption = typer.Option(None, "--database-url", envvar="CREDITDESK_DATABASE_URL",
                              help="Database URL (default: sqlite:///creditdesk.db in the working directory).")


@periods_app.command("close")
def periods_close(workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace (ws_...)."),
                  as_user: str = typer.Option(None, "--as", help="Close as this master user id (default: the "
                                                                 "workspace's first master user)."),
                  database_url: str = DatabaseOption):
    """Close every accounting period that is over, earliest first, in every workspace with period settings
    (or only --workspace). Each account's balance at a period's end is stored as the next period's
    opening balance. Safe to re-run: a closed period is never closed again."""
    from sqlalchemy import select

    from creditdesk.billing import periods
    from creditdesk.billing.models import BillingSettings
    from creditdesk.errors import CreditdeskError
    from creditdesk.jobs import runner

    db = open_schema_db(database_url)
    with db.read() as session:
        stmt = select(BillingSettings).where(BillingSettings.period_frequency.is_not(None))
        if workspace_id:
            stmt = stmt.where(BillingSettings.workspace_id == workspace_id)
        found = session.scalars(stmt).all()
        due = sum(periods.count_due(session, s) for s in found)
    if workspace_id and not found:
        fail(f"Workspace {workspace_id} has no accounting period settings (PATCH /v1/billing/settings).")
    with progress_bar() as progress:
        task = progress.add_task("Closing accounting periods", total=due)
        try:
            count = runner.close_due_periods(db, workspace_id=workspace_id,
                                             actor_for=lambda ws: actor_for(db, ws, as_user),
                                             progress=lambda n: progress.advance(task, n))
        except CreditdeskError as exc:
            fail(f"{exc.message} ({exc.code})")
    console.print(f"{count} accounting period(s) closed.")
