"""The account lifecycle (seed 004): suspend, reactivate, terminate, write off. Each action locks the account
row, checks its preconditions (each failure its own stable code, nothing written) and audits the change with
before and after.

    active --suspend(dispute | credit_check)--> suspended --reactivate--> active
    active | suspended --terminate--> terminated (final)
    write off: active or suspended, with a debit balance; the balance is closed by a credit posting

- Suspended: transactions still post; new subscriptions and service requests are refused
  (credit_control.decide_spend, events subscription_activate / service_add).
- Terminated: nothing posts any more (billing.postings refuses), and no subscription, wallet or service request
  is accepted (credit_control refuses every event). Terminate only when nothing is pending for the account
  (every transaction posted: the registered pending sources count none) and its balance is zero: a terminated
  account can take no payment or write-off, so a balance left on it could never be closed.
- Write off: the remaining debit balance is closed by one credit posting of kind `write_off` against the
  workspace's `adjustments` account (billing.postings.post_account_entry), with a reason.

Who may: masters and managers suspend and reactivate; masters terminate and write off (finance)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, postings
from creditdesk.billing import credit_schemas as cs
from creditdesk.billing.credit_models import SUSPENSION_REASONS
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.settings import require_finance
from creditdesk.errors import Conflict, InvalidInput
from creditdesk.ids import new_id
from creditdesk.ledger.batch import Reference
from creditdesk.parties.service import require_manager

WRITE_OFF_KIND = "write_off"

# --- what is pending for an account ------------------------------------------------------------------------

PendingSource = Callable[[Session, BillingAccount], int]
_pending_sources: list[PendingSource] = []


def register_pending_source(source: PendingSource) -> None:
    """The hook of whatever keeps transactions not yet posted (draft invoices, for now): a function
    (session, account) -> how many of the account's transactions are still to be posted. Registered once at
    import of that module (billing.invoices registers its drafts); terminate refuses while any counts."""
    if source not in _pending_sources:
        _pending_sources.append(source)


def unregister_pending_source(source: PendingSource) -> None:
    """For tests that register a fake source."""
    if source in _pending_sources:
        _pending_sources.remove(source)


def pending_transactions(session: Session, account: BillingAccount) -> int:
    return sum(source(session, account) for source in _pending_sources)


# --- the actions -------------------------------------------------------------------------------------------

def _locked(session: Session, actor: Actor, account_id: str) -> BillingAccount:
    return accounts.get_account(session, actor.workspace_id, account_id, for_update=True)


def _not_terminated(account: BillingAccount) -> None:
    if account.status == "terminated":
        raise Conflict(f"Account {account.number} is terminated: nothing more changes on it.",
                       code="account_terminated")


def _record(session: Session, actor: Actor, action: str, account: BillingAccount, before: dict, **extra) -> None:
    account.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action=action, object_type="account", object_id=account.id,
                 before=before, after=snapshot(account, **extra))


def _members_follow(session: Session, account: BillingAccount, action: str, *, actor: Actor, **kw) -> None:
    """Group accounts (billing.groups): the parent's suspend, reactivate and terminate apply to its members."""
    from creditdesk.billing import groups  # groups calls these actions on the members: imported late

    groups.follow_parent(session, account, action, actor=actor, **kw)


def suspend(session: Session, account_id: str, reason: str, *, actor: Actor, note: str | None = None) -> BillingAccount:
    """A dispute or a credit check: transactions still post, new subscriptions and services are refused."""
    account = _locked(session, actor, account_id)
    require_manager(actor, "suspend accounts")
    if reason not in SUSPENSION_REASONS:
        raise InvalidInput(f"reason is one of {', '.join(SUSPENSION_REASONS)}.", code="invalid_suspension_reason",
                           field="reason")
    _not_terminated(account)
    if account.status == "suspended":
        raise Conflict(f"Account {account.number} is already suspended ({account.suspension_reason}).",
                       code="account_already_suspended")
    before = snapshot(account)
    account.status, account.suspension_reason = "suspended", reason
    _record(session, actor, "account.suspend", account, before, note=note)
    _members_follow(session, account, "suspend", actor=actor, reason=reason, note=note)
    return account


def reactivate(session: Session, account_id: str, *, actor: Actor, note: str | None = None) -> BillingAccount:
    """The issue is settled or the check passed: the account is active again."""
    account = _locked(session, actor, account_id)
    require_manager(actor, "reactivate accounts")
    _not_terminated(account)
    if account.status != "suspended":
        raise Conflict(f"Account {account.number} is not suspended.", code="account_not_suspended")
    before = snapshot(account)
    account.status, account.suspension_reason = "active", None
    _record(session, actor, "account.reactivate", account, before, note=note)
    _members_follow(session, account, "reactivate", actor=actor, note=note)
    return account


