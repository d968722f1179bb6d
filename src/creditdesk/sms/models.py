"""SMS purchases (with their tax invoice / receipt) and messages (the outbox).

Credits themselves live in the credits domain: a paid purchase grants an `sms` pack, a sent message
captures a hold on the sender's own packs. These rows say why credits moved and keep what the
receipt and the outbox show.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditdesk.db import Base, JSONType, UTCDateTime

PURCHASE_STATUSES = ("pending", "paid", "failed")
MESSAGE_STATUSES = ("sending", "accepted", "failed")


class SmsPurchase(Base):
    """One purchase of SMS credits, for the workspace pool or a user.

    Amounts are integers in minor units of `currency`, frozen at purchase time (a later price or tax
    change never rewrites an issued receipt). `number` is the receipt / tax invoice number, sequential
    per workspace and given only when the payment succeeds, so failed or pending payments leave no gaps.
    """

    __tablename__ = "sms_purchases"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0 AND subtotal >= 0 AND tax >= 0 AND total >= 0", name="amounts_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    number: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    for_kind: Mapped[str] = mapped_column(String(20))  # workspace | user
    for_id: Mapped[str] = mapped_column(String(40))  # the workspace id for the pool
    quantity: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax_rate_bp: Mapped[int] = mapped_column(Integer)  # basis points: 1000 = 10 %
    tax_label: Mapped[str] = mapped_column(String(40))
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    billing: Mapped[dict] = mapped_column(JSONType)  # name, address, tax_id, email
    seller: Mapped[dict] = mapped_column(JSONType)  # the workspace's details as they were at purchase
    payment_method: Mapped[str] = mapped_column(String(40))
    payment_reference: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    pack_id: Mapped[str | None] = mapped_column(ForeignKey("packs.id"))
    actor_id: Mapped[str | None] = mapped_column(String(40))  # who bought
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while the payment method still has to be charged (or its answer recorded): the charge runs after
    # the purchase is committed, outside any transaction. The time is when the recovery job may (re)try it,
    # so a request that is charging right now is left alone. NULL once the outcome is recorded.
    charge_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    charge_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


Index("ix_sms_purchases_ws_id", SmsPurchase.workspace_id, SmsPurchase.id)
Index("ix_sms_purchases_for", SmsPurchase.workspace_id, SmsPurchase.for_kind, SmsPurchase.for_id)
Index("ix_sms_purchases_charge_due", SmsPurchase.charge_due_at)


class SmsMessage(Base):
    """A message sent (or attempted) through the sender backend. With the default backend this table
    is the outbox a delivery worker or the back office reads."""

    __tablename__ = "sms_messages"
    __table_args__ = (CheckConstraint("segments > 0", name="segments_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    # Whose credits paid: always the sending user (seed 003), whoever it was sent for.
    sender_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    on_behalf_of_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(32))  # the API's "to" (an SQL keyword)
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))  # gsm7 | ucs2
    segments: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="sending")
    backend: Mapped[str] = mapped_column(String(40))
    provider_reference: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    hold_id: Mapped[str | None] = mapped_column(ForeignKey("holds.id"))
    credits_charged: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # As SmsPurchase.charge_due_at, for the hand-over to the sender backend (status "sending" meanwhile).
    send_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


Index("ix_sms_messages_ws_id", SmsMessage.workspace_id, SmsMessage.id)
Index("ix_sms_messages_sender", SmsMessage.workspace_id, SmsMessage.sender_user_id, SmsMessage.id)
Index("ix_sms_messages_send_due", SmsMessage.send_due_at)
