"""Consumption planned per batch: many consume requests read, checked, applied and written together.

Why: a consumption written alone costs about fifteen statements (the key, the credit type, the
candidates, each leg, each account, each depleted pack, the audit row, the answer) plus a SAVEPOINT,
and each statement costs more in SQLAlchemy's connection layer than SQLite takes to run it. Here a
whole group commit's consumptions share their reads and their writes:

1. the credit types of every request, with one query;
2. per request, in arrival order, the same checks as alone (permission, reference, credit type,
   spend rules, context): a request refused here simply takes no further part;
3. the candidate packs of every holder in the batch, with one query per credit type (the one
   "usable now" SQL fragment, repository.LIVE_PACK_SQL), their accounts read once (on PostgreSQL
   locked in id order);
4. per request, in arrival order, the burn planned in memory against accounts that carry the effects
   of the requests before it (a refused request writes nothing, so it needs no SAVEPOINT);
5. the rows written with one executemany per table: ledger transfers and account totals
   (ledger.Batch), consumptions, depleted packs, audit events.

A single consumption is a batch of one: `consumptions.consume` calls `consume_many` with one
request, so both paths give the same answers and write the same rows (tests/credits pin them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from creditdesk import audit, clock, rawsql, webhooks
from creditdesk.audit import Actor, snapshot
from creditdesk.credits import burn, governance, low_balance, repository, schemas
from creditdesk.credits.consumptions import check_reference, reference
from creditdesk.credits.errors import unknown_credit_type
from creditdesk.credits.models import Consumption
from creditdesk.credits.packs import HolderRef, mark_depleted
from creditdesk.errors import CreditdeskError
from creditdesk.ids import new_id
from creditdesk.ledger import batch as ledger_batch
from creditdesk.ledger import service as ledger

_CONSUMPTION_COLUMNS = tuple(c.key for c in Consumption.__table__.columns)


@dataclass
class _Checked:
    """A request that passed its checks: what the burn needs."""
    index: int
    actor: Actor
    data: schemas.ConsumeRequest
    ct: repository.CreditTypeRef
    ctx: burn.ResolvedContext


def consume_many(session: Session, requests: Sequence[tuple[Actor, schemas.ConsumeRequest]]
                 ) -> list[schemas.ConsumptionOut | CreditdeskError]:
    """Consume for each request in order; each answer is the consumption made or the error refusing it.
    Services never commit: the caller's transaction holds everything."""
    rawsql.flush_pending(session)
    results: list = [None] * len(requests)
    types = _credit_types(session, {(actor.workspace_id, data.credit_type) for actor, data in requests})
    contexts: dict[tuple, burn.ResolvedContext | CreditdeskError] = {}
    checked: list[_Checked] = []
    for n, (actor, data) in enumerate(requests):
        try:
            governance.require_consume(actor)
            check_reference(data.reference)
            ct = types.get((actor.workspace_id, data.credit_type))
            if ct is None:
                raise unknown_credit_type(data.credit_type)
            governance.authorize_spend(session, actor, ct, data.context.kind, data.context.id)
            ctx = _context(session, contexts, actor.workspace_id, data.context.kind, data.context.id)
        except CreditdeskError as exc:
            results[n] = exc
            continue
        checked.append(_Checked(n, actor, data, ct, ctx))
    if not checked:
        return results

    now = clock.now()
    candidates = _candidates(session, checked, now)
    watched = low_balance.watch(session, {(item.ct.workspace_id, item.ct.id) for item in checked
                                          if item.ct.low_balance_watched})
    batch = ledger_batch.Batch(session, accounts=[c.account for packs in candidates.values() for c in packs])
    consumptions, audit_rows, touched = [], [], {}
    for item in checked:
        ct, ctx, data = item.ct, item.ctx, item.data
        packs = burn.usable_now((c for h in set(ctx.holders) for c in candidates.get((ct.workspace_id, ct.id, h), ())),
                                   data.product_code, candidates.frozen.get((ct.workspace_id, ct.id), set()))
        plan = burn.plan(packs, data.amount)
        taken = sum(t for _, t in plan)
        shortage = burn.shortage(session, ctx, ct, data.amount, taken, data.product_code, data.allow_partial,
                                    now)
        if shortage is not None:
            results[item.index] = shortage
            continue
        at = clock.now()
        consumption = Consumption(
            id=new_id("con"), workspace_id=item.actor.workspace_id, context_kind=ctx.kind, context_id=ctx.id,
            credit_type_id=ct.id, product_code=data.product_code, amount_requested=data.amount, amount=taken,
            allow_partial=data.allow_partial,
            reference_kind=data.reference.kind if data.reference else None,
            reference_id=data.reference.id if data.reference else None,
            reference_url=data.reference.url if data.reference else None, status="posted", reversed_at=None,
            actor_id=item.actor.user_id, created_at=at)
        ref = reference(data.reference)
        operation = ledger_batch.Operation(item.actor.workspace_id, operation_id=consumption.id,
                                           actor_id=item.actor.user_id)
        operation.post(*[ledger.TransferSpec(p.ledger_account_id, ct.consumed_account_id, take, repository.CONSUME, ref)
                         for p, take in plan])
        error = batch.try_apply(operation)
        if error is not None:  # pragma: no cover - the plan never takes more than is available
            results[item.index] = error
            continue
        if watched is not None:
            watched.after(actor=item.actor, ct=ct, plan=plan, candidates=candidates, consumption_id=consumption.id)
        lines = [{"pack_id": p.id, "amount": t} for p, t in plan]
        for p, _ in plan:
            touched[p.id] = p.account
        consumptions.append({key: getattr(consumption, key) for key in _CONSUMPTION_COLUMNS})
        audit_rows.append(audit.event_row(actor=item.actor, action="consumption.create", object_type="consumption",
                                          object_id=consumption.id, after=snapshot(consumption, lines=lines)))
        results[item.index] = schemas.ConsumptionOut(
            id=consumption.id, context=ctx.as_dict(), credit_type=ct.code, product_code=data.product_code,
            amount_requested=data.amount, amount=taken, allow_partial=data.allow_partial,
            reference=schemas.ReferenceOut(kind=consumption.reference_kind, id=consumption.reference_id,
                                           url=consumption.reference_url),
            status="posted", lines=lines, reversed_at=None, created_at=at)
        webhooks.emit(session, item.actor.workspace_id, "consumption.created",
                      lambda out=results[item.index]: out.model_dump(mode="json"))
    rawsql.insert_many(session, Consumption.__table__, consumptions)
    batch.write()
    mark_depleted(session, list(touched.items()), clock.now())
    rawsql.insert_many(session, audit.AuditEvent.__table__, audit_rows)
    low_balance.record(session, watched)  # crossings below a threshold: their events and top-ups
    return results


