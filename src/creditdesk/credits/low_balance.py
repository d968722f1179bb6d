"""Low-balance thresholds and automatic top-ups (issue 16).

A threshold watches one holder's balance of one credit type (or, without a holder, every holder's: the
workspace default; a holder's own threshold wins). The balance is what the holder's live packs of the type have
available. When a consumption takes it from at or above the threshold to below it, that is one **crossing**:
- a `balance_crossings` row (the holder, the balances before and after, the consumption), audited
  `balance.low`, and the `balance.low` event for outbound webhooks;
- when the threshold names a top-up package (a credit_package product), a top-up: an invoice of the holder's
  customer's account with `top_up_count` of that package for the holder, posted; an account paying purchases
  from its wallet (an opted-in wallet preference with enough money) pays it at once, which settles it and grants
  the pack; otherwise the pack comes when the invoice is paid, like any package sold.
Crossings are decided inside the consumption's own transaction, from the balances the burn read under its locks
(billing one batch on SQLite, FOR UPDATE on every live pack of the holder on PostgreSQL), so concurrent
consumptions see each other's effect: one crossing, one top-up, whatever the concurrency. The balance going
back up (a grant, a top-up) arms the threshold again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.credits.low_balance_models import BalanceCrossing, BalanceThreshold
from creditdesk.errors import InvalidInput
from creditdesk.ids import new_id


ANY = ("any", "*")  # the workspace default's holder


# --- the consumption hook ------------------------------------------------------------------------------------

@dataclass
class _Crossing:
    threshold: BalanceThreshold
    holder: tuple[str, str]
    before: int
    after: int
    consumption_id: str
    actor: Actor


@dataclass
class Watch:
    """The thresholds of the workspaces and credit types a batch of consumptions touches (read once)."""
    by_type: dict[tuple[str, str], dict[tuple[str, str], BalanceThreshold]]
    crossings: list[_Crossing] = field(default_factory=list)

    def after(self, *, actor: Actor, ct, plan, candidates, consumption_id: str) -> None:
        """Called once the consumption's transfers are applied (the candidates' totals include them)."""
        watched = self.by_type.get((ct.workspace_id, ct.id))
        if not watched:
            return
        taken: dict[tuple[str, str], int] = {}
        for pack, amount in plan:
            key = (pack.holder_kind, pack.holder_id)
            taken[key] = taken.get(key, 0) + amount
        from creditdesk.credits.packs import HolderRef

        for holder, amount in taken.items():
            threshold = watched.get(holder) or watched.get(ANY)
            if threshold is None:
                continue
            after = sum(c.available for c in candidates.get((ct.workspace_id, ct.id, HolderRef(*holder)), ()))
            before = after + amount
            if before >= threshold.threshold > after:
                self.crossings.append(_Crossing(threshold, holder, before, after, consumption_id, actor))


def watch(session: Session, pairs: set[tuple[str, str]]) -> Watch | None:
    """Thresholds of these (workspace, credit type id) pairs, or None when there are none (the usual case: one
    indexed query, nothing more on the consumption path)."""
    if not pairs:
        return None
    workspaces = {ws for ws, _ in pairs}
    rows = list(session.scalars(select(BalanceThreshold).where(
        BalanceThreshold.workspace_id.in_(workspaces), BalanceThreshold.active.is_(True))))
    if not rows:
        return None
    by_type: dict = {}
    for row in rows:
        if (row.workspace_id, row.credit_type_id) in pairs:
            by_type.setdefault((row.workspace_id, row.credit_type_id), {})[(row.holder_kind, row.holder_id)] = row
    return Watch(by_type) if by_type else None


def record(session: Session, found: Watch | None) -> None:
    """Write the batch's crossings (after its consumptions), with their events and top-ups."""
    if found is None or not found.crossings:
        return
    for crossing in found.crossings:
        t = crossing.threshold
        row = BalanceCrossing(id=new_id("bx"), workspace_id=t.workspace_id, threshold_id=t.id,
                              credit_type_id=t.credit_type_id, holder_kind=crossing.holder[0],
                              holder_id=crossing.holder[1], threshold=t.threshold, balance_before=crossing.before,
                              balance_after=crossing.after, consumption_id=crossing.consumption_id,
                              top_up_invoice_id=None, top_up_note="", created_at=clock.now())
        session.add(row)
        session.flush([row])
        if t.top_up_product_id:
            _top_up(session, row, t, actor=crossing.actor)
        audit.record(session, actor=crossing.actor, action="balance.low", object_type=crossing.holder[0],
                     object_id=crossing.holder[1], after=snapshot(row))
        _emit(session, row)


