"""The double-entry core: ledger accounts and transfers. Append-only; integers only.

An account's balance is never stored on its own: it is the cached sum of the transfers on it
(debits/credits, posted/pending), kept in the same transaction as each transfer and re-derived by
`verify`. Sink accounts that receive a leg of almost every transfer (issuance, consumed, breakage)
keep no cached sums (flag NO_CACHE), so they are never a hot row; their totals are aggregated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, UTCDateTime

# Account flags (bit mask).
DEBITS_MUST_NOT_EXCEED_CREDITS = 1
CREDITS_MUST_NOT_EXCEED_DEBITS = 2
NO_CACHE = 4

# Transfer phases.
POSTED = "posted"
PENDING = "pending"
POST_PENDING = "post_pending"
VOID_PENDING = "void_pending"


class AccountBalances:
    """What an account's cached totals say; shared by the ORM row and ledger.service.AccountTotals."""

    credits_posted: int
    debits_posted: int
    debits_pending: int

    @property
    def credit_balance(self) -> int:
        """Posted credits minus posted debits (what a credit-normal account holds)."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What may still be debited: the posted balance less pending debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending


class LedgerAccount(AccountBalances, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "system_key"),
        CheckConstraint("debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 "
                        "AND credits_pending >= 0", name="totals_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    unit: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    flags: Mapped[int] = mapped_column(Integer, default=0)
    # Names a workspace-wide account (e.g. "consumed:sms"); NULL for accounts owned by something.
    system_key: Mapped[str | None] = mapped_column(String(80))
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        UniqueConstraint("workspace_id", "idempotency_key"),
        # A pending transfer is posted or voided at most once.
        UniqueConstraint("pending_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    debit_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(40))
    phase: Mapped[str] = mapped_column(String(12), default=POSTED)
    pending_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transfers.id"))
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    operation_id: Mapped[str | None] = mapped_column(String(40))
    reference_kind: Mapped[str | None] = mapped_column(String(40))
    reference_id: Mapped[str | None] = mapped_column(String(200))
    reference_url: Mapped[str | None] = mapped_column(String(1000))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_ledger_transfers_debit", LedgerTransfer.debit_account_id, LedgerTransfer.id)
Index("ix_ledger_transfers_credit", LedgerTransfer.credit_account_id, LedgerTransfer.id)
Index("ix_ledger_transfers_operation", LedgerTransfer.operation_id)
Index("ix_ledger_transfers_ws_id", LedgerTransfer.workspace_id, LedgerTransfer.id)
Index("ix_ledger_accounts_available", LedgerAccount.workspace_id,
      LedgerAccount.credits_posted - (LedgerAccount.debits_posted + LedgerAccount.debits_pending))
