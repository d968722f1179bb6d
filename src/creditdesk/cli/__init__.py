"""The `creditdesk` command. Each command opens its own transaction and calls the same services as the API.

One module per family of commands (serve, db, workspace and apikey, credits); what they share is in
`common`. This file only puts them together: the modules never import it, so nothing imports in a circle."""

from __future__ import annotations

import typer

from creditdesk.cli.billing import billing_app, periods_app
from creditdesk.cli.credits import balance, consume, history, jobs_app, ledger_app, packs_app
from creditdesk.cli.db import db_app
from creditdesk.cli.deals import deals_app
from creditdesk.cli.invoices import invoices_app
from creditdesk.cli.notify import emails_app
from creditdesk.cli.serve import serve
from creditdesk.cli.workspace import apikey_app, workspace_app

app = typer.Typer(help="creditdesk: prepaid credits and account billing. Every command has --help.",
                  no_args_is_help=True, add_completion=False)
# Registered in the order `creditdesk --help` lists them.
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")
app.add_typer(apikey_app, name="apikey")
app.command("serve")(serve)
app.add_typer(ledger_app, name="ledger")
app.add_typer(jobs_app, name="jobs")
app.add_typer(packs_app, name="packs")
app.command("consume")(consume)
app.command("balance")(balance)
app.command("history")(history)
app.add_typer(periods_app, name="periods")
app.add_typer(invoices_app, name="invoices")
app.add_typer(billing_app, name="billing")
app.add_typer(emails_app, name="emails")
app.add_typer(deals_app, name="deals")

__all__ = ["app"]
