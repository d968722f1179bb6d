"""Read side of credits: pack views, balances, the pack list/report, eligibility explained, history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, column, exists, func, literal_column, or_, select, table
from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.audit import Actor, AuditEvent
from creditdesk.credits import governance, schemas
from creditdesk.credits.burn import burn_key, covers, frozen_user_ids, resolve_context
from creditdesk.credits.credit_types import credit_type_by_code
from creditdesk.credits.models import CreditType, Pack, Project
from creditdesk.credits.packs import HolderRef, pack_status, resolve_holder, status_clause
from creditdesk.credits.repository import CONSUME, holder_clause, is_live
from creditdesk.errors import InvalidInput, NotPermitted
from creditdesk.ledger.models import PENDING, POST_PENDING, VOID_PENDING, LedgerAccount, LedgerTransfer
from creditdesk.pagination import Page, check_limit, paginate
from creditdesk.pagination import _decode as decode_cursor
from creditdesk.pagination import _encode as encode_cursor
from creditdesk.parties.models import User, UserOffice

SORTS = {
    "created": Pack.id,
    "expires_at": Pack.expires_at,
    "name": Pack.name,
    "remaining": None,  # resolved below (a ledger column expression)
    "quantity": Pack.quantity,
    "priority": Pack.priority,
}


def _available_expr():
    # Written as the remaining index has it (migration 0006): planners match index expressions by shape.
    return LedgerAccount.credits_posted - (LedgerAccount.debits_posted + LedgerAccount.debits_pending)


def pack_out(pack: Pack, account: LedgerAccount, *, unit: str | None = None, frozen: bool = False,
             now: datetime | None = None) -> schemas.PackOut:
    return schemas.PackOut(
        id=pack.id, holder={"kind": pack.holder_kind, "id": pack.holder_id}, customer_id=pack.customer_id,
        credit_type=unit or pack.unit, quantity=pack.quantity, remaining=account.available,
        held=account.debits_pending, balance=account.credit_balance, frozen=frozen, price_paid=pack.price_paid,
        currency=pack.currency, is_paid=pack.is_paid, source=pack.source, external_ref=pack.external_ref,
        name=pack.name, relationship_manager_id=pack.relationship_manager_id,
        project_manager_id=pack.project_manager_id, purchased_at=pack.purchased_at, starts_at=pack.starts_at,
        expires_at=pack.expires_at, expiry_months=pack.expiry_months, priority=pack.priority,
        product_codes=list(pack.product_codes or []), status=pack_status(pack, now or clock.now()),
        status_label=pack.status_label or "",
        notes=pack.notes or "", void_reason=pack.void_reason, origin_pack_id=pack.origin_pack_id,
        ledger_account_id=pack.ledger_account_id, created_at=pack.created_at, updated_at=pack.updated_at)


def packs_out(session: Session, rows: list[tuple[Pack, LedgerAccount]]) -> list[schemas.PackOut]:
    """Pack views for many packs at once, with the frozen flag computed per credit type."""
    types = {ct.id: ct for ct in session.scalars(select(CreditType).where(
        CreditType.id.in_({p.credit_type_id for p, _ in rows})))} if rows else {}
    frozen: set[tuple[str, str]] = set()
    for ct in types.values():
        users = {p.holder_id for p, _ in rows if p.holder_kind == "user" and p.credit_type_id == ct.id}
        frozen |= {(ct.id, u) for u in frozen_user_ids(session, ct.workspace_id, ct, users)}
    now = clock.now()
    return [pack_out(p, a, frozen=p.holder_kind == "user" and (p.credit_type_id, p.holder_id) in frozen, now=now)
            for p, a in rows]


def get_visible_pack(session: Session, *, actor: Actor, pack_id: str) -> Pack:
    """A pack of the workspace the actor may see (a governed pack outside their scope is not found)."""
    from creditdesk.repository import get_in_workspace

    pack = get_in_workspace(session, Pack, actor.workspace_id, pack_id)
    governance.require_visible_pack(session, actor, pack)
    return pack


def get_pack_out(session: Session, *, actor: Actor, pack_id: str) -> schemas.PackOut:
    pack = get_visible_pack(session, actor=actor, pack_id=pack_id)
    return packs_out(session, [(pack, session.get(LedgerAccount, pack.ledger_account_id))])[0]


def office_holder_clause(workspace_id: str, office_id: str):
    """Packs of an office and of the users who belong to it (primary or additional office)."""
    users = select(User.id).where(User.workspace_id == workspace_id, or_(
        User.primary_office_id == office_id,
        User.id.in_(select(UserOffice.user_id).where(UserOffice.office_id == office_id))))
    return or_(and_(Pack.holder_kind == "office", Pack.holder_id == office_id),
               and_(Pack.holder_kind == "user", Pack.holder_id.in_(users)))


def list_packs(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               sort: str = "created", descending: bool = False, **filters) -> Page[tuple[Pack, LedgerAccount]]:
    """Packs of the workspace the actor may see, filtered (`_filtered_packs`), a page at a time in `sort` order."""
    ws = actor.workspace_id
    stmt, sqlite = _filtered_packs(session, actor, **filters)
    available = _available_expr()
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", code="invalid_sort")
    if sort == "remaining":
        page = _page_by_remaining(session, stmt, ws=ws, limit=limit,
                                  cursor=cursor, descending=descending, sqlite=sqlite)
        if page is not None:
            return page
    # Remaining is a ledger expression; keyset pagination keys on (value, id) all the same.
    column = available if sort == "remaining" else SORTS[sort]
    page = paginate(session, stmt, id_column=Pack.id, limit=limit, cursor=cursor,
                    sort_column=None if sort == "created" else column, descending=descending,
                    row_key=lambda row: (_sort_value(row, sort), row[0].id))
    page.items = [(row[0], row[1]) for row in page.items]
    return page


def pack_totals(session: Session, *, actor: Actor, cap: int = 20_000, **filters) -> tuple[int, bool, dict]:
    """How many packs the filters find and, per credit type, their count, remaining and original quantity:
    (count, capped, {unit: (count, remaining, quantity)}). Bounded: past `cap` packs it says only "more than
    cap" (capped True, no sums), so a page view never adds up a million packs."""
    stmt, _ = _filtered_packs(session, actor, **filters)
    probe = stmt.with_only_columns(Pack.id).limit(cap + 1).subquery()
    count = int(session.scalar(select(func.count()).select_from(probe)) or 0)
    if count > cap:
        return cap, True, {}
    available = _available_expr()
    rows = session.execute(stmt.with_only_columns(Pack.unit, func.count(Pack.id), func.sum(available),
                                                  func.sum(Pack.quantity)).group_by(Pack.unit).order_by(Pack.unit))
    return count, False, {unit: (int(n), int(left or 0), int(total or 0)) for unit, n, left, total in rows}


