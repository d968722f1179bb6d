"""Who pays: contexts, candidates, burn order, usable now, the plan, frozen; SQL in repository.py (one place)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import clock, rawsql
from creditdesk.credits import governance, repository
from creditdesk.credits.errors import CreditsFrozen, InsufficientCredits, ProductNotCovered
from creditdesk.credits.expiry import release_timed_out_holds
from creditdesk.credits.models import CreditType, Pack, Project
from creditdesk.credits.packs import HolderRef, resolve_holder
from creditdesk.credits.projects import project_contact_ids
from creditdesk.credits.repository import Candidate
from creditdesk.errors import InvalidInput
from creditdesk.ledger import service as ledger
from creditdesk.parties.models import Customer, Office, User
from creditdesk.repository import get_in_workspace


@dataclass
class ResolvedContext:
    kind: str
    id: str
    holders: list[HolderRef]
    customer_id: str | None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id}


def resolve_context(session: Session, workspace_id: str, kind: str, context_id: str | None) -> ResolvedContext:
    """Whose packs may pay: a project (its office and its contacts), a user, an office, a customer
    (the customer's own packs and its offices'), or the workspace pool."""
    if kind != "workspace" and not context_id:
        raise InvalidInput(f"Say which {kind}: an id is required for every context but the workspace.",
                           code="context_id_required", field="context_id")
    if kind == "project":
        project = get_in_workspace(session, Project, workspace_id, context_id or "")
        office = session.get(Office, project.office_id)
        holders = [HolderRef("office", project.office_id)] + [
            HolderRef("user", uid) for uid in project_contact_ids(session, project.id)]
        return ResolvedContext(kind, project.id, holders, office.customer_id if office else None)
    if kind == "customer":
        customer = get_in_workspace(session, Customer, workspace_id, context_id or "")
        office_ids = session.scalars(select(Office.id).where(Office.workspace_id == workspace_id,
                                                             Office.customer_id == customer.id))
        return ResolvedContext(kind, customer.id, [HolderRef("customer", customer.id)] + [
            HolderRef("office", oid) for oid in office_ids], customer.id)
    holder, customer_id = resolve_holder(session, workspace_id, kind, context_id)
    return ResolvedContext(kind, holder.id, [holder], customer_id)


def burn_key(pack: Pack):
    """The burn order (documented in the README): priority (smaller first), then soonest expiry (packs
    that never expire last), then free before paid, then oldest (created first)."""
    far = datetime.max.replace(tzinfo=pack.starts_at.tzinfo)
    return (pack.priority, pack.expires_at or far, pack.is_paid, pack.created_at, pack.id)


def frozen_user_ids(session: Session, workspace_id: str, ct: CreditType, user_ids: set[str]) -> set[str]:
    """Users whose credits of this type are frozen (governance.may_use: the one definition)."""
    if not user_ids:
        return set()
    return {user.id for user in session.scalars(select(User).where(User.workspace_id == workspace_id,
                                                                   User.id.in_(user_ids)))
            if governance.is_frozen(user, ct)}


def is_frozen(session: Session, pack: Pack, ct: CreditType | None = None) -> bool:
    if pack.holder_kind != "user":
        return False
    ct = ct or session.get(CreditType, pack.credit_type_id)
    return bool(frozen_user_ids(session, pack.workspace_id, ct, {pack.holder_id}))


def covers(pack: Pack, product_code: str | None) -> bool:
    return not pack.product_codes or (product_code is not None and product_code in pack.product_codes)


def usable_now(packs, product_code: str | None, frozen: set[str]) -> list:
    """Of live packs (repository.candidate_rows), those that may pay for this product now, in burn
    order: the pack covers the product, and its holder is not a user whose credits are frozen."""
    return sorted((p for p in packs if covers(p, product_code)
                   and not (p.holder_kind == "user" and p.holder_id in frozen)), key=burn_key)


def candidates(session: Session, ctx: ResolvedContext, ct, product_code: str | None, now: datetime) -> list[Candidate]:
    """The context's packs that may pay now, frozen holders left out, in burn order."""
    packs = repository.candidate_rows(session, ct, ctx.holders, now)
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs if p.holder_kind == "user"})
    return usable_now(packs, product_code, frozen)


# Locking protocol: the ledger account of a pack guards the pack. Anything that changes a pack's
# balance, status or holder first locks its ledger account (`ledger.lock_accounts`, id order), then
# re-reads the pack. So two consumptions never see the same balance, and a void or a holder change
# cannot slip between a consumption's check and its write.

