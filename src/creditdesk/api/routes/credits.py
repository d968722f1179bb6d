"""Credit types, packs, projects, consumptions, holds, transfers, balances and eligibility."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field
from sqlalchemy.orm import Session

from creditdesk.api.deps import (BARE_DATE, Cursor, Limit, PackId, WriteContext, get_actor, read_session,
                                 status_query, statuses, write_context)
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.credits import governance, reads
from creditdesk.credits import schemas as s
from creditdesk.credits import consumptions, credit_types, holds, packs, projects, transfers
from creditdesk.credits.consume_engine import consume_many
from creditdesk.credits.errors import InvalidCredits
from creditdesk.credits.models import Consumption, CreditTransfer, Hold, Project
from creditdesk.errors import InvalidInput, NotFound
from creditdesk.ledger.models import LedgerAccount
from creditdesk.parties.schemas import Input, Instant
from creditdesk.repository import get_in_workspace

router = APIRouter()

HOLD_STATUSES = ("pending", "captured", "released", "timed_out")
PACK_STATUSES = ("active", "depleted", "expired", "voided")
DateFrom = Query(default=None, description="Only those created at or after this instant (inclusive). " + BARE_DATE)
DateTo = Query(default=None, description=(
    "Only those created before this instant (exclusive). " + BARE_DATE + " To include a whole day, give the "
    "next day."))
CONTEXT_KINDS = ", ".join(f"`{kind}`" for kind in get_args(s.ContextKind))
CreditTypeQuery = Query(default=None, max_length=40, description=(
    "Only those of this credit type, by its code (`credits`, `sms`, `hours`...)."))
CreditTypeCode = Annotated[str, Path(description=(
    "The credit type's `code` (`credits`, `sms`, `hours`...), not an id. An unknown code answers 404."))]
ProjectId = Annotated[str, Path(description="The id of the project, as its `id` field gives it.")]
ConsumptionId = Annotated[str, Path(description="The id of the consumption, as its `id` field gives it.")]
HoldId = Annotated[str, Path(description="The id of the hold, as its `id` field gives it.")]
TransferId = Annotated[str, Path(description="The id of the credit transfer, as its `id` field gives it.")]


class ReverseRequest(Input):
    reason: str = Field(default="", max_length=2000)


# --- credit types ---

@router.post("/credit-types", status_code=201, response_model=s.CreditTypeOut, tags=["credit types"])
def create_credit_type(body: s.CreditTypeCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.CreditTypeOut.model_validate(
        credit_types.create_credit_type(db, body, actor=actor)), status_code=201)


@router.get("/credit-types", response_model=ListOf[s.CreditTypeOut], tags=["credit types"])
def list_credit_types(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return list_of(credit_types.list_credit_types(session, actor=actor), None, s.CreditTypeOut.model_validate)


def _credit_type_in_path(fn):
    """A credit type named in the path that does not exist here is not found (404), like any other id;
    in a body it stays 422 unknown_credit_type."""
    try:
        return fn()
    except InvalidCredits as exc:
        if exc.code == "unknown_credit_type":
            raise NotFound(exc.message) from exc
        raise


@router.get("/credit-types/{code}", response_model=s.CreditTypeOut, tags=["credit types"])
def get_credit_type(code: CreditTypeCode, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return _credit_type_in_path(lambda: s.CreditTypeOut.model_validate(
        credit_types.credit_type_by_code(session, actor.workspace_id, code)))


@router.patch("/credit-types/{code}", response_model=s.CreditTypeOut, tags=["credit types"])
def update_credit_type(code: CreditTypeCode, body: s.CreditTypeUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: _credit_type_in_path(lambda: s.CreditTypeOut.model_validate(
        credit_types.update_credit_type(db, code, body, actor=actor))))


# --- packs ---

def _pack_view(db: Session, pack) -> s.PackOut:
    return reads.packs_out(db, [(pack, db.get(LedgerAccount, pack.ledger_account_id))])[0]


@router.post("/packs", status_code=201, response_model=s.PackOut, tags=["packs"])
def grant_pack(body: s.PackCreate, ctx: WriteContext = Depends(write_context)):
    """Grant a pack to a holder (office, user, customer, or the workspace pool).

    SMS credits (a credit type with a required_permission) are bought through POST /v1/sms/purchases; here
    only master users grant them, to the pool or to a user who may send, never as source purchase.

    The body's idempotency_key follows the Idempotency-Key header's rules: the same grant again answers
    with the pack it made (the same answer, with `Idempotent-Replayed: true`); another request under it is
    refused, 409 idempotency_key_conflict naming that pack (`pack_id`, and the `fields` that differ).
    `external_ref` with `source` is a key of its own (transfers and promotions aside), whatever the
    idempotency key: the same grant for a source and ref that has a pack answers with that pack
    (`Idempotent-Replayed: true`), another is refused, 409 external_ref_taken naming it."""
    replayed = []

    def run(db, actor):
        pack, created = packs.grant_or_find(db, body, actor=actor)
        if not created:
            replayed.append(pack.id)
        return _pack_view(db, pack)
    response = ctx.run(run, status_code=201)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.post("/packs/batch", status_code=201, response_model=ListOf[s.PackOut], tags=["packs"])
def grant_packs(body: s.PackBatchCreate, ctx: WriteContext = Depends(write_context)):
    """Grant up to 1000 packs all-or-nothing, each by the rules of POST /v1/packs. Packs with an idempotency_key
    already used are not granted twice (another request under one: 409 idempotency_key_conflict)."""
    def run(db, actor):
        return list_of([packs.grant_pack(db, p, actor=actor) for p in body.packs], None,
                       lambda pack: _pack_view(db, pack))
    return ctx.run(run, status_code=201)


@router.get("/packs", response_model=ListOf[s.PackOut], tags=["packs"])
def list_packs(
    limit: int | None = Limit, cursor: str | None = Cursor,
    holder_kind: s.HolderKind | None = Query(default=None, description=(
        "Only packs held by this kind of holder: `office`, `user`, `customer` or `workspace` (the pool).")),
    holder_id: str | None = Query(default=None, max_length=40, description=(
        "Only packs held by this office, user or customer (its id, as the pack's `holder.id`). A user's office "
        "packs are not included: see `office_id`.")),
    office_id: str | None = Query(default=None, max_length=40, description=(
        "Only packs held by this office or by users who belong to it (primary or additional office).")),
    customer_id: str | None = Query(default=None, max_length=40, description=(
        "Only packs of this customer: held by it, by its offices or by its users (the pack's `customer_id`).")),
    status: list[str] | None = status_query(PACK_STATUSES, what="packs"),
    credit_type: str | None = CreditTypeQuery,
    remaining_min: int | None = Query(default=None, ge=0, description=(
        "Only packs with at least this many credits available (inclusive; held credits are not available). In "
        "the credit type's smallest unit, as every amount of the API: with scale 2, 1.50 hours is 150.")),
    remaining_max: int | None = Query(default=None, ge=0, description=(
        "Only packs with at most this many credits available (inclusive), in the same units as `remaining_min`.")),
    expires_from: Instant | None = Query(default=None, description=(
        "Only packs expiring at or after this instant (inclusive); packs that never expire are left out. "
        + BARE_DATE)),
    expires_to: Instant | None = Query(default=None, description=(
        "Only packs expiring at or before this instant (inclusive, unlike the exclusive `created_to` of other "
        "lists); packs that never expire are left out. " + BARE_DATE)),
    status_label: str | None = Query(default=None, max_length=100, description=(
        "Only packs whose status label is exactly this text (case-sensitive).")),
    q: str | None = Query(default=None, max_length=200, description=(
        "Only packs whose name, notes, status label or external ref contain this text, ignoring case; every "
        "character is literal (no wildcards).")),
    external_ref: str | None = Query(default=None, min_length=1, max_length=200, description=(
        "Exactly this external ref (a CRM deal's `hubspot:deal:981` is not `hubspot:deal:9810`); `q` is a "
        "substring search.")),
    left_below: int | None = Query(default=None, ge=1, le=100, description=(
        "Only packs with less than this percentage of their original quantity available (exclusive: 20 lists "
        "19.99 % and not 20 %), as the back office's \"under 20 % left\" view.")),
    not_started: bool = Query(default=False, description=(
        "With true, only packs whose start is still to come (bought ahead, not usable yet); false, the "
        "default, filters nothing.")),
    sort: str = Query(default="created", pattern="^(created|expires_at|name|remaining|quantity|priority)$",
                      description=(
                          "What the list is ordered by: `created` (creation order, the default), `expires_at` "
                          "(packs that never expire come last either way), `name`, `remaining` (credits "
                          "available), `quantity` or `priority`. Ties keep creation order, in the same direction.")),
    order: str = Query(default="asc", pattern="^(asc|desc)$", description=(
        "Sort direction: `asc` (the default: smallest, earliest or A first) or `desc`.")),
    actor: Actor = Depends(get_actor), session: Session = Depends(read_session),
):
    page = reads.list_packs(session, actor=actor, limit=limit, cursor=cursor, holder_kind=holder_kind,
                            holder_id=holder_id, office_id=office_id, customer_id=customer_id,
                            status=statuses(status, PACK_STATUSES),
                            credit_type=credit_type, remaining_min=remaining_min, remaining_max=remaining_max,
                            expires_from=expires_from, expires_to=expires_to, q=q, status_label=status_label,
                            sort=sort, descending=order == "desc", external_ref=external_ref,
                            left_below=left_below, not_started=not_started)
    return {"object": "list", "data": reads.packs_out(session, page.items), "next_cursor": page.next_cursor}


@router.get("/packs/{pack_id}", response_model=s.PackOut, tags=["packs"])
def get_pack(pack_id: PackId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return reads.get_pack_out(session, actor=actor, pack_id=pack_id)


@router.patch("/packs/{pack_id}", response_model=s.PackOut, tags=["packs"])
def update_pack(pack_id: PackId, body: s.PackUpdate, ctx: WriteContext = Depends(write_context)):
    """Edit the status label and special notes (and, with manage_packs, name, managers, priority)."""
    return ctx.run(lambda db, actor: _pack_view(db, packs.update_pack(db, pack_id, body, actor=actor)))


@router.get("/packs/{pack_id}/history", response_model=ListOf[s.HistoryEntry], tags=["packs"])
def pack_history(pack_id: PackId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Every movement in and out with running balance, and holder changes with before/after."""
    return list_of(reads.pack_history(session, actor=actor, pack_id=pack_id), None, lambda e: e)


