"""CLI commands of the expiry emails."""

from __future__ import annotations

import typer

from creditdesk.cli.common import console, fail, open_schema_db, progress_bar

emails_app = typer.Typer(help="Expiry emails to customers (also sent by `serve`'s jobs and `jobs run`).",
                         no_args_is_help=True)

DatabaseOption = typer.Option(None, "--database-url", envvar="CREDITDESK_DATABASE_URL",
                              help="Database URL (default: sqlite:///creditdesk.db in the working directory).")


@emails_app.command("send-due")
def emails_send_due(workspace_id: str = typer.Option(None, "--workspace", help="Only this workspace (ws_...)."),
                    batch_size: int = typer.Option(50, help="Emails claimed per transaction."),
                    database_url: str = DatabaseOption):
    """Send the expiry warnings and expired notices that are due, through the SMTP server of
    CREDITDESK_SMTP_HOST/PORT/USERNAME/PASSWORD/STARTTLS/SSL/FROM, and the retries whose time has come.
    Each pack gets each email once, also with several of these running at once (README "Expiry emails").
    Safe to run from cron."""
    from creditdesk.notify import expiry_emails, smtp

    if not smtp.is_configured():
        fail("CREDITDESK_SMTP_HOST is not set: no email can be sent (and none is claimed).")
    db = open_schema_db(database_url)
    with progress_bar() as progress:
        task = progress.add_task("Sending expiry emails", total=None)
        result = expiry_emails.send_due(db, workspace_id=workspace_id, batch_size=batch_size,
                                        progress=lambda n: progress.advance(task, n))
    console.print(f"{result['sent']} sent, {result['failed']} failed (retried later unless out of attempts), "
                  f"{result['skipped']} skipped (see the send log).")
