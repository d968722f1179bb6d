"""`creditdesk deals import`: packs from CRM deals for businesses without HubSpot (README "Packs from CRM
deals"), through the code the HubSpot webhook uses (integrations.deals)."""

from __future__ import annotations

import json

import typer

from creditdesk.cli.common import actor_for, console, err, fail, open_schema_db, run_service

deals_app = typer.Typer(help="Packs from CRM deals: import deals from a CSV or JSON file.", no_args_is_help=True)


@deals_app.command("import")
def deals_import(path: str = typer.Argument(..., help=(
        "A .csv file (header: crm, deal_id, name, amount, currency, closed_at, company_id, holder_kind, holder_id, "
        "product_id, sku, quantity; one line item per row) or a .json file ({\"deals\": [...]} or a list).")),
        workspace_id: str = typer.Option(..., "--workspace", help="Workspace id (ws_...)."),
        as_user: str = typer.Option(None, "--as", help="Act as this user id (default: the first master user)."),
        database_url: str = typer.Option(None, "--database-url", envvar="CREDITDESK_DATABASE_URL",
                                         help="Database URL (default: sqlite:///creditdesk.db).")):
    """Each deal makes its pack (external_ref <crm>:deal:<id>), finds the one made before (re-running the
    file grants nothing twice), or lands in the review queue (unknown company or product); a malformed deal
    is reported with its line. One transaction. Exits 1 when a deal was malformed."""
    from pydantic import ValidationError

    from creditdesk.integrations import deals
    from creditdesk.integrations import schemas as s

    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        if path.lower().endswith(".json"):
            payload = json.loads(text)
            data = s.DealImport.model_validate(payload if isinstance(payload, dict) else {"deals": payload})
        else:
            data = s.DealImport(csv=text)
    except (ValueError, ValidationError) as exc:
        fail(f"{path} is not a deal file: {str(exc).splitlines()[0]}")
    db = open_schema_db(database_url)
    actor = actor_for(db, workspace_id, as_user)
    result = run_service(db, lambda session: deals.import_deals(session, data, actor=actor))
    for deal in result.deals:
        if deal.outcome == "error":
            err.print(f"[red]line {deal.line}[/red]: {deal.message}")
        elif deal.outcome == "review":
            err.print(f"[yellow]{deal.external_ref}[/yellow]: to review ({deal.reason}): {deal.message}")
    console.print(f"{result.created} pack(s) made, {result.existing} made before, {result.review} to review, "
                  f"{result.errors} malformed.")
    if result.errors:
        raise typer.Exit(1)