@router.post("/packs/{pack_id}/change-holder", response_model=s.PackOut, tags=["packs"])
def change_holder(pack_id: PackId, body: s.ChangeHolder, ctx: WriteContext = Depends(write_context)):
    """Give what remains of the pack to another holder: its available credits move, now, to a new pack of
    the new holder (returned; `origin_pack_id` names this one) with the same expiry, priority, products,
    cost per credit and paid/free nature. This pack keeps its history and its holds. Follows the transfer
    rules of the credit type (SMS: those of POST /v1/sms/transfers)."""
    return ctx.run(lambda db, actor: _pack_view(db, transfers.change_holder(db, pack_id, body, actor=actor)))


@router.post("/packs/{pack_id}/void", response_model=s.PackOut, tags=["packs"])
def void_pack(pack_id: PackId, body: s.VoidPack, ctx: WriteContext = Depends(write_context)):
    """Void the pack: what remains goes to breakage, with the reason."""
    return ctx.run(lambda db, actor: _pack_view(db, packs.void_pack(db, pack_id, body, actor=actor)))


# --- projects ---

@router.post("/projects", status_code=201, response_model=s.ProjectOut, tags=["projects"])
def create_project(body: s.ProjectCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: projects.project_out(db, projects.create_project(db, body, actor=actor)),
                   status_code=201)