def _credit_types(session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], repository.CreditTypeRef]:
    by_workspace: dict[str, set[str]] = {}
    for workspace_id, code in wanted:
        by_workspace.setdefault(workspace_id, set()).add(code)
    found = {}
    for workspace_id, codes in by_workspace.items():
        for ct in repository.credit_type_refs(session, workspace_id, codes):
            found[(workspace_id, ct.code)] = ct
    return found


def _context(session: Session, known: dict, workspace_id: str, kind: str, context_id: str | None
             ) -> burn.ResolvedContext:
    key = (workspace_id, kind, context_id)
    found = known.get(key)
    if found is None:
        try:
            found = burn.resolve_context(session, workspace_id, kind, context_id)
        except CreditdeskError as exc:
            found = exc
        known[key] = found
    if isinstance(found, CreditdeskError):
        raise found
    return found


class _Candidates(dict):
    """(workspace, credit type id, holder) -> that holder's usable packs; `frozen`: frozen user ids."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: dict[tuple[str, str], set[str]] = {}


def _candidates(session: Session, checked: list[_Checked], now) -> _Candidates:
    """Every holder's usable packs, per credit type with one query (the accounts shared: a pack in two
    requests' contexts is one account whose totals carry both). On PostgreSQL their accounts are
    locked in id order and the packs read again, as burn.lock_candidates does for one."""
    groups: dict[tuple[str, str], tuple[repository.CreditTypeRef, set]] = {}
    for item in checked:
        groups.setdefault((item.ct.workspace_id, item.ct.id), (item.ct, set()))[1].update(item.ctx.holders)
    out = _Candidates()
    for (workspace_id, ct_id), (ct, holders) in groups.items():
        packs = burn.lock_live_packs(session, ct, sorted(holders, key=lambda h: (h.kind, h.id)), now)
        for pack in packs:
            out.setdefault((workspace_id, ct_id, HolderRef(pack.holder_kind, pack.holder_id)),
                           []).append(pack)
        out.frozen[(workspace_id, ct_id)] = burn.frozen_user_ids(
            session, workspace_id, ct, {p.holder_id for p in packs if p.holder_kind == "user"})
    return out
