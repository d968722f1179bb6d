"""Account wallets (seed 004): money in the account's currency, kept as packs on the credit ledger.

An account may have one wallet (`open_wallet`; not on a terminated account, which takes no wallets). Its
money is packs of the workspace's wallet credit type of that currency (`wallet_<currency>`, scale = the
currency's minor digits, made on first use), held by the account's customer and tied to the wallet by
`packs.wallet_id`. The balance is what those packs have left: the ledger says it, nothing is cached here.

- **Top up** (`top_up`): money received into the wallet (cash, bank transfer, card, other): a new pack of
  that amount, paid, never expiring. The account's balance does not move: the money is the customer's,
  held in the wallet, until it pays something.
- **Pay** (`pay_invoice`): an open invoice paid from the wallet: the packs are debited oldest first (to the
  type's consumed account), and a payment of method `wallet` is recorded on the account and allocated to
  the invoice, in one transaction. Also the wallet half of "charge first" (billing.payment_preferences).
- **Refund** (`refund`): money given back to the customer: the packs are debited oldest first back to the
  type's issuance account (the reverse of a top up).

Wallet money moves only here: the credit paths (consume, holds, transfers, grants, voids, import) refuse a
wallet credit type (credits.governance), so a wallet's history is exactly its `wallet_transactions`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts, invoices, payments
from creditdesk.billing import invoice_schemas as ins
from creditdesk.billing import wallet_schemas as ws
from creditdesk.billing.invoice_models import Invoice, Payment
from creditdesk.billing.models import BillingAccount
from creditdesk.billing.wallet_models import Wallet, WalletTransaction
from creditdesk.credits import packs
from creditdesk.credits import schemas as cs
from creditdesk.credits.models import CreditType, Pack
from creditdesk.credits.repository import CONSUME
from creditdesk.errors import Conflict, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.ledger import service as ledger
from creditdesk.ledger.batch import Reference, TransferSpec
from creditdesk.ledger.models import NO_CACHE, LedgerAccount
from creditdesk.pagination import Page, paginate
from creditdesk.repository import get_in_workspace

REFUND = "refund"  # ledger code: wallet money given back (pack -> issuance)


class WalletBalanceTooLow(Conflict):
    code = "wallet_balance_too_low"


def _require_writer(actor: Actor, what: str) -> None:
    invoices.require_billing_writer(actor, what)


def wallet_credit_type(session: Session, workspace_id: str, currency: str) -> CreditType:
    """The workspace's wallet money type of `currency`, made on first use (no person creates it)."""
    code = f"wallet_{currency.lower()}"
    ct = session.scalar(select(CreditType).where(CreditType.workspace_id == workspace_id, CreditType.code == code))
    if ct is not None:
        if ct.wallet_currency != currency:
            raise Conflict(f"The credit type code {code!r} is taken by credits that are not wallet money; rename "
                           "that credit type's code before opening a wallet in {currency}.",
                           code="wallet_credit_type_taken")
        return ct
    sinks = {kind: ledger.open_account(session, workspace_id=workspace_id, unit=code, code=kind, flags=NO_CACHE,
                                       system_key=f"{kind}:{code}")
             for kind in ("issuance", "consumed", "breakage")}
    now = clock.now()
    ct = CreditType(id=new_id("ct"), workspace_id=workspace_id, code=code, name=f"{currency} wallet money",
                    scale=currencies.minor_units(currency), required_permission=None, wallet_currency=currency,
                    issuance_account_id=sinks["issuance"].id, consumed_account_id=sinks["consumed"].id,
                    breakage_account_id=sinks["breakage"].id, created_at=now, updated_at=now)
    session.add(ct)
    session.flush([ct])
    return ct


def get_wallet(session: Session, workspace_id: str, wallet_id: str) -> Wallet:
    return get_in_workspace(session, Wallet, workspace_id, wallet_id, label="wallet")


def wallet_of(session: Session, account_id: str) -> Wallet | None:
    return session.scalar(select(Wallet).where(Wallet.account_id == account_id))


def _account_wallet(session: Session, actor: Actor, account_id: str) -> tuple[BillingAccount, Wallet]:
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    wallet = wallet_of(session, account.id)
    if wallet is None:
        raise NotFound(f"Account {account.number} has no wallet; open one first.", code="no_wallet",
                       account_id=account.id)
    return account, wallet


def _not_terminated(account: BillingAccount) -> None:
    if account.status == "terminated":
        raise Conflict(f"Account {account.number} is terminated: it takes no wallet or wallet transactions.",
                       code="account_terminated")