def lock_live_packs(session: Session, ct, holders: list, now: datetime) -> list[Candidate]:
    """The holders' live packs of this type (repository.candidate_rows) with their accounts locked and
    read afresh; holds past their timeout on them are released first. Not yet filtered by product or
    frozen holder (`usable_now`): a batch of consumptions locks its holders' packs once for all."""
    rawsql.flush_pending(session)
    packs = repository.candidate_rows(session, ct, holders, now)
    if any(p.account.debits_pending for p in packs):
        released = release_timed_out_holds(session, workspace_id=ct.workspace_id, account_ids=[
            p.ledger_account_id for p in packs if p.account.debits_pending])
        if released:
            session.flush()
            packs = repository.candidate_rows(session, ct, holders, now)
    if not packs or rawsql.dialect_name(session) == "sqlite":
        # SQLite write transactions hold the database's write lock from BEGIN IMMEDIATE: what was
        # just read cannot change before this transaction ends.
        return packs
    # PostgreSQL: lock the accounts (in id order, against deadlocks), then read the packs again: a
    # concurrent void or depletion committed meanwhile is seen.
    locked = ledger.account_totals(session, [p.ledger_account_id for p in packs], lock=True)
    still = {p.id for p in repository.candidate_rows(session, ct, holders, now)}
    fresh = []
    for p in packs:
        if p.id in still and p.ledger_account_id in locked:
            p.account = locked[p.ledger_account_id]
            fresh.append(p)
    return fresh


def lock_candidates(session: Session, ctx: ResolvedContext, ct, product_code: str | None,
                    now: datetime) -> list[Candidate]:
    """The context's usable packs in burn order, their accounts locked (`lock_live_packs`)."""
    packs = lock_live_packs(session, ct, ctx.holders, now)
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs if p.holder_kind == "user"})
    return usable_now(packs, product_code, frozen)


def plan(packs: list, amount: int, accounts: dict | None = None) -> list[tuple]:
    """Take from the packs in the order given until `amount` is met (what each can give: its
    account's available, from `accounts` when the packs are ORM rows)."""
    plan, need = [], amount
    for pack in packs:
        if need == 0:
            break
        available = accounts[pack.ledger_account_id].available if accounts is not None else pack.available
        take = min(available, need)
        if take > 0:
            plan.append((pack, take))
            need -= take
    return plan


def burn(session: Session, ctx: ResolvedContext, ct, amount: int, product_code: str | None,
         allow_partial: bool) -> list[tuple[Candidate, int]]:
    """Which packs pay how much, in burn order; their accounts are locked for the rest of the transaction."""
    now = clock.now()
    packs = lock_candidates(session, ctx, ct, product_code, now)
    paying = plan(packs, amount)
    refused = shortage(session, ctx, ct, amount, sum(t for _, t in paying), product_code, allow_partial, now)
    if refused is not None:
        raise refused
    return paying


def shortage(session: Session, ctx: ResolvedContext, ct, amount: int, taken: int, product_code: str | None,
             allow_partial: bool, now: datetime) -> InsufficientCredits | CreditsFrozen | ProductNotCovered | None:
    """Why a burn that found `taken` of `amount` is refused (None: it is not). Every path that spends
    (consume, holds, invoice lines, the batch engine) asks here, so each refusal reads the same."""
    if not (taken == 0 or (taken < amount and not allow_partial)):
        return None
    frozen = _frozen_available(session, ctx, ct, product_code, now)
    if taken == 0 and not frozen and product_code is not None:
        elsewhere = _uncovered_available(session, ctx, ct, product_code, now)
        if elsewhere:
            # Credits exist but none may pay for this product: saying "insufficient" would mislead.
            others = sorted({code for p in elsewhere for code in p.product_codes})
            return ProductNotCovered(
                f"No {ct.code} pack of this {ctx.kind} covers product {product_code!r}: its {ct.code} credits "
                f"pay only for {', '.join(others)}.", product_code=product_code, requested=amount,
                covered_products=others)
    if frozen and taken + frozen >= (amount if not allow_partial else 1):
        # The credits exist but are frozen: say so, so the holder knows a transfer out is the way.
        return CreditsFrozen(
            f"Not enough usable {ct.code} credits: {taken} available for this {ctx.kind}, {amount} requested; "
            f"{frozen} more are frozen (their holder is deactivated or lacks the permission to use them). "
            "Frozen credits can be transferred to a permitted holder.",
            available=taken, requested=amount, frozen=frozen)
    return InsufficientCredits(
        f"Not enough {ct.code} credits: {taken} available for this {ctx.kind}, {amount} requested.",
        available=taken, requested=amount)


def _uncovered_available(session: Session, ctx: ResolvedContext, ct, product_code: str, now: datetime) -> list:
    """The context's live packs with credits left that do not cover this product (a refused burn only)."""
    return [p for p in repository.candidate_rows(session, ct, ctx.holders, now)
            if p.available > 0 and not covers(p, product_code)]


def _frozen_available(session: Session, ctx: ResolvedContext, ct, product_code: str | None, now: datetime) -> int:
    """Credits of the context that would pay but for being frozen (a refused consumption only)."""
    packs = [c for c in repository.candidate_rows(session, ct, ctx.holders, now)
             if c.holder_kind == "user" and covers(c, product_code)]
    frozen = frozen_user_ids(session, ct.workspace_id, ct, {p.holder_id for p in packs})
    return sum(max(p.available, 0) for p in packs if p.holder_id in frozen)
