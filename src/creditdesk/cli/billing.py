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


billing_app = typer.Typer(help="Billing runs of subscriptions (also run by `serve`'s jobs, as of today).",
                          no_args_is_help=True)


@billing_app.command("run")
def billing_run(as_of: str = typer.Option(..., "--as-of", help="Bill everything due up to this day (YYYY-MM-DD)."),
                workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace (ws_...)."),
                as_user: str = typer.Option(None, "--as", help="Bill as this master user id (default: the "
                                                               "workspace's first master user)."),
                batch_size: int = typer.Option(500, "--batch-size", min=1, max=5000,
                                               help="Subscriptions per transaction."),
                database_url: str = DatabaseOption):
    """Bill every active subscription due as of --as-of, in batches, with a progress bar and a summary. Safe to
    re-run: what was billed is no longer due, so nothing is billed twice; a run cut off resumes where it
    stopped."""
    from datetime import date

    from creditdesk.billing import billing_runs

    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date: write it as YYYY-MM-DD.")
    db = open_schema_db(database_url)
    with db.read() as session:
        due = billing_runs.count_due(session, day, workspace_id=workspace_id)
    actors: dict = {}

    def actor_of(ws: str):
        if ws not in actors:
            actors[ws] = actor_for(db, ws, as_user)
        return actors[ws]
    with progress_bar() as progress:
        task = progress.add_task(f"Billing subscriptions as of {day}", total=due)
        row = billing_runs.run(db, day, workspace_id=workspace_id, actor_for=actor_of, batch_size=batch_size,
                               progress=lambda n: progress.advance(task, n))
    console.print(f"Billing run {row.id} as of {day}: {row.subscriptions_billed} subscription(s) billed, "
                  f"{row.bills} bill(s) posted, {row.refused} refused (still due: see the log).")