def open_wallet(session: Session, account_id: str, *, actor: Actor) -> Wallet:
    """The account's wallet, opened now. An account has one: 409 wallet_exists (naming it) the second time."""
    _require_writer(actor, "open wallets")
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    existing = wallet_of(session, account.id)
    if existing is not None:
        raise Conflict(f"Account {account.number} already has a wallet.", code="wallet_exists",
                       wallet_id=existing.id)
    _not_terminated(account)
    ct = wallet_credit_type(session, account.workspace_id, account.currency)
    now = clock.now()
    wallet = Wallet(id=new_id("wal"), workspace_id=account.workspace_id, account_id=account.id,
                    credit_type_id=ct.id, currency=account.currency, created_at=now, updated_at=now)
    session.add(wallet)
    session.flush([wallet])
    audit.record(session, actor=actor, action="wallet.open", object_type="wallet", object_id=wallet.id,
                 after=snapshot(wallet))
    return wallet


def _wallet_accounts(session: Session, wallet: Wallet, *, lock: bool) -> list[tuple[Pack, LedgerAccount]]:
    """The wallet's packs with money left, oldest first, and their ledger accounts (locked when asked)."""
    rows = list(session.scalars(select(Pack).where(Pack.wallet_id == wallet.id, Pack.status == "active")
                                .order_by(Pack.purchased_at, Pack.id)))
    if lock:
        found = ledger.lock_accounts(session, [p.ledger_account_id for p in rows])
    else:
        found = {a.id: a for a in session.scalars(select(LedgerAccount).where(
            LedgerAccount.id.in_([p.ledger_account_id for p in rows])))}
    return [(p, found[p.ledger_account_id]) for p in rows if found[p.ledger_account_id].available > 0]


def balance(session: Session, wallet: Wallet) -> int:
    return sum(account.available for _, account in _wallet_accounts(session, wallet, lock=False))


def balances(session: Session, account_ids: list[str]) -> dict[str, int]:
    """Wallet balance per account (accounts without a wallet are absent), in one query."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Wallet.account_id, func.coalesce(func.sum(
            LedgerAccount.credits_posted - LedgerAccount.debits_posted - LedgerAccount.debits_pending), 0))
        .select_from(Wallet).outerjoin(Pack, Pack.wallet_id == Wallet.id)
        .outerjoin(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
        .where(Wallet.account_id.in_(account_ids)).group_by(Wallet.account_id))
    return {account_id: int(total or 0) for account_id, total in rows}


def _transaction(session: Session, wallet: Wallet, kind: str, amount: int, *, actor: Actor, method: str | None = None,
                 reference: str = "", payment_id: str | None = None, pack_id: str | None = None
                 ) -> WalletTransaction:
    row = WalletTransaction(id=new_id("wtx"), workspace_id=wallet.workspace_id, wallet_id=wallet.id, kind=kind,
                            amount=amount, method=method, reference=reference, payment_id=payment_id,
                            pack_id=pack_id, actor_id=actor.user_id, created_at=clock.now())
    session.add(row)
    wallet.updated_at = row.created_at
    session.flush([row])
    audit.record(session, actor=actor, action=f"wallet.{kind}", object_type="wallet", object_id=wallet.id,
                 after=snapshot(row))
    return row


def top_up(session: Session, account_id: str, data: ws.WalletTopUp, *, actor: Actor) -> WalletTransaction:
    """Money received into the account's wallet: a new pack of that amount (see the module)."""
    _require_writer(actor, "top up wallets")
    account, wallet = _account_wallet(session, actor, account_id)
    _not_terminated(account)
    ct = session.get(CreditType, wallet.credit_type_id)
    row_id = new_id("wtx")
    pack = packs.grant_pack(session, cs.PackCreate(
        holder=cs.Holder(kind="customer", id=account.customer_id), credit_type=ct.code, quantity=data.amount,
        name=f"Wallet top-up, account {account.number}", price_paid=data.amount, currency=account.currency,
        is_paid=True, source="wallet", external_ref=row_id, notes=data.reference),
        actor=actor, internal_key=f"wallet_top_up:{row_id}", wallet_id=wallet.id)
    row = _transaction(session, wallet, "top_up", data.amount, actor=actor, method=data.method,
                       reference=data.reference, pack_id=pack.id)
    return row