def _filtered_packs(session: Session, actor: Actor, *, holder_kind: str | None = None, holder_id: str | None = None,
                    office_id: str | None = None, customer_id: str | None = None, status: list[str] | None = None,
                    credit_type: str | None = None, remaining_min: int | None = None,
                    remaining_max: int | None = None, expires_from: datetime | None = None,
                    expires_to: datetime | None = None, q: str | None = None, status_label: str | None = None,
                    external_ref: str | None = None, left_below: int | None = None, not_started: bool = False):
    """The packs (with their ledger accounts) the actor may see, filtered; (statement, is SQLite).
    `left_below`: less than that percentage of the original quantity remains; `not_started`: starts later."""
    ws = actor.workspace_id
    stmt = (select(Pack, LedgerAccount).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .where(Pack.workspace_id == ws))
    visible = governance.visible_packs_clause(session, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if holder_kind:
        stmt = stmt.where(Pack.holder_kind == holder_kind)
    if holder_id:
        stmt = stmt.where(Pack.holder_id == holder_id)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if office_id:
        stmt = stmt.where(_selective(office_holder_clause(ws, office_id), sqlite))
    if customer_id:
        stmt = stmt.where(_selective(Pack.customer_id == customer_id, sqlite))
    if status:
        stmt = stmt.where(status_clause(status, clock.now()))
    if credit_type:
        stmt = stmt.where(Pack.unit == credit_type)
    available = _available_expr()
    if remaining_min is not None or remaining_max is not None:
        # The pack accounts' index on remaining (migration 0006) finds the few packs of a narrow range;
        # SQLite's planner cannot judge a range of bound parameters, so it is told when it is narrow.
        between = [c for c in (None if remaining_min is None else available >= remaining_min,
                               None if remaining_max is None else available <= remaining_max) if c is not None]
        if not sqlite:
            stmt = stmt.where(*between)
        elif _accounts_at_most(session, ws, between, SELECTIVE_ACCOUNTS):
            stmt = stmt.where(LedgerAccount.workspace_id == ws,
                              func.likelihood(and_(*between), literal_column("0.001")))
        else:  # a wide range: the packs in page order, each checked (the index would read them all)
            stmt = stmt.where(*(c for c in (None if remaining_min is None else available + 0 >= remaining_min,
                                            None if remaining_max is None else available + 0 <= remaining_max)
                                if c is not None))
    if expires_from is not None:
        stmt = stmt.where(Pack.expires_at >= clock.aware(expires_from))
    if expires_to is not None:
        stmt = stmt.where(Pack.expires_at <= clock.aware(expires_to))
    if status_label:
        stmt = stmt.where(Pack.status_label == status_label)
    if external_ref is not None:
        stmt = stmt.where(Pack.external_ref == external_ref)  # exact (q is the substring search)
    if q:
        stmt = stmt.where(text_search_clause(session, q, sqlite))
    if left_below is not None:
        stmt = stmt.where(available * 100 < Pack.quantity * left_below)
    if not_started:
        stmt = stmt.where(Pack.starts_at > clock.now())
    return stmt, sqlite


# Up to this many pack accounts in a remaining range (or of one remaining value), reading them off the
# index and sorting them is cheaper than walking the packs in page order until a page is found. Measured
# over 1M packs: about 3 us per account read through the index and joined to its pack.
SELECTIVE_ACCOUNTS = 5000


def _accounts_at_most(session: Session, ws: str, conditions: list, cap: int) -> bool:
    """Whether fewer than `cap` of the workspace's ledger accounts meet these conditions on remaining
    (an index-only count that stops at `cap`)."""
    hits = select(literal_column("1")).select_from(LedgerAccount).where(
        LedgerAccount.workspace_id == ws, *conditions).limit(cap).subquery()
    return session.scalar(select(func.count()).select_from(hits)) < cap


def _page_by_remaining(session: Session, stmt, *, ws: str, limit: int | None, cursor: str | None,
                       descending: bool, sqlite: bool) -> Page | None:
    """The page of `paginate` ordered by (remaining, pack id), without sorting every pack that shares a
    remaining value (unused packs of one size all do: 1M packs of 1000 credits took seconds per page).

    In page order: the rest of the cursor's remaining value (by id); then the packs of the values after
    it, read off the remaining index in value order only, up to a page; all of them but those of the
    last value read are in the page, sorted; the last value's packs are then read by id, as many as the
    page still needs. Each value's packs by id come from the remaining index (few) or from walking the
    packs in id order (many), as counted first. Returns None for a cursor this does not handle (the
    generic path then answers exactly as before)."""
    limit = check_limit(limit)
    available = _available_expr()
    need = limit + 1
    found: list[str] = []  # pack ids in page order
    after = None
    if cursor:
        value, last_id = decode_cursor(cursor)
        if value is None or type(value) is not int:
            return None
        found += _packs_with_remaining(session, stmt, ws, value, last_id, need, descending, sqlite)
        after = available < value if descending else available > value
    if len(found) < need:
        probe = _by_remaining_index(stmt.where(after) if after is not None else stmt, ws, sqlite)
        probe = probe.with_only_columns(available, Pack.id)
        rows = session.execute(probe.order_by(available.desc() if descending else available.asc())
                               .limit(need - len(found))).all()
        if len(rows) < need - len(found):
            found += [pid for _, pid in sorted(rows, reverse=descending)]
        else:
            edge = rows[-1][0]
            found += [pid for _, pid in sorted((r for r in rows if r[0] != edge), reverse=descending)]
            found += _packs_with_remaining(session, stmt, ws, edge, None, need - len(found), descending, sqlite)
    if not found:
        return Page(items=[], next_cursor=None)
    loaded = {p.id: (p, a) for p, a in session.execute(stmt.where(Pack.id.in_(found))).all()}
    items = [loaded[pid] for pid in found if pid in loaded]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1][1].available, items[-1][0].id)
    return Page(items=items, next_cursor=next_cursor)


