"""Turn service and read results into what the templates show: names instead of ids, links, scales."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy.orm import Session

from creditdesk.audit import Actor
from creditdesk.credits import reads
from creditdesk.credits.credit_types import list_credit_types
from creditdesk.credits.models import Pack, Project
from creditdesk.credits.schemas import PackOut
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties.models import Customer, Office, User, Workspace
from creditdesk.web import repository

HOLDER_KINDS = {"office": "Office", "user": "User", "customer": "Customer", "workspace": "Workspace pool"}

REASONS = {
    "holder_mismatch": "Held by {holder}, which is neither the project's office nor one of its contacts",
    "expired": "Expired on {expires}",
    "not_started": "Not started yet: starts on {starts}",
    "depleted": "No credits left (depleted)",
    "product_not_covered": "Only pays for {products}",
    "other_credit_type": "Counts {unit}, not {wanted}",
    "voided": "Voided: {void_reason}",
    "frozen": "Frozen: the holding user is deactivated or lacks the permission this credit type needs",
}


@dataclass
class Holder:
    kind: str
    id: str
    name: str

    @property
    def url(self) -> str | None:
        return {"office": f"/offices/{self.id}", "user": f"/users/{self.id}",
                "customer": f"/customers/{self.id}"}.get(self.kind)

    @property
    def kind_label(self) -> str:
        return HOLDER_KINDS.get(self.kind, self.kind)


@dataclass
class PackRow:
    view: PackOut
    holder: Holder
    scale: int
    credit_type_name: str
    projects: list[tuple[str, str]] = field(default_factory=list)
    relationship_manager: str = ""
    project_manager: str = ""
    customer_name: str = ""


class Names:
    """Batch name lookups for one workspace, cached for the request."""

    def __init__(self, session: Session, workspace_id: str):
        self.session = session
        self.workspace_id = workspace_id
        self._cache: dict[tuple[str, str], str] = {}

    def load(self, kind: str, ids: set[str]) -> None:
        model = {"office": Office, "user": User, "customer": Customer, "project": Project}[kind]
        missing = {i for i in ids if i and (kind, i) not in self._cache}
        for id_, name in repository.names(self.session, self.workspace_id, model, missing).items():
            self._cache[(kind, id_)] = name

    def get(self, kind: str, id_: str | None) -> str:
        if not id_:
            return ""
        if kind == "workspace":
            ws = self.session.get(Workspace, id_)
            return f"Workspace pool ({ws.name})" if ws else "Workspace pool"
        if (kind, id_) not in self._cache:
            self.load(kind, {id_})
        return self._cache.get((kind, id_), id_)

    def holder(self, kind: str, id_: str) -> Holder:
        return Holder(kind, id_, self.get(kind, id_))


def credit_types(session: Session, actor: Actor) -> dict:
    return {ct.code: ct for ct in list_credit_types(session, actor=actor)}


def pack_rows(session: Session, actor: Actor, rows: list[tuple[Pack, LedgerAccount]], *,
              with_projects: bool = True, names: Names | None = None) -> list[PackRow]:
    names = names or Names(session, actor.workspace_id)
    views = reads.packs_out(session, rows)
    types = credit_types(session, actor)
    by_kind: dict[str, set[str]] = {}
    for pack, _ in rows:
        by_kind.setdefault(pack.holder_kind, set()).add(pack.holder_id)
        by_kind.setdefault("user", set()).update({pack.relationship_manager_id, pack.project_manager_id})
        by_kind.setdefault("customer", set()).add(pack.customer_id)
    for kind, ids in by_kind.items():
        if kind in ("office", "user", "customer"):
            names.load(kind, ids)
    project_ids = {}
    if with_projects:
        for pack, _ in rows:
            project_ids[pack.id] = reads.projects_using_pack(session, pack)
        names.load("project", {p for ids in project_ids.values() for p in ids})
    out = []
    for (pack, _), view in zip(rows, views):
        ct = types.get(pack.unit)
        out.append(PackRow(
            view=view, holder=names.holder(pack.holder_kind, pack.holder_id), scale=ct.scale if ct else 0,
            credit_type_name=ct.name if ct else pack.unit,
            projects=[(p, names.get("project", p)) for p in project_ids.get(pack.id, [])],
            relationship_manager=names.get("user", pack.relationship_manager_id),
            project_manager=names.get("user", pack.project_manager_id),
            customer_name=names.get("customer", pack.customer_id)))
    return out


def near_miss_reasons(row: PackRow, reasons: list[str], *, wanted_unit: str | None, zone=UTC) -> list[str]:
    """Why a pack cannot pay, in words; its days are the days where the business is (`zone`)."""
    view = row.view
    values = {
        "holder": f"{row.holder.kind_label.lower()} {row.holder.name}",
        "expires": view.expires_at.astimezone(zone).strftime("%Y-%m-%d") if view.expires_at else "",
        "starts": view.starts_at.astimezone(zone).strftime("%Y-%m-%d"),
        "products": ", ".join(view.product_codes) or "no product",
        "unit": view.credit_type, "wanted": wanted_unit or "",
        "void_reason": view.void_reason or "",
    }
    return [REASONS.get(r, r).format(**values) for r in reasons]


def holder_choices(session: Session, workspace_id: str) -> dict:
    """Offices (grouped by customer) and users, for holder pickers."""
    offices = repository.offices_by_customer(session, workspace_id)
    users = repository.users_for_select(session, workspace_id)
    office_names = {o.id: (o.name, c) for o, c in offices}
    user_rows = []
    for u in users:
        office = office_names.get(u.primary_office_id)
        where = f"{office[0]}" + (f", {office[1]}" if office and office[1] else "") if office else "no office"
        user_rows.append((u.id, f"{u.name} ({where})"))
    return {
        "offices": [(o.id, f"{o.name}" + (f" ({c})" if c else " (our office)")) for o, c in offices],
        "users": user_rows,
    }