def terminate(session: Session, account_id: str, *, actor: Actor, note: str | None = None) -> BillingAccount:
    account = _locked(session, actor, account_id)
    require_finance(actor, "terminate accounts")
    _not_terminated(account)
    pending = pending_transactions(session, account)
    if pending:
        raise Conflict(f"Account {account.number} has {pending} transaction(s) not posted yet (draft invoices): "
                       "post or delete them first.", code="account_has_pending_transactions", pending=pending)
    balance = accounts.account_balance(session, account).balance
    if balance != 0:
        raise Conflict(f"Account {account.number} has a balance of {currencies.format_money(balance, account.currency)}"
                       ": settle it, refund it or write it off first (a terminated account takes no posting).",
                       code="account_balance_not_zero", balance=balance)
    _no_money_in_the_wallet(session, account)
    before = snapshot(account)
    account.status, account.suspension_reason = "terminated", None
    _record(session, actor, "account.terminate", account, before, note=note)
    _members_follow(session, account, "terminate", actor=actor, note=note)
    return account


def _no_money_in_the_wallet(session: Session, account) -> None:
    """The customer's prepaid money is theirs: a closed account could no longer refund it (a terminated account
    takes no posting), so it is refunded (or spent) first."""
    from creditdesk.billing import wallets

    wallet = wallets.wallet_of(session, account.id)
    left = wallets.balance(session, wallet) if wallet is not None else 0
    if left:
        raise Conflict(f"Account {account.number}'s wallet still holds "
                       f"{currencies.format_money(left, wallet.currency)}: refund it to the customer first "
                       "(a terminated account takes no posting, so it could not be refunded later).",
                       code="wallet_not_empty", wallet_balance=left)


def write_off(session: Session, account_id: str, reason: str, *, actor: Actor) -> cs.WriteOffOut:
    """Close the remaining debit balance (debt that will never be collected) with one write-off posting."""
    account = _locked(session, actor, account_id)
    require_finance(actor, "write off accounts")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the debt is written off.", code="reason_required", field="reason")
    _not_terminated(account)
    balance = accounts.account_balance(session, account).balance
    if balance <= 0:
        raise Conflict(f"Account {account.number} owes nothing (balance "
                       f"{currencies.format_money(balance, account.currency)}): there is no debt to write off.",
                       code="nothing_to_write_off", balance=balance)
    before = snapshot(account, balance=balance)
    reference = Reference(kind=WRITE_OFF_KIND, id=new_id("wo"))
    entry = postings.post_account_entry(session, account, balance, "credit", WRITE_OFF_KIND, reference,
                                        counterpart="adjustments", actor_id=actor.user_id)
    closed = _write_off_invoices(session, account, balance, actor=actor, write_off_id=reference.id)
    account.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="account.write_off", object_type="account", object_id=account.id,
                 before=before, after=snapshot(account, balance=0, written_off=balance, reason=reason,
                                               write_off_id=reference.id, transfer_id=entry.transfer_id,
                                               invoices=closed))
    return cs.WriteOffOut(account=accounts.account_out(account), amount=balance, currency=account.currency,
                          reason=reason, transfer_id=entry.transfer_id, entry_id=entry.id)


def _write_off_invoices(session: Session, account, amount: int, *, actor: Actor, write_off_id: str) -> list[dict]:
    """The open invoices the written-off debt was made of, oldest due first, closed up to `amount`: each one's
    amount due moves to amount_written_off, and one with nothing left due is settled (no packages are granted
    and no invoice.paid is sent: nobody paid). Returns [{number, amount}] for the audit row."""
    from creditdesk.billing.invoice_models import Invoice

    left = amount
    closed: list[dict] = []
    now = clock.now()
    open_invoices = session.scalars(select(Invoice).where(
        Invoice.workspace_id == account.workspace_id, Invoice.account_id == account.id, Invoice.status == "posted",
        Invoice.amount_due > 0).order_by(Invoice.due_date, Invoice.id).with_for_update())
    for invoice in open_invoices:
        if left == 0:
            break
        take = min(left, invoice.amount_due)
        before = snapshot(invoice)
        invoice.amount_written_off += take
        invoice.amount_due -= take
        invoice.updated_at = now
        if invoice.amount_due == 0:
            invoice.status, invoice.settled_at = "settled", now
        left -= take
        closed.append({"number": invoice.number, "amount": take})
        audit.record(session, actor=actor, action="invoice.write_off", object_type="invoice", object_id=invoice.id,
                     before=before, after=snapshot(invoice, write_off_id=write_off_id))
    return closed