def _by_remaining_index(stmt, ws: str, sqlite: bool):
    """The statement reading the pack accounts through the remaining index. On SQLite a range on remaining
    that every account is in tells the planner so: with full statistics it otherwise takes the workspace
    index (as unselective, and in no useful order) and sorts every pack (1 s over 1M packs)."""
    stmt = stmt.where(LedgerAccount.workspace_id == ws)
    return stmt.where(_available_expr() >= -(2 ** 63)) if sqlite else stmt


def _packs_with_remaining(session: Session, stmt, ws: str, value: int, after_id: str | None, count: int,
                          descending: bool, sqlite: bool) -> list[str]:
    """Ids of up to `count` packs of `stmt` with this remaining value, in id order after `after_id`."""
    available = _available_expr()
    same = available == value
    if sqlite:
        # Few accounts of this value: off the remaining index, then sorted. Many: walk the packs by id
        # (the index is kept out of it: SQLite would otherwise judge by the average value's count).
        if _accounts_at_most(session, ws, [same], SELECTIVE_ACCOUNTS):
            stmt = _by_remaining_index(stmt, ws, sqlite)
        else:
            same = (available + 0) == value
    q = stmt.where(same).with_only_columns(Pack.id)
    if after_id is not None:
        q = q.where(Pack.id < after_id if descending else Pack.id > after_id)
    return list(session.scalars(q.order_by(Pack.id.desc() if descending else Pack.id.asc()).limit(count)))


