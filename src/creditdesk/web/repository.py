"""The few lookups only the back office needs (the rest comes from the domain services and reads)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk.parties.models import Customer, Office, User, Workspace


def staff_logins(session: Session, email: str) -> list[tuple[User, Workspace]]:
    """Active staff users with a password and this email, in every workspace (emails are unique per
    workspace only: the same person may work for two businesses)."""
    rows = session.execute(
        select(User, Workspace).join(Workspace, Workspace.id == User.workspace_id)
        .where(User.email == email.strip().lower(), User.is_staff.is_(True), User.is_active.is_(True),
               User.password_hash.is_not(None))
        .order_by(Workspace.name, Workspace.id)).all()
    return [(u, w) for u, w in rows]


def names(session: Session, workspace_id: str, model, ids: set[str]) -> dict[str, str]:
    """id -> name for many rows of one workspace at once."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.workspace_id == workspace_id,
                                                                   model.id.in_(ids))).all())


def offices_by_customer(session: Session, workspace_id: str) -> list[tuple[Office, str | None]]:
    """Every office of the workspace with its customer's name (None: the workspace's own offices)."""
    rows = session.execute(
        select(Office, Customer.name).outerjoin(Customer, Customer.id == Office.customer_id)
        .where(Office.workspace_id == workspace_id).order_by(Customer.name, Office.name, Office.id)).all()
    return [(o, c) for o, c in rows]


def users_for_select(session: Session, workspace_id: str) -> list[User]:
    return list(session.scalars(select(User).where(User.workspace_id == workspace_id)
                                .order_by(User.name, User.id)))


def packs_with_accounts(session: Session, workspace_id: str, ids: list[str]) -> list:
    """(pack, ledger account) rows for these pack ids, as list_packs gives them."""
    from creditdesk.credits.models import Pack
    from creditdesk.ledger.models import LedgerAccount

    if not ids:
        return []
    rows = session.execute(select(Pack, LedgerAccount).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
                           .where(Pack.workspace_id == workspace_id, Pack.id.in_(ids))).all()
    return [(p, a) for p, a in rows]


def posted_consumption_ids(session: Session, workspace_id: str, ids: set[str]) -> set[str]:
    """Which of these operation ids are consumptions not reversed yet (a pack history's "Reverse" links)."""
    from creditdesk.credits.models import Consumption

    ids = {i for i in ids if i}
    if not ids:
        return set()
    return set(session.scalars(select(Consumption.id).where(
        Consumption.workspace_id == workspace_id, Consumption.id.in_(ids), Consumption.status == "posted")))