def _emit(session: Session, row: BalanceCrossing) -> None:
    try:
        from creditdesk import webhooks  # outbound webhooks, when the workspace has endpoints
    except ImportError:
        return
    emit = getattr(webhooks, "emit", None)
    if emit is not None:
        emit(session, row.workspace_id, "balance.low", {
            "holder": {"kind": row.holder_kind, "id": row.holder_id}, "credit_type_id": row.credit_type_id,
            "threshold": row.threshold, "balance_before": row.balance_before, "balance_after": row.balance_after,
            "consumption_id": row.consumption_id, "top_up_invoice_id": row.top_up_invoice_id})


def _top_up(session: Session, row: BalanceCrossing, threshold: BalanceThreshold, *, actor: Actor) -> None:
    """An invoice of the holder's customer's account for the package, posted; paid from the wallet when the
    account pays purchases from it (then settled: the pack is granted now)."""
    from creditdesk.billing import invoices, payment_preferences, wallets
    from creditdesk.billing import invoice_schemas as ins
    from creditdesk.billing.models import BillingAccount
    from creditdesk.credits import burn
    from creditdesk.errors import CreditdeskError

    if row.holder_kind == "workspace":
        row.top_up_note = "The workspace pool has no account to bill: no top-up."
        return
    ctx = burn.resolve_context(session, row.workspace_id, row.holder_kind, row.holder_id)
    accounts = list(session.scalars(select(BillingAccount).where(
        BillingAccount.workspace_id == row.workspace_id, BillingAccount.customer_id == ctx.customer_id,
        BillingAccount.status == "active").order_by(BillingAccount.number))) if ctx.customer_id else []
    if len(accounts) != 1:
        row.top_up_note = ("No active account to bill the top-up to." if not accounts else
                           "Several active accounts: the top-up cannot choose one.")
        return
    account = accounts[0]
    holder = None if row.holder_kind == "customer" else {"kind": row.holder_kind, "id": row.holder_id}
    system = Actor.system(row.workspace_id)
    try:
        with session.begin_nested():
            invoice = invoices.create_invoice(session, ins.InvoiceCreate(
                account_id=account.id, notes="Automatic top-up: the balance fell below its threshold.",
                lines=[ins.LineCreate(product=threshold.top_up_product_id, quantity=threshold.top_up_count,
                                      package_holder=holder)]), actor=system)
            invoice = invoices.post_invoice(session, invoice.id, actor=system)
            wallet = wallets.wallet_of(session, account.id)
            prefers_wallet = any(p.kind == "wallet" and p.opt_in_purchases and p.active
                                 for p in payment_preferences.preferences_of(session, account.id))
            if invoice.status == invoices.OPEN and wallet is not None and prefers_wallet \
                    and wallets.balance(session, wallet) >= invoice.amount_due:
                wallets.pay_from_wallet(session, account, wallet, invoice.amount_due, invoice=invoice, actor=system,
                                        reference="Automatic top-up paid from the wallet")
    except CreditdeskError as exc:
        row.top_up_note = f"The top-up was not made: {exc.message}"[:500]
        return
    row.top_up_invoice_id = invoice.id
    row.top_up_note = f"Invoice {invoice.number} ({invoice.status})."


# --- thresholds ----------------------------------------------------------------------------------------------

def _mark_watched(session: Session, credit_type_id: str) -> None:
    """Keep credit_types.low_balance_watched true exactly while an active threshold watches the type."""
    from creditdesk.credits.models import CreditType

    ct = session.get(CreditType, credit_type_id)
    ct.low_balance_watched = session.scalar(select(BalanceThreshold.id).where(
        BalanceThreshold.credit_type_id == credit_type_id, BalanceThreshold.active.is_(True)).limit(1)) is not None
    session.flush([ct])