# Packs' searched text (migration 0011 indexes these columns on both databases).
SEARCHED = (Pack.name, Pack.notes, Pack.status_label, Pack.external_ref)
# Trigram indexes find substrings of at least this many characters.
TRIGRAM = 3
# Up to this many FTS matches, the matching packs are read by rowid and sorted; past it, the packs are
# walked in page order and each is checked (a page is then found early).
SELECTIVE_MATCHES = 5000
_packs_fts = table("packs_fts", column("rowid"))


def text_search_clause(session: Session, q: str, sqlite: bool):
    """Packs whose name, notes, status label or external reference contain `q`, ignoring case: every
    character of `q` literal (no wildcards, no search syntax).

    PostgreSQL: `lower(col) LIKE`, which its pg_trgm indexes (migration 0011) answer. SQLite: the FTS5
    trigram table (migration 0011) as one quoted phrase, which is a substring match. A query shorter than
    a trigram has no index to use on either database: it is checked pack by pack as the page is read
    (a short string usually matches early; one that matches nothing reads the packs the other filters
    leave)."""
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    each_pack = or_(*(func.lower(c).like(pattern, escape="\\") for c in SEARCHED))
    if not sqlite or len(q) < TRIGRAM:
        return each_pack
    matches = fts_matches(q)
    rowid = literal_column("packs.rowid")
    hits = list(session.scalars(matches.limit(SELECTIVE_MATCHES)))
    if len(hits) < SELECTIVE_MATCHES:
        # Few: these packs, by rowid. As a list the planner sees how few (a subquery it cannot count, and
        # walked the report's index in page order, checking each pack against it).
        return rowid.in_(hits)
    # Many (1 pack in 200 or more): the packs in page order, each checked, find a page early. LIKE costs
    # about 1.5 us a pack; asking the FTS table about one rowid about 250 us (measured over 1M packs).
    # SQLite's LIKE and lower() fold ASCII letters only, FTS5 every letter: a query with other letters
    # asks the FTS table, so that "ÉCOLE" finds "école" whichever way the search goes.
    if q.isascii():
        return each_pack
    return exists(matches.where(_packs_fts.c.rowid == rowid))


def fts_matches(q: str):
    """Rowids of the packs whose searched text contains `q` (SQLite's FTS table): `q` as one FTS5 string,
    so its quotes, stars, NEAR, minus signs and colons are characters, not query syntax."""
    phrase = '"' + q.replace('"', '""') + '"'
    return select(_packs_fts.c.rowid).where(literal_column("packs_fts").op("MATCH")(phrase))


def _selective(clause, sqlite: bool):
    """Tell SQLite's planner that this filter keeps few packs. With bound parameters it cannot see that,
    and prefers reading every active pack in expiry order (the index that matches the page's order) over
    the holder index: measured over 1M packs, 7 s against 9 ms for one office's page. PostgreSQL
    estimates it from its own statistics."""
    return func.likelihood(clause, literal_column("0.001")) if sqlite else clause