def _debit(session: Session, account: BillingAccount, wallet: Wallet, amount: int, *, to: str, code: str,
           reference: Reference, actor: Actor) -> None:
    """Take `amount` from the wallet's packs, oldest first, to the type's `to` account (consumed or issuance),
    all or nothing: less in the wallet is 409 wallet_balance_too_low and nothing moves."""
    found = _wallet_accounts(session, wallet, lock=True)
    have = sum(a.available for _, a in found)
    if amount > have:
        raise WalletBalanceTooLow(
            f"The wallet of account {account.number} has {currencies.format_money(have, wallet.currency)}; "
            f"{currencies.format_money(amount, wallet.currency)} is more.", balance=have, amount=amount)
    ct = session.get(CreditType, wallet.credit_type_id)
    target = ct.consumed_account_id if to == "consumed" else ct.issuance_account_id
    specs, left = [], amount
    for _, ledger_account in found:
        if left == 0:
            break
        take = min(left, ledger_account.available)
        specs.append(TransferSpec(ledger_account.id, target, take, code, reference))
        left -= take
    ledger.post(session, specs, workspace_id=wallet.workspace_id, actor_id=actor.user_id,
                locked={a.id: a for _, a in found})
    for pack, ledger_account in found:
        packs.refresh_status(pack, session.get(LedgerAccount, ledger_account.id))


def pay_from_wallet(session: Session, account: BillingAccount, wallet: Wallet, amount: int, *,
                    invoice: Invoice | None, actor: Actor, reference: str = "") -> Payment:
    """The account (locked by the caller) pays `amount` from its wallet: the packs are debited and a payment
    of method wallet is recorded, allocated to `invoice` when given (else left as the account's credit, for
    the caller to allocate, as charge-first does before the invoice is posted)."""
    _not_terminated(account)
    if amount <= 0:
        raise InvalidInput("The amount is 1 or more minor units.", code="invalid_amount", field="amount")
    payment = payments.record_received(
        session, account, amount, method="wallet", reference=reference or "Paid from the wallet",
        allocations=[ins.AllocationIn(invoice_id=invoice.id, amount=amount)] if invoice is not None else [],
        actor=actor)
    _debit(session, account, wallet, amount, to="consumed", code=CONSUME,
           reference=Reference(kind="payment", id=payment.id), actor=actor)
    _transaction(session, wallet, "payment", amount, actor=actor, method="wallet", payment_id=payment.id,
                 reference=reference or (f"Invoice {invoice.number}" if invoice is not None else "Account credit"))
    return payment


def pay_invoice(session: Session, invoice_id: str, data: ws.WalletPay, *, actor: Actor) -> Payment:
    """Pay an open invoice from its account's wallet: all it has due unless `amount` says less."""
    _require_writer(actor, "pay invoices from wallets")
    invoice = invoices.get_invoice(session, actor.workspace_id, invoice_id)
    account, wallet = _account_wallet(session, actor, invoice.account_id)
    session.refresh(invoice, with_for_update=True)
    if invoice.status != invoices.OPEN or invoice.amount_due <= 0:
        raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: nothing to pay.",
                       code="invoice_not_open", status=invoice.status)
    amount = data.amount if data.amount is not None else invoice.amount_due
    if amount > invoice.amount_due:
        raise InvalidInput(f"Invoice {invoice.number} has {invoice.amount_due} due; {amount} is more.",
                           code="overpayment", field="amount", amount_due=invoice.amount_due)
    return pay_from_wallet(session, account, wallet, amount, invoice=invoice, actor=actor,
                           reference=f"Invoice {invoice.number} paid from the wallet")


def refund(session: Session, account_id: str, data: ws.WalletRefund, *, actor: Actor) -> WalletTransaction:
    """Give wallet money back to the customer (see the module); audited with its reason."""
    _require_writer(actor, "refund wallets")
    account, wallet = _account_wallet(session, actor, account_id)
    row_id = new_id("wtx")
    _debit(session, account, wallet, data.amount, to="issuance", code=REFUND,
           reference=Reference(kind="wallet_transaction", id=row_id), actor=actor)
    row = _transaction(session, wallet, "refund", data.amount, actor=actor, method=data.method,
                       reference=data.reason)
    return row


def list_transactions(session: Session, wallet: Wallet, *, limit: int | None = None,
                      cursor: str | None = None) -> Page[WalletTransaction]:
    stmt = select(WalletTransaction).where(WalletTransaction.wallet_id == wallet.id)
    return paginate(session, stmt, id_column=WalletTransaction.id, limit=limit, cursor=cursor, descending=True)


def wallet_out(session: Session, wallet: Wallet) -> ws.WalletOut:
    account = session.get(BillingAccount, wallet.account_id)
    return ws.WalletOut(id=wallet.id, account_id=wallet.account_id, account_number=account.number,
                        currency=wallet.currency, balance=balance(session, wallet),
                        credit_type=session.get(CreditType, wallet.credit_type_id).code,
                        created_at=clock.aware(wallet.created_at))


def transaction_out(row: WalletTransaction) -> ws.WalletTransactionOut:
    return ws.WalletTransactionOut(id=row.id, wallet_id=row.wallet_id, kind=row.kind, amount=row.amount,
                                   method=row.method, reference=row.reference, payment_id=row.payment_id,
                                   pack_id=row.pack_id, created_at=clock.aware(row.created_at))