@router.get("/projects", response_model=ListOf[s.ProjectOut], tags=["projects"])
def list_projects(limit: int | None = Limit, cursor: str | None = Cursor,
                  office_id: str | None = Query(default=None, max_length=40,
                                                description="Only the projects of this office (its id)."),
                  q: str | None = Query(default=None, max_length=200, description=(
                      "Only projects whose name contains this text, ignoring case.")),
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = reads.list_projects(session, actor=actor, limit=limit, cursor=cursor, office_id=office_id, q=q)
    return list_of(page.items, page.next_cursor, lambda p: projects.project_out(session, p))


@router.get("/projects/{project_id}", response_model=s.ProjectOut, tags=["projects"])
def get_project(project_id: ProjectId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return projects.project_out(session, get_in_workspace(session, Project, actor.workspace_id, project_id))


@router.patch("/projects/{project_id}", response_model=s.ProjectOut, tags=["projects"])
def update_project(project_id: ProjectId, body: s.ProjectUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: projects.project_out(db, projects.update_project(db, project_id, body,
                                                                                     actor=actor)))


# --- consumptions ---

@router.post("/consumptions", status_code=201, response_model=s.ConsumptionOut, tags=["consumptions"])
async def consume(body: s.ConsumeRequest, ctx: WriteContext = Depends(write_context)):
    """Consume credits for a context in burn order; all-or-nothing unless allow_partial."""
    # async: the write is awaited on the group writer (planned with the other consumptions of its
    # batch), so a consumption holds no worker thread while it waits for the commit.
    return await ctx.run_async(lambda db, actor: consumptions.consume(db, body, actor=actor), status_code=201,
                   batch=(consume_many, body))


@router.get("/consumptions", response_model=ListOf[s.ConsumptionOut], tags=["consumptions"])
def list_consumptions(limit: int | None = Limit, cursor: str | None = Cursor,
                      context_kind: s.ContextKind | None = Query(default=None, description=(
                          f"Only consumptions made for this kind of context: {CONTEXT_KINDS}.")),
                      context_id: str | None = Query(default=None, max_length=40, description=(
                          "Only consumptions made for this context: a project, user, office or customer id.")),
                      reference_kind: str | None = Query(default=None, max_length=40, description=(
                          "Only consumptions whose `reference.kind` is exactly this text, as it was sent.")),
                      reference_id: str | None = Query(default=None, max_length=200, description=(
                          "Only consumptions whose `reference.id` is exactly this text, as it was sent.")),
                      pack_id: str | None = Query(default=None, max_length=40,
                                                  description="Consumptions that took credits from this pack."),
                      created_from: Instant | None = DateFrom, created_to: Instant | None = DateTo,
                      actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Consumptions newest first; filter by context, reference, the pack they used, and dates."""
    page = consumptions.list_consumptions(session, actor=actor, limit=limit, cursor=cursor,
                                          context_kind=context_kind, context_id=context_id,
                                          reference_kind=reference_kind, reference_id=reference_id,
                                          pack_id=pack_id, created_from=created_from, created_to=created_to)
    return list_of(page.items, page.next_cursor, lambda c: consumptions.consumption_out(session, c))


@router.get("/consumptions/{consumption_id}", response_model=s.ConsumptionOut, tags=["consumptions"])
def get_consumption(consumption_id: ConsumptionId, actor: Actor = Depends(get_actor),
                    session: Session = Depends(read_session)):
    c = get_in_workspace(session, Consumption, actor.workspace_id, consumption_id)
    governance.require_visible(session, actor, c.credit_type_id, [(c.context_kind, c.context_id)],
                               label="consumption", object_id=c.id)
    return consumptions.consumption_out(session, c)


@router.post("/consumptions/{consumption_id}/reverse", response_model=s.ConsumptionOut, tags=["consumptions"])
def reverse_consumption(consumption_id: ConsumptionId, body: ReverseRequest | None = None,
                        ctx: WriteContext = Depends(write_context)):
    """Return the credits to the packs they came from (an expired pack passes them to breakage)."""
    reason = body.reason if body else ""
    return ctx.run(lambda db, actor: consumptions.consumption_out(
        db, consumptions.reverse_consumption(db, consumption_id, actor=actor, reason=reason)))


# --- holds ---

@router.post("/holds", status_code=201, response_model=s.HoldOut, tags=["holds"])
def create_hold(body: s.HoldRequest, ctx: WriteContext = Depends(write_context)):
    """Reserve credits now; capture all or part later, release, or let the timeout release them."""
    return ctx.run(lambda db, actor: holds.hold_out(db, holds.create_hold(db, body, actor=actor)),
                   status_code=201)


@router.get("/holds", response_model=ListOf[s.HoldOut], tags=["holds"])
def list_holds(limit: int | None = Limit, cursor: str | None = Cursor,
               status: list[str] | None = status_query(HOLD_STATUSES, what="holds"),
               context_kind: s.ContextKind | None = Query(default=None, description=(
                   f"Only holds made for this kind of context: {CONTEXT_KINDS}.")),
               context_id: str | None = Query(default=None, max_length=40, description=(
                   "Only holds made for this context: a project, user, office or customer id.")),
               credit_type: str | None = CreditTypeQuery,
               pack_id: str | None = Query(default=None, max_length=40,
                                           description="Holds that reserved credits of this pack."),
               created_from: Instant | None = DateFrom, created_to: Instant | None = DateTo,
               actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Holds newest first, with the same visibility as GET /v1/holds/{id}."""
    page = holds.list_holds(session, actor=actor, limit=limit, cursor=cursor,
                            status=statuses(status, HOLD_STATUSES), context_kind=context_kind,
                            context_id=context_id, credit_type_code=credit_type, pack_id=pack_id,
                            created_from=created_from, created_to=created_to)
    return list_of(page.items, page.next_cursor, lambda h: holds.hold_out(session, h))


@router.get("/holds/{hold_id}", response_model=s.HoldOut, tags=["holds"])
def get_hold(hold_id: HoldId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    hold = get_in_workspace(session, Hold, actor.workspace_id, hold_id)
    governance.require_visible(session, actor, hold.credit_type_id, [(hold.context_kind, hold.context_id)],
                               label="hold", object_id=hold.id)
    return holds.hold_out(session, hold)


@router.post("/holds/{hold_id}/capture", response_model=s.HoldOut, tags=["holds"])
def capture_hold(hold_id: HoldId, body: s.CaptureRequest | None = None, ctx: WriteContext = Depends(write_context)):
    data = body or s.CaptureRequest()
    return ctx.run(lambda db, actor: holds.hold_out(db, holds.capture_hold(db, hold_id, data, actor=actor)))


@router.post("/holds/{hold_id}/release", response_model=s.HoldOut, tags=["holds"])
def release_hold(hold_id: HoldId, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: holds.hold_out(db, holds.release_hold(db, hold_id, actor=actor)))


@router.post("/holds/{hold_id}/reverse", response_model=s.HoldOut, tags=["holds"])
def reverse_hold(hold_id: HoldId, body: ReverseRequest | None = None, ctx: WriteContext = Depends(write_context)):
    reason = body.reason if body else ""
    return ctx.run(lambda db, actor: holds.hold_out(db, holds.reverse_hold(db, hold_id, actor=actor,
                                                                           reason=reason)))


# --- transfers ---

@router.post("/transfers", status_code=201, response_model=s.TransferOut, response_model_by_alias=True,
             tags=["transfers"])
def transfer(body: s.TransferRequest, ctx: WriteContext = Depends(write_context)):
    """Move credits between holders; moved credits keep expiry, priority, cost and paid/free nature."""
    def run(db, actor):
        result = transfers.transfer_credits(db, body, actor=actor)
        return transfers.transfer_out(db, result.transfer, result.lines).model_dump(mode="json", by_alias=True)
    return ctx.run(run, status_code=201)


@router.get("/transfers", response_model=ListOf[s.TransferOut], response_model_by_alias=True, tags=["transfers"])
def list_transfers(limit: int | None = Limit, cursor: str | None = Cursor,
                   holder_kind: s.HolderKind | None = Query(default=None, description=(
                       "Only transfers from or to this kind of holder: `office`, `user`, `customer` or "
                       "`workspace` (the pool).")),
                   holder_id: str | None = Query(default=None, max_length=40, description=(
                       "Only transfers from or to this office, user or customer (its id); it needs "
                       "`holder_kind` (422 holder_kind_required without it).")),
                   pack_id: str | None = Query(default=None, max_length=40, description=(
                       "The transfer that made this pack, and those that took credits from it.")),
                   credit_type: str | None = CreditTypeQuery,
                   created_from: Instant | None = DateFrom, created_to: Instant | None = DateTo,
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Transfers newest first: both sides of each, visible to whoever sees one of its holders."""
    if holder_id and not holder_kind:
        # The holder filter matches a side by kind and id; an id alone used to be ignored (the whole list).
        raise InvalidInput("holder_id needs holder_kind (office, user, customer or workspace).",
                           code="holder_kind_required", field="holder_kind")
    page = transfers.list_transfers(session, actor=actor, limit=limit, cursor=cursor, holder_kind=holder_kind,
                                    holder_id=holder_id, pack_id=pack_id, credit_type_code=credit_type,
                                    created_from=created_from, created_to=created_to)
    return list_of(page.items, page.next_cursor, lambda x: transfers.transfer_out(session, x))


@router.get("/transfers/{transfer_id}", response_model=s.TransferOut, response_model_by_alias=True,
            tags=["transfers"])
def get_transfer(transfer_id: TransferId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    xfer = get_in_workspace(session, CreditTransfer, actor.workspace_id, transfer_id, label="transfer")
    governance.require_visible(session, actor, xfer.credit_type_id, [
        (xfer.from_holder_kind, xfer.from_holder_id), (xfer.to_holder_kind, xfer.to_holder_id)],
        label="transfer", object_id=xfer.id)
    # The model itself, not a by-alias dict: response validation reads the field name (from_), and
    # response_model_by_alias writes it out as "from".
    return transfers.transfer_out(session, xfer)


# --- balances and eligibility ---

@router.get("/balances", response_model=ListOf[s.BalanceOut], tags=["balances"])
def get_balances(holder_kind: s.HolderKind = Query(description=(
                     "Whose balances: the kind of holder, `office`, `user`, `customer` or `workspace` (the pool).")),
                 holder_id: str | None = Query(default=None, max_length=40, description=(
                     "The office, user or customer id; required for those kinds, omitted for `workspace`.")),
                 credit_type: str | None = Query(default=None, max_length=40, description=(
                     "Only this credit type's balance, by its code; omitted: one row per credit type held.")),
                 actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Available, held and total per credit type for one holder."""
    return list_of(reads.balances(session, actor=actor, holder_kind=holder_kind, holder_id=holder_id,
                                  credit_type=credit_type), None, lambda b: b)


@router.get("/eligibility", response_model=s.EligibilityOut, tags=["balances"])
def get_eligibility(context_kind: s.ContextKind = Query(description=(
                        f"What the credits would be spent for: {CONTEXT_KINDS}. A project's packs are its "
                        "office's and its contacts'; a customer's are its own and its offices'.")),
                    context_id: str | None = Query(default=None, max_length=40, description=(
                        "The project, user, office or customer id; omitted for `workspace`.")),
                    credit_type: str | None = Query(default=None, max_length=40, description=(
                        "Only packs of this credit type, by its code; omitted: every credit type.")),
                    product_code: str | None = Query(default=None, max_length=100, description=(
                        "The product the credits would pay for: packs that do not cover it are near misses "
                        "(product_not_covered).")),
                    actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    """Eligible packs in burn order, and each near-miss pack of the customer with why it is not eligible.
    `available_by_type` sums the eligible credits per credit type; `available` is that sum for
    `credit_type`, or, without it, for the one type the eligible packs hold (null when they hold several:
    credits of different types do not add up)."""
    return reads.eligibility(session, actor=actor, context_kind=context_kind, context_id=context_id,
                             credit_type=credit_type, product_code=product_code)