def _sort_value(row, sort: str):
    pack, account = row[0], row[1]
    if sort == "remaining":
        return account.available
    if sort == "created":
        return None
    return getattr(pack, SORTS[sort].key)


def balances(session: Session, *, actor: Actor, holder_kind: str, holder_id: str | None,
             credit_type: str | None = None) -> list[schemas.BalanceOut]:
    """Per credit type: available (spendable now), held, total posted, and how much of it is frozen.

    From the cached totals of the holder's pack accounts (never a sum over ledger entries), reading
    only the columns it needs: this is the hottest read of all (every consumption screen shows it)."""
    holder, _ = resolve_holder(session, actor.workspace_id, holder_kind, holder_id)
    now = clock.now()
    stmt = (select(Pack.unit, Pack.credit_type_id, Pack.status, Pack.starts_at, Pack.expires_at,
                   LedgerAccount.credits_posted, LedgerAccount.debits_posted, LedgerAccount.debits_pending)
            .join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .where(Pack.workspace_id == actor.workspace_id, Pack.holder_kind == holder.kind,
                   Pack.holder_id == holder.id, Pack.status.in_(("active", "expired", "voided"))))
    if credit_type:
        wanted = credit_type_by_code(session, actor.workspace_id, credit_type)
        if not governance.may_see(session, actor, wanted, holder.kind, holder.id):
            raise NotPermitted(f"You may see {wanted.code} balances only of the accounts you manage.",
                               code="not_permitted")
        stmt = stmt.where(Pack.unit == wanted.code)
    rows = session.execute(stmt).all()
    types = {ct.id: ct for ct in session.scalars(select(CreditType).where(
        CreditType.id.in_({r.credit_type_id for r in rows})))} if rows and (
        holder.kind == "user" or not actor.is_master) else {}
    # Governed credits of a holder outside the viewer's scope are not theirs to see (governance).
    hidden = {ct_id for ct_id, ct in types.items()
              if not governance.may_see(session, actor, ct, holder.kind, holder.id)}
    if hidden:
        rows = [r for r in rows if r.credit_type_id not in hidden]
    # Frozen as packs_out has it: a user's credits of a type whose permission the user lacks.
    frozen_types: set[str] = set()
    if holder.kind == "user" and rows:
        for ct in types.values():
            if ct.id not in hidden and frozen_user_ids(session, ct.workspace_id, ct, {holder.id}):
                frozen_types.add(ct.id)
    totals: dict[str, dict] = {}
    for unit, ct_id, status, starts_at, expires_at, credits_posted, debits_posted, debits_pending in rows:
        t = totals.setdefault(unit, {"available": 0, "held": 0, "total": 0, "frozen": 0, "packs": 0})
        starts_at, expires_at = clock.aware(starts_at), clock.aware(expires_at)
        usable = is_live(status, starts_at, expires_at, now)
        if usable:
            available = credits_posted - debits_posted - debits_pending
            if ct_id in frozen_types:
                t["frozen"] += available
            else:
                t["available"] += available
            t["packs"] += 1
        t["held"] += debits_pending
        t["total"] += credits_posted - debits_posted if usable else debits_pending
    if credit_type and credit_type not in totals:
        totals[credit_type] = {"available": 0, "held": 0, "total": 0, "frozen": 0, "packs": 0}
    return [schemas.BalanceOut(holder=holder.as_dict(), credit_type=unit, **vals)
            for unit, vals in sorted(totals.items())]