def require_master(actor: Actor) -> None:
    from creditdesk.parties import service as parties

    parties.require_master(actor, "set low-balance thresholds")


def set_threshold(session: Session, data, *, actor: Actor) -> BalanceThreshold:
    """Create or replace the threshold of a holder (or the workspace default) for a credit type."""
    from creditdesk.catalog.service import get_product
    from creditdesk.credits import packs
    from creditdesk.credits.credit_types import credit_type_by_code

    require_master(actor)
    ct = credit_type_by_code(session, actor.workspace_id, data.credit_type)
    if data.holder is None:
        kind, holder_id = ANY
    else:
        ref, _customer = packs.resolve_holder(session, actor.workspace_id, data.holder.kind, data.holder.id)
        kind, holder_id = ref.kind, ref.id
    product_id = None
    if data.top_up_package:
        product = get_product(session, actor.workspace_id, data.top_up_package)
        if product.kind != "credit_package" or product.credit_type_id != ct.id:
            raise InvalidInput(f"The top-up is a credit package of {ct.code} credits; {product.code} is not.",
                               code="top_up_not_a_package", field="top_up_package")
        product_id = product.id
    row = session.scalar(select(BalanceThreshold).where(
        BalanceThreshold.workspace_id == actor.workspace_id, BalanceThreshold.credit_type_id == ct.id,
        BalanceThreshold.holder_kind == kind, BalanceThreshold.holder_id == holder_id).with_for_update())
    now = clock.now()
    before = snapshot(row) if row is not None else None
    if row is None:
        row = BalanceThreshold(id=new_id("thr"), workspace_id=actor.workspace_id, credit_type_id=ct.id,
                               holder_kind=kind, holder_id=holder_id, created_at=now)
        session.add(row)
    row.threshold, row.top_up_product_id, row.top_up_count = data.threshold, product_id, data.top_up_count
    row.active, row.updated_at = data.active, now
    session.flush([row])
    _mark_watched(session, ct.id)
    audit.record(session, actor=actor, action="balance_threshold.set", object_type="balance_threshold",
                 object_id=row.id, before=before, after=snapshot(row))
    return row


def list_thresholds(session: Session, *, actor: Actor) -> list[BalanceThreshold]:
    return list(session.scalars(select(BalanceThreshold).where(BalanceThreshold.workspace_id == actor.workspace_id)
                                .order_by(BalanceThreshold.created_at, BalanceThreshold.id)))


def list_crossings(session: Session, *, actor: Actor, holder_kind: str | None = None, holder_id: str | None = None,
                   limit: int | None = None, cursor: str | None = None):
    from creditdesk.pagination import paginate

    stmt = select(BalanceCrossing).where(BalanceCrossing.workspace_id == actor.workspace_id)
    if holder_kind:
        stmt = stmt.where(BalanceCrossing.holder_kind == holder_kind)
    if holder_id:
        stmt = stmt.where(BalanceCrossing.holder_id == holder_id)
    return paginate(session, stmt, id_column=BalanceCrossing.id, limit=limit, cursor=cursor, descending=True)


def delete_threshold(session: Session, threshold_id: str, *, actor: Actor) -> bool:
    """True when deleted; False when switched off (its crossings name it)."""
    require_master(actor)
    row = session.scalar(select(BalanceThreshold).where(BalanceThreshold.workspace_id == actor.workspace_id,
                                                        BalanceThreshold.id == threshold_id))
    if row is None:
        from creditdesk.errors import NotFound

        raise NotFound(f"No threshold {threshold_id!r}.", object_id=threshold_id)
    if session.scalar(select(BalanceCrossing.id).where(BalanceCrossing.threshold_id == row.id).limit(1)):
        row.active, row.updated_at = False, clock.now()  # crossings name it: kept, switched off
        action = "balance_threshold.deactivate"
    else:
        session.delete(row)
        action = "balance_threshold.delete"
    audit.record(session, actor=actor, action=action, object_type="balance_threshold", object_id=threshold_id,
                 before=snapshot(row))
    session.flush()
    _mark_watched(session, row.credit_type_id)
    return action.endswith("delete")

