"""Credit packages (seed 001): free grants of a package, a customer's packages, and their Edit."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from creditdesk.api.deps import CustomerId, PackId, ProductRef, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf
from creditdesk.audit import Actor
from creditdesk.billing import packages
from creditdesk.credits import reads
from creditdesk.credits import schemas as cs
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties.schemas import Input

router = APIRouter()


class PackageGrant(Input):
    holder: cs.Holder = Field(description="The customer, or one of its offices or users, receiving the package.")
    count: int = Field(default=1, ge=1, le=1000, description="How many packages (their credits add up in one pack).")
    notes: str = Field(default="", max_length=10_000)


class PackageEdit(Input):
    expires_on: date | None = Field(default=None, description="The new expiry date (the pack expires at 00:00 UTC).")
    clear_expiry: bool = Field(default=False, description="Never expire.")
    status_label: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=10_000)
    remaining: int | None = Field(default=None, ge=0, le=10**15,
                                  description="Correct the remaining credits to this (a reason is required).")
    reason: str = Field(default="", max_length=2000)


class InvoiceRef(BaseModel):
    id: str
    number: str | None


class PackageOut(BaseModel):
    object: str = "package"
    pack: cs.PackOut
    bought: int
    used: int
    remaining: int
    status: str
    bought_on: InvoiceRef | None
    spent_on: list[InvoiceRef]


def _pack_view(db: Session, pack) -> cs.PackOut:
    return reads.packs_out(db, [(pack, db.get(LedgerAccount, pack.ledger_account_id))])[0]


@router.post("/products/{product}/grant", status_code=201, response_model=cs.PackOut, tags=["packages"])
def grant_package(product: ProductRef, body: PackageGrant, ctx: WriteContext = Depends(write_context)):
    """Give a credit package free (a promotion): its pack, source promotion, not paid. Idempotent with an
    Idempotency-Key header."""
    return ctx.run(lambda db, actor: _pack_view(db, packages.grant_free(
        db, product, body.holder, actor=actor, count=body.count, notes=body.notes)), status_code=201)


@router.get("/customers/{customer_id}/packages", response_model=ListOf[PackageOut], tags=["packages"])
def customer_packages(customer_id: CustomerId, actor: Actor = Depends(get_actor),
                      session: Session = Depends(read_session)):
    """Every package of the customer (its own, its offices' and users'): bought, used, remaining, status, and
    the invoices it was bought and spent on."""
    rows = packages.customer_packages(session, actor=actor, customer_id=customer_id)
    views = reads.packs_out(session, [(r.pack, session.get(LedgerAccount, r.pack.ledger_account_id)) for r in rows])
    data = [PackageOut(pack=view, bought=r.bought, used=r.used, remaining=r.remaining, status=r.status,
                       bought_on=InvoiceRef(id=r.bought_on.id, number=r.bought_on.number) if r.bought_on else None,
                       spent_on=[InvoiceRef(id=i.id, number=i.number) for i in r.spent_on])
            for r, view in zip(rows, views)]
    return {"object": "list", "data": data, "next_cursor": None}


@router.post("/packs/{pack_id}/package-edit", response_model=cs.PackOut, tags=["packages"])
def edit_package(pack_id: PackId, body: PackageEdit, ctx: WriteContext = Depends(write_context)):
    """Change a package's expiry, label and notes, or correct its remaining credits with a reason (lower:
    the difference goes to breakage; higher: granted from issuance). Audited with before and after."""
    return ctx.run(lambda db, actor: _pack_view(db, packages.edit_package(
        db, pack_id, actor=actor, expires_on=body.expires_on, clear_expiry=body.clear_expiry,
        status_label=body.status_label, notes=body.notes, remaining=body.remaining, reason=body.reason)))