def eligibility(session: Session, *, actor: Actor, context_kind: str, context_id: str | None,
                credit_type: str | None, product_code: str | None) -> schemas.EligibilityOut:
    """Eligible packs in burn order, and every near miss of the customer with why it is not eligible."""
    ws = actor.workspace_id
    ctx = resolve_context(session, ws, context_kind, context_id)
    ct = credit_type_by_code(session, ws, credit_type) if credit_type else None
    now = clock.now()
    cond = holder_clause(ctx.holders)
    if ctx.customer_id:
        cond = or_(cond, Pack.customer_id == ctx.customer_id)
    stmt = (select(Pack, LedgerAccount).join(LedgerAccount, LedgerAccount.id == Pack.ledger_account_id)
            .where(Pack.workspace_id == ws, cond))
    visible = governance.visible_packs_clause(session, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    rows = session.execute(stmt).all()
    views = {v.id: v for v in packs_out(session, [(p, a) for p, a in rows])}
    governed = set(governance.governed_type_ids(session, ws)) if rows else set()
    holders = {(h.kind, h.id) for h in ctx.holders}
    eligible, misses = [], []
    for pack, account in rows:
        reasons = []
        if (pack.holder_kind, pack.holder_id) not in holders:
            reasons.append("holder_mismatch")
        if pack.credit_type_id in governed:
            # As consume has it (governance.authorize_spend): allocated to a user, who spends them on their own.
            if pack.holder_kind != "user":
                reasons.append("not_allocated")
            elif ctx.kind != "user":
                reasons.append("own_credits_only")
        if pack.status == "voided":
            reasons.append("voided")
        if pack.status == "expired" or (pack.expires_at is not None and pack.expires_at <= now):
            reasons.append("expired")
        elif pack.starts_at > now:
            reasons.append("not_started")
        if pack.status == "depleted" or (pack.status == "active" and account.available <= 0):
            reasons.append("depleted")
        if ct is not None and pack.credit_type_id != ct.id:
            reasons.append("other_credit_type")
        if not covers(pack, product_code):
            reasons.append("product_not_covered")
        if views[pack.id].frozen:
            reasons.append("frozen")
        if reasons:
            misses.append((pack, reasons))
        else:
            eligible.append(pack)
    eligible.sort(key=burn_key)
    misses.sort(key=lambda m: (len(m[1]), m[0].id))
    by_type: dict[str, int] = {}
    for p in eligible:
        by_type[views[p.id].credit_type] = by_type.get(views[p.id].credit_type, 0) + views[p.id].remaining
    if ct is not None:
        available = by_type.get(ct.code, 0)
    else:  # one unit only: credits of different types do not add up
        available = next(iter(by_type.values())) if len(by_type) == 1 else (0 if not by_type else None)
    return schemas.EligibilityOut(
        context=ctx.as_dict(), credit_type=ct.code if ct else None, product_code=product_code,
        available=available, available_by_type=by_type,
        eligible=[schemas.EligibleOut(pack=views[p.id], burn_rank=i + 1) for i, p in enumerate(eligible)],
        not_eligible=[schemas.NearMissOut(pack=views[p.id], reasons=r) for p, r in misses])


KIND_BY_CODE = {
    ("grant", "in"): "grant", ("consume", "out"): "consume", ("hold", "out"): "hold",
    ("capture", "out"): "capture", ("release", "out"): "release", ("reversal", "in"): "reversal",
    ("transfer", "in"): "transfer_in", ("transfer", "out"): "transfer_out", ("expire", "out"): "expire",
    ("void", "out"): "void",
}


def reference_link(kind: str | None, ref_id: str | None, url: str | None) -> str | None:
    """Where a history line links to. A stored URL only if it is an absolute http(s) one: rows stored
    before input was checked may hold anything (javascript:...), and they render without a link."""
    if url and schemas.is_http_url(url):
        return url
    if kind == "project" and ref_id:
        return f"/projects/{ref_id}"
    if kind == "pack" and ref_id:
        return f"/packs/{ref_id}"
    return None


def pack_history(session: Session, *, actor: Actor, pack_id: str) -> list[schemas.HistoryEntry]:
    """Every movement in and out of a pack with running balance, plus holder changes (before/after)."""
    pack = get_visible_pack(session, actor=actor, pack_id=pack_id)
    acc = pack.ledger_account_id
    transfers = session.scalars(select(LedgerTransfer).where(
        LedgerTransfer.workspace_id == actor.workspace_id,
        or_(LedgerTransfer.debit_account_id == acc, LedgerTransfer.credit_account_id == acc))
        .order_by(LedgerTransfer.id)).all()
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.workspace_id == actor.workspace_id, AuditEvent.object_id == pack.id,
        AuditEvent.action.in_(("pack.change_holder", "pack.void", "pack.update", "pack.expire")))).all()
    entries: list[tuple[str, schemas.HistoryEntry]] = []
    balance = held = 0
    pending_amounts = {}
    for t in transfers:
        direction = "out" if t.debit_account_id == acc else "in"
        if t.phase == PENDING:
            pending_amounts[t.id] = t.amount
            held += t.amount
            signed = 0
        elif t.phase == POST_PENDING:
            held -= pending_amounts.get(t.pending_id, 0)
            balance -= t.amount
            signed = -t.amount
        elif t.phase == VOID_PENDING:
            held -= pending_amounts.get(t.pending_id, 0)
            signed = 0
        else:
            signed = t.amount if direction == "in" else -t.amount
            balance += signed
        kind = KIND_BY_CODE.get((t.code, direction), t.code)
        detail = {"held": t.amount} if t.phase in (PENDING, VOID_PENDING) else None
        entries.append((t.id, schemas.HistoryEntry(
            id=t.id, at=t.created_at, kind=kind, amount=signed, balance_after=balance, held_after=held,
            reference=schemas.ReferenceOut(kind=t.reference_kind, id=t.reference_id,
                                           url=reference_link(t.reference_kind, t.reference_id, t.reference_url)),
            operation_id=t.operation_id, actor_id=t.actor_id, detail=detail)))
    # Non-movement events sit between movements by time; their balances are those at that point.
    # Ties (same timestamp, e.g. a frozen clock) go by creation order: the id without its prefix
    # ("evt_..." and "lt_..." would otherwise put every event before every movement).
    merged = sorted(entries + [(e.id, e) for e in events],
                    key=lambda pair: (_at(pair[1]), pair[0].split("_", 1)[-1]))
    out, balance, held = [], 0, 0
    for _, item in merged:
        if isinstance(item, schemas.HistoryEntry):
            balance, held = item.balance_after, item.held_after
            out.append(item)
        else:
            kind = {"pack.change_holder": "holder_change", "pack.void": "voided", "pack.update": "edited",
                    "pack.expire": "expired"}[item.action]
            before, after = item.before or {}, item.after or {}
            detail = {k: {"before": before.get(k), "after": after.get(k)} for k in after
                      if k in before and before.get(k) != after.get(k) and k not in ("updated_at",)}
            if item.action == "pack.change_holder":
                detail["reason"] = after.get("reason", "")
                if after.get("to_pack_id"):  # the pack the remaining credits went to (the transfer_out line)
                    detail["to_pack_id"] = after["to_pack_id"]
            out.append(schemas.HistoryEntry(id=item.id, at=item.created_at, kind=kind, amount=0,
                                            balance_after=balance, held_after=held,
                                            reference=schemas.ReferenceOut(kind=None, id=None, url=None),
                                            operation_id=None, actor_id=item.actor_id, detail=detail))
    return out


