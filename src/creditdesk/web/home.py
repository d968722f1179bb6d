"""The home page: what needs attention, each item a count with the first few and a link to the full list.

Packs expiring this month and packs nearly used up (less than 20 % left) among those the user may see; credits
frozen on users who may no longer use them; expiry emails that failed; overdue invoices (staff who read
billing); the user's own activities not completed. Every count is a query of the same services the lists use,
so the link shows exactly what was counted."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from creditdesk import clock, currencies
from creditdesk.billing import invoices
from creditdesk.billing.invoice_models import Invoice
from creditdesk.credits import governance, reads
from creditdesk.credits.models import CreditType, Pack
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties.models import User
from creditdesk.web.core import WebRoute, WebUser, current_user, db_of, query_string, reading, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SHOWN = 5


def _month_end(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def _visible(session, user: WebUser, stmt):
    clause = governance.visible_packs_clause(session, user.actor)
    return stmt if clause is None else stmt.where(clause)


def attention(session, user: WebUser) -> dict:
    now = clock.now()
    today = now.date()
    ws = user.workspace_id
    next_month = _month_end(today)
    until = datetime(next_month.year, next_month.month, 1, tzinfo=UTC)
    live = (Pack.workspace_id == ws, Pack.status == "active", Pack.starts_at <= now)
    available = LedgerAccount.credits_posted - LedgerAccount.debits_posted - LedgerAccount.debits_pending
    base = select(Pack, LedgerAccount).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id).where(*live)
    expiring_q = _visible(session, user, base.where(Pack.expires_at > now, Pack.expires_at < until, available > 0))
    low_q = _visible(session, user, base.where(available > 0, available * 5 < Pack.quantity,
                                               (Pack.expires_at.is_(None)) | (Pack.expires_at > now)))

    def count(stmt) -> int:
        return session.scalar(select(func.count()).select_from(stmt.subquery()))

    items: dict = {
        "expiring": {"count": count(expiring_q),
                     "rows": reads.packs_out(session, list(session.execute(
                         expiring_q.order_by(Pack.expires_at, Pack.id).limit(SHOWN)).tuples())),
                     # The report's "Expires to" is inclusive: the last day of this month.
                     "link": "/credits" + query_string({
                         "expires_from": today.isoformat(),
                         "expires_to": date.fromordinal(next_month.toordinal() - 1).isoformat(),
                         "sort": "expires_at"})},
        "low": {"count": count(low_q),
                "rows": reads.packs_out(session, list(session.execute(
                    low_q.order_by(available, Pack.id).limit(SHOWN)).tuples()))},
    }
    governed = list(session.scalars(select(CreditType).where(CreditType.workspace_id == ws,
                                                              CreditType.required_permission.is_not(None))))
    frozen = []
    if governed and user.actor.is_master:
        types = {ct.id: ct for ct in governed}
        held = session.execute(
            select(Pack.holder_id, Pack.credit_type_id, func.sum(available)).select_from(Pack)
            .join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .where(*live, Pack.holder_kind == "user", Pack.credit_type_id.in_(list(types)), available > 0)
            .group_by(Pack.holder_id, Pack.credit_type_id)).all()
        users = {u.id: u for u in session.scalars(select(User).where(User.id.in_({h for h, _, _ in held})))}
        frozen = [(users[h], types[t], int(total)) for h, t, total in held
                  if h in users and governance.is_frozen(users[h], types[t])]
    items["frozen"] = frozen
    # SMS credits left over from the other SMS credit mode (office pools in individual mode, users' own credits in
    # shared mode): not spent until someone moves them, so they need attention as frozen credits do. The SMS
    # service says which (in the viewer's reach); users already counted as frozen are not counted twice.
    from creditdesk.sms import service as sms

    counted = {u.id for u, _, _ in frozen}
    items["sms_leftover"] = [r for r in sms.leftover_credits(session, actor=user.actor)
                             if r.leftover and not (r.kind == "user" and r.id in counted)]
    try:
        from creditdesk.notify.models import EmailSend

        items["failed_emails"] = session.scalar(select(func.count()).select_from(EmailSend).where(
            EmailSend.workspace_id == ws, EmailSend.state == "failed"))
    except ImportError:  # pragma: no cover - notify is part of the package
        items["failed_emails"] = 0
    overdue = invoices._overdue_clause(today)
    items["overdue"] = {
        "count": session.scalar(select(func.count()).select_from(Invoice).where(Invoice.workspace_id == ws,
                                                                             overdue)),
        "totals": session.execute(select(Invoice.currency, func.sum(Invoice.amount_due)).where(
            Invoice.workspace_id == ws, overdue).group_by(Invoice.currency).order_by(Invoice.currency)).all()}
    items["activities"] = _my_activities(session, user)
    return items


def _my_activities(session, user: WebUser) -> list:
    try:
        from creditdesk.activities import service as activities
    except ImportError:  # pragma: no cover
        return []
    return activities.list_activities(session, actor=user.actor, mine=True, status=["open", "in_progress"],
                                      limit=SHOWN).items


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, user: WebUser = Depends(current_user)):
    with reading(db_of(request)) as session:
        items = attention(session, user)
        scales = {ct.code: ct.scale for ct in session.scalars(select(CreditType).where(
            CreditType.workspace_id == user.workspace_id))}
    return render(request, "home.html", nav="home", items=items, today=clock.now().date(), scales=scales,
                  format_money=currencies.format_money)
