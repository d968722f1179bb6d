"""Credit types, packs, projects, consumptions, holds and credit transfers.

Each pack is backed by its own ledger account (no-overdraft); every amount a pack ever held or
gave is a ledger transfer. The rows here describe *why* credits moved and hold the editable
business fields (status label, notes, holder); balances always come from the ledger.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

HOLDER_KINDS = ("office", "user", "customer", "workspace")
PACK_SOURCES = ("manual", "purchase", "crm_deal", "transfer", "promotion", "subscription")
PACK_STATUSES = ("active", "depleted", "expired", "voided")


class CreditType(Base):
    __tablename__ = "credit_types"
    __table_args__ = (
        UniqueConstraint("workspace_id", "code"),
        CheckConstraint("scale >= 0 AND scale <= 6", name="scale_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    # Amounts are integers in units of 10**-scale (hours with scale 2: 150 = 1.50 hours).
    scale: Mapped[int] = mapped_column(Integer, default=0)
    # Credits of this type held by a user are frozen while the user lacks this permission (sms: send_sms).
    required_permission: Mapped[str | None] = mapped_column(String(40))
    # Set on the money credit type of account wallets (billing.wallets), one per currency: its packs move only
    # through the wallet service (top up, pay an invoice, refund), never on the credit paths (governance).
    wallet_currency: Mapped[str | None] = mapped_column(String(3))
    # A low-balance threshold watches this type (credits.low_balance): the consumption path reads the thresholds
    # only then, so a workspace without any pays no extra statement.
    low_balance_watched: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    issuance_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    consumed_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    breakage_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Pack(Base):
    __tablename__ = "packs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("price_paid >= 0", name="price_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    holder_kind: Mapped[str] = mapped_column(String(20))
    # For the workspace pool the holder id is the workspace id.
    holder_id: Mapped[str] = mapped_column(String(40))
    # The customer the holder belongs to (none for the workspace's own offices, staff and pool).
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    unit: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(BigInteger)
    price_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    is_paid: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    external_ref: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    relationship_manager_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    project_manager_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_months: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    product_codes: Mapped[list] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(12), default="active")
    status_label: Mapped[str] = mapped_column(String(100), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    void_reason: Mapped[str | None] = mapped_column(Text)
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    origin_pack_id: Mapped[str | None] = mapped_column(ForeignKey("packs.id"))
    credit_transfer_id: Mapped[str | None] = mapped_column(String(40))
    # The key a user (API, back office, their CSV column) gave the grant: the same request replays, another
    # request under it is refused.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # The key of an internal grant (an SMS purchase's pack, a CSV row's content-derived key): apart from
    # user keys, so no user can take one before the purchase or the import that owns it (migration 0009).
    internal_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The account wallet whose money this pack is (billing.wallets); None for every other pack.
    wallet_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # The pack's claim on its (source, external_ref): a grant for a source and external ref that already has
    # a pack answers with that pack, or 409 external_ref_taken naming it, never a second grant (credits.packs).
    # Set to external_ref by every grant that gives one, except transfers and promotions (their refs name
    # what they came from, shared by many packs). None on packs that shared a ref with an older pack of the
    # same source before migration crm1: the oldest keeps the key, the others were left as they were.
    external_key: Mapped[str | None] = mapped_column(String(200))


Index("uq_packs_workspace_id_internal_key", Pack.workspace_id, Pack.internal_key, unique=True)
Index("ix_packs_holder", Pack.workspace_id, Pack.holder_kind, Pack.holder_id, Pack.status)
# The report order, expiry then id, straight off the index (migration 0005).
Index("ix_packs_status_expiry", Pack.workspace_id, Pack.status, Pack.expires_at, Pack.id)
# The report filtered by status label, in its page order (migration 0004).
Index("ix_packs_label", Pack.workspace_id, Pack.status_label, Pack.status, Pack.expires_at, Pack.id)
Index("ix_packs_ws_status_id", Pack.workspace_id, Pack.status, Pack.id)
Index("ix_packs_customer", Pack.workspace_id, Pack.customer_id)
Index("ix_packs_due", Pack.status, Pack.expires_at, Pack.id)
Index("uq_packs_external_key", Pack.workspace_id, Pack.source, Pack.external_key, unique=True,
      sqlite_where=text("external_key IS NOT NULL"), postgresql_where=text("external_key IS NOT NULL"))
# GET /v1/packs?external_ref= (exact; every pack with the ref, transfers of a deal's pack included).
Index("ix_packs_external_ref", Pack.workspace_id, Pack.external_ref)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    office_id: Mapped[str] = mapped_column(ForeignKey("offices.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProjectContact(Base):
    __tablename__ = "project_contacts"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)


class Consumption(Base):
    __tablename__ = "consumptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    context_kind: Mapped[str] = mapped_column(String(20))
    context_id: Mapped[str] = mapped_column(String(40))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    product_code: Mapped[str | None] = mapped_column(String(100))
    amount_requested: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    allow_partial: Mapped[bool] = mapped_column(Boolean, default=False)
    reference_kind: Mapped[str | None] = mapped_column(String(40))
    reference_id: Mapped[str | None] = mapped_column(String(200))
    reference_url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(12), default="posted")  # posted | reversed
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_consumptions_ws_id", Consumption.workspace_id, Consumption.id)
Index("ix_consumptions_reference", Consumption.workspace_id, Consumption.reference_kind, Consumption.reference_id)


class Hold(Base):
    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    context_kind: Mapped[str] = mapped_column(String(20))
    context_id: Mapped[str] = mapped_column(String(40))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    product_code: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # pending | captured | released | timed_out; reversed_at is set when a capture is reversed.
    status: Mapped[str] = mapped_column(String(12), default="pending")
    timeout_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference_kind: Mapped[str | None] = mapped_column(String(40))
    reference_id: Mapped[str | None] = mapped_column(String(200))
    reference_url: Mapped[str | None] = mapped_column(String(1000))
    actor_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


Index("ix_holds_ws_id", Hold.workspace_id, Hold.id)
Index("ix_holds_due", Hold.status, Hold.timeout_at)


class CreditTransfer(Base):
    """Credits moved from one holder to another (each moved slice becomes a pack on the receiver)."""

    __tablename__ = "credit_transfers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    credit_type_id: Mapped[str] = mapped_column(ForeignKey("credit_types.id"))
    from_holder_kind: Mapped[str] = mapped_column(String(20))
    from_holder_id: Mapped[str] = mapped_column(String(40))
    to_holder_kind: Mapped[str] = mapped_column(String(20))
    to_holder_id: Mapped[str] = mapped_column(String(40))
    from_pack_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


Index("ix_credit_transfers_ws_id", CreditTransfer.workspace_id, CreditTransfer.id)