def _at(item) -> datetime:
    return item.at if isinstance(item, schemas.HistoryEntry) else item.created_at


def projects_using_pack(session: Session, pack: Pack) -> list[str]:
    """Projects whose consumptions burned this pack (the report's direct links)."""
    rows = session.scalars(select(LedgerTransfer.reference_id).where(
        LedgerTransfer.debit_account_id == pack.ledger_account_id, LedgerTransfer.reference_kind == "project",
        LedgerTransfer.code.in_((CONSUME, "capture"))).distinct())
    return sorted(r for r in rows if r)


def list_projects(session: Session, *, actor: Actor, limit=None, cursor=None, office_id=None, q=None):
    stmt = select(Project).where(Project.workspace_id == actor.workspace_id)
    if office_id:
        stmt = stmt.where(Project.office_id == office_id)
    if q:
        stmt = stmt.where(func.lower(Project.name).like(f"%{q.lower()}%"))
    return paginate(session, stmt, id_column=Project.id, limit=limit, cursor=cursor)


def holder_label(session: Session, kind: str, holder_id: str) -> str:
    from creditdesk.parties.models import Customer, Office, Workspace

    model = {"office": Office, "user": User, "customer": Customer, "workspace": Workspace}.get(kind)
    obj = session.get(model, holder_id) if model else None
    return obj.name if obj is not None else holder_id


__all__ = ["HolderRef", "balances", "eligibility", "list_packs", "pack_history", "pack_out", "packs_out"]


def status_labels(session: Session, *, actor: Actor, status: list[str] | None = None) -> list[str]:
    """The status labels in use (for the back office's label filter), optionally among packs of some statuses."""
    stmt = select(Pack.status_label).where(Pack.workspace_id == actor.workspace_id, Pack.status_label != "")
    if status:
        stmt = stmt.where(status_clause(status, clock.now()))
    visible = governance.visible_packs_clause(session, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    return sorted(set(session.scalars(stmt.distinct())))
