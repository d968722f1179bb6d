"""Who may do what with credits, in one place, for every path (API, back office, CLI, import, jobs).

Two layers, both checked here:

1. The generic permissions of the credits actions: granting (masters, managers, manage_packs),
   consuming and holding (masters, managers, consume_credits), changing packs (manage_packs).
2. The rules of a *governed* credit type: one that names a `required_permission` (today only
   `send_sms`, so a governed type is an SMS credit type and follows the SMS rules of seed 003).
   They come on top of the generic permissions, whichever endpoint is used:

   - holders: the workspace pool and users only (never offices or customers);
   - frozen: a user's credits are frozen while the user may not use them (`may_use`): transferable
     away only;
   - grant (POST /v1/packs and its batch, the back-office grant form, the CSV import, the CLI):
     SMS credits are bought through the SMS purchase flow (POST /v1/sms/purchases), which grants them
     once the payment succeeds and issues the receipt. Outside it only master users may grant them
     (free or promotion credits, or credits paid for elsewhere recorded by hand), to the pool or to a
     user who may receive them, and never as source "purchase": a pack with that source is always a
     paid SMS purchase with its receipt;
   - spend (consume, hold, capture, release): a user always spends their own credits, so the context
     is the acting user, who must be allowed to send; the pool is never spent (credits are allocated
     to a user first);
   - transfer (POST /v1/transfers, change holder): the SMS transfer rule (`check_transfer`), the same
     function /v1/sms/transfers uses;
   - void and reversals: master users only;
   - reads (packs, balances, eligibility, history): a viewer sees the governed credits of the users
     in their scope (`scope_of`) and, for master users only, of the pool.

Shared office SMS credits (the workspace's SMS credit mode `shared`, seed 003's other configuration): the
holders are the workspace pool and the business's own offices; a message is paid from the sender's office pool,
then the pool; purchases and transfers go to office pools (`check_purchase_shared`, `check_transfer_shared`).
Credits users still hold from the individual mode stay theirs: a master or their office manager moves them into
a pool (a switch of mode moves nothing by itself). Back in individual mode, office pools still holding credits are
leftover pools, the mirror image: their credits only leave, to the workspace pool (master users) or to users who
may send SMS (master users; office managers for their own offices), `check_leftover_pool_transfer`.

Each rule is one function; the services call them, and a future batch writer calls the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from creditdesk.audit import Actor
from creditdesk.credits.models import CreditType, Pack
from creditdesk.errors import Conflict, InvalidInput, NotFound, NotPermitted
from creditdesk.parties.models import User, UserOffice, Workspace
from creditdesk.parties.service import team_mate_ids

GOVERNED = "credit_type_governed"  # the code of a refusal by a governed type's rules
SMS_HOLDER_KINDS = ("workspace", "user")
SHARED_HOLDER_KINDS = ("workspace", "office")  # shared office SMS credits
SMS_PURCHASE_PREFIX = "smsp_"  # ids of SMS purchases: a pack's external_ref naming one is the purchase's own


# --- generic permissions -------------------------------------------------------------------------

def can_manage_packs(actor: Actor) -> bool:
    return actor.has("manage_packs")


def require_manage_packs(actor: Actor, what: str) -> None:
    if not can_manage_packs(actor):
        raise NotPermitted(f"Only master users or users with the manage_packs permission may {what}.")


def require_grant(actor: Actor) -> None:
    if not (actor.is_master or actor.role == "manager" or actor.has("manage_packs")):
        raise NotPermitted("Only master users, managers or users with manage_packs may grant packs.")


def require_consume(actor: Actor) -> None:
    if not (actor.is_master or actor.role == "manager" or actor.has("consume_credits")):
        raise NotPermitted("Consuming credits needs the consume_credits permission.")


# --- governed types and frozen credits -----------------------------------------------------------

def is_governed(ct) -> bool:
    """Whether a credit type (a CreditType or anything with required_permission) follows its own rules."""
    return bool(getattr(ct, "required_permission", None))


def may_use(user: User, permission: str | None) -> bool:
    """The one definition of "not frozen": a user may hold and use credits that need `permission` (None:
    credits of any ungoverned type) when active and, for a permission, a staff user holding it (master
    users hold every permission). Credits of a user who may not are frozen: they can only be moved away."""
    if not user.is_active:
        return False
    if permission is None:
        return True
    return bool(user.is_staff and (user.role == "master" or permission in (user.permissions or [])))


def is_frozen(user: User, ct) -> bool:
    return not may_use(user, ct.required_permission)


def may_send_sms(user: User) -> bool:
    """May hold, receive and use SMS credits (the send_sms permission)."""
    return may_use(user, "send_sms")


# --- who manages whom (seed 003) -----------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The users a viewer manages. kind: master (everyone, and the pool) | office | team."""

    kind: str
    user_ids: frozenset[str]  # empty for master: everyone
    office_ids: frozenset[str] = frozenset()  # the viewer's offices: their pools in shared mode

    def covers(self, user_id: str) -> bool:
        return self.kind == "master" or user_id in self.user_ids

    def sees(self, holder_kind: str, holder_id: str) -> bool:
        """Whether governed credits of this holder are visible (and manageable) in this scope."""
        if self.kind == "master":
            return True
        if holder_kind == "office":
            return holder_id in self.office_ids
        return holder_kind == "user" and holder_id in self.user_ids


def office_user_ids(session: Session, workspace_id: str, office_ids: frozenset[str]) -> set[str]:
    if not office_ids:
        return set()
    return set(session.scalars(select(User.id).where(User.workspace_id == workspace_id, or_(
        User.primary_office_id.in_(office_ids),
        User.id.in_(select(UserOffice.user_id).where(UserOffice.office_id.in_(office_ids)))))))


def scope_of(session: Session, actor: Actor) -> Scope:
    """master: everyone and the pool; manage_office_credits: the users of their offices (primary and
    additional) and themselves; anyone else: themselves and the members of their teams."""
    if actor.is_master:
        return Scope("master", frozenset())
    if actor.user_id is None:
        return Scope("team", frozenset())
    offices = frozenset(actor.office_ids or ())
    if actor.has("manage_office_credits"):
        ids = office_user_ids(session, actor.workspace_id, actor.office_ids) | {actor.user_id}
        return Scope("office", frozenset(ids), offices)
    return Scope("team", frozenset(team_mate_ids(session, actor.user_id)), offices)


def who_can_move_for(session: Session, workspace_id: str, user_id: str) -> list[User]:
    """The people who may move this user's SMS credits when the user cannot (frozen, or nobody to send
    to): the active master users, and the active users with manage_office_credits in one of the user's
    offices (check_transfer's office scope). Said by name instead of a dead end."""
    user = session.get(User, user_id)
    offices = {user.primary_office_id} if user is not None and user.primary_office_id else set()
    offices |= set(session.scalars(select(UserOffice.office_id).where(UserOffice.user_id == user_id)))
    candidates = session.scalars(select(User).where(
        User.workspace_id == workspace_id, User.is_active.is_(True), User.is_staff.is_(True),
        User.id != user_id).order_by(User.name, User.id))
    out = []
    for other in candidates:
        if other.role == "master":
            out.append(other)
        elif "manage_office_credits" in (other.permissions or []) and offices:
            theirs = {other.primary_office_id} | set(session.scalars(
                select(UserOffice.office_id).where(UserOffice.user_id == other.id)))
            if theirs & offices:
                out.append(other)
    return out


# --- the SMS rules -------------------------------------------------------------------------------

def require_pool_manager(actor: Actor) -> None:
    if not actor.is_master:
        raise NotPermitted("Only master users manage the workspace pool (system / unallocated credits).",
                           code="pool_master_only")


def require_sms_holder(holder, *, shared: bool = False) -> None:
    if shared and holder.kind not in SHARED_HOLDER_KINDS:
        raise InvalidInput("With shared office SMS credits, SMS credits are held by the workspace pool and the "
                           "business's offices only.", code="invalid_sms_account")
    if not shared and holder.kind not in SMS_HOLDER_KINDS:
        raise InvalidInput("SMS credits are held by the workspace pool and users only.",
                           code="invalid_sms_account")


def is_shared_mode(session: Session, workspace_id: str) -> bool:
    ws = session.get(Workspace, workspace_id)
    return (ws.settings or {}).get("sms_credit_mode", "individual") == "shared"


def require_own_office(session: Session, workspace_id: str, office_id: str | None):
    """An office of the business (not a customer's): the only offices that hold shared SMS credits."""
    from creditdesk.parties.models import Office

    office = session.get(Office, office_id or "")
    if office is None or office.workspace_id != workspace_id:
        raise NotFound(f"No office with id {office_id!r} in this workspace.", object_id=office_id)
    if office.customer_id is not None:
        raise InvalidInput(f"{office.name} is a customer's office; shared SMS credits are held by the business's own "
                           "offices.", code="invalid_sms_account")
    return office


def check_purchase_shared(session: Session, actor: Actor, holder) -> None:
    """Shared mode: master users buy for the pool or any office; users with manage_office_credits for their
    offices; others ask one of them."""
    require_sms_holder(holder, shared=True)
    if holder.kind == "workspace":
        require_pool_manager(actor)
        return
    require_own_office(session, actor.workspace_id, holder.id)
    if actor.is_master:
        return
    if actor.has("manage_office_credits") and holder.id in (actor.office_ids or ()):
        return
    raise NotPermitted("With shared office SMS credits, master users buy for any office and users with "
                       "manage_office_credits for their own offices.", code="not_permitted")


def check_transfer_shared(session: Session, actor: Actor, source, to) -> None:
    """Shared mode: between the pool and offices (master users), between one's own offices (manage_office_credits).
    Credits a user still holds from the individual mode may only leave, into a pool, moved by a master user or
    an office manager of that user's offices."""
    if to.kind not in SHARED_HOLDER_KINDS or source.kind not in (*SHARED_HOLDER_KINDS, "user"):
        raise InvalidInput("With shared office SMS credits, credits move between the workspace pool and the "
                           "business's offices (a user's own credits only into a pool).", code="invalid_sms_account")
    for side in (source, to):
        if side.kind == "office":
            require_own_office(session, actor.workspace_id, side.id)
    if actor.is_master:
        return
    if "workspace" in (source.kind, to.kind):
        require_pool_manager(actor)
    if not actor.has("manage_office_credits"):
        raise NotPermitted("With shared office SMS credits, master users and users with manage_office_credits "
                           "move credits between office pools.", code="not_permitted")
    mine = set(actor.office_ids or ())
    if source.kind == "user":
        if not scope_of(session, actor).covers(source.id):
            raise NotPermitted("You can move only the credits of users of your offices.", code="not_permitted")
    elif source.id not in mine:
        raise NotPermitted("You can transfer SMS credits only between your own offices.", code="not_permitted")
    if to.id not in mine:
        raise NotPermitted("You can transfer SMS credits only between your own offices.", code="not_permitted")


def why_cannot_send(user: User) -> str | None:
    """Why this user may not hold, receive or use SMS credits, in words (None: they may)."""
    if may_send_sms(user):
        return None
    if not user.is_active:
        return "is deactivated"
    if not user.is_staff:
        return "is not a staff user (a customer contact)"
    return "may not send SMS"


def require_recipient(user: User) -> None:
    """Credits can be bought for or transferred to active (staff) users who may send SMS only."""
    why = why_cannot_send(user)
    if why:
        raise InvalidInput(f"SMS credits can only go to active users who may send SMS; {user.name} {why}.",
                           code="recipient_cannot_send_sms", user_id=user.id)


def who_can_allow_sending(session: Session, workspace_id: str, user: User) -> list[User]:
    """Who can give this user permission to send SMS (parties' rule for changing a user): the active master
    users, and for a member the active managers with manage_users who hold send_sms and every permission the
    member holds. Said by name to someone who may not send, instead of a dead end."""
    candidates = session.scalars(select(User).where(
        User.workspace_id == workspace_id, User.is_active.is_(True), User.is_staff.is_(True),
        User.id != user.id).order_by(User.name, User.id))
    held = set(user.permissions or [])
    out = []
    for other in candidates:
        theirs = set(other.permissions or [])
        if other.role == "master" or (
                user.role == "member" and other.role == "manager" and "manage_users" in theirs
                and "send_sms" in theirs and held <= theirs):
            out.append(other)
    return out


def require_individual_mode(ws: Workspace) -> None:
    if (ws.settings or {}).get("sms_credit_mode", "individual") != "individual":
        raise Conflict("This workspace uses shared office SMS credits; individual user credits are not in use. "
                       "A master user can switch the SMS credit mode to individual.", code="sms_credit_mode_shared")


def _require_individual_mode_for(session: Session, actor: Actor) -> None:
    require_individual_mode(session.get(Workspace, actor.workspace_id))


def check_purchase(session: Session, actor: Actor, holder, user: User | None) -> None:
    """Who may buy SMS credits for whom: master -> the pool or any user; office manager -> any user of
    their offices; others -> themselves and their team members. The user must be able to receive them."""
    if user is None:
        require_pool_manager(actor)
        return
    scope = scope_of(session, actor)
    if not scope.covers(user.id):
        if scope.kind == "office":
            raise NotPermitted("You can buy SMS credits only for users of your offices.", code="not_permitted")
        raise NotPermitted("You can buy SMS credits only for yourself and members of your teams.",
                           code="not_permitted")
    require_recipient(user)


def check_transfer(session: Session, actor: Actor, source, to) -> None:
    """Who may move SMS credits where: master -> pool <-> any user and user <-> user; office manager ->
    between users of their offices; others -> from their own credits to a team member, never from a
    team member's. The receiver must be able to receive them; frozen credits may leave."""
    if source.kind == "office":
        check_leftover_pool_transfer(session, actor, source, to)
        return
    if source.kind not in SMS_HOLDER_KINDS or to.kind not in SMS_HOLDER_KINDS:
        raise InvalidInput("SMS credits move between the workspace pool and users only.", code="invalid_sms_account")
    if "workspace" in (source.kind, to.kind):
        require_pool_manager(actor)
    scope = scope_of(session, actor)
    if scope.kind == "office":
        for side in (source, to):
            if side.kind == "user" and not scope.covers(side.id):
                raise NotPermitted("You can transfer SMS credits only between users of your offices.",
                                   code="not_permitted")
    elif scope.kind == "team":
        if source.kind != "user" or source.id != actor.user_id:
            raise NotPermitted("You can transfer only from your own SMS credits, never from a team member's.",
                               code="not_permitted")
        if to.kind != "user" or to.id == actor.user_id or to.id not in scope.user_ids:
            raise NotPermitted("You can transfer your SMS credits only to members of your teams.",
                               code="not_permitted")
    if to.kind == "user":
        require_recipient(session.get(User, to.id))


def check_leftover_pool_transfer(session: Session, actor: Actor, source, to) -> None:
    """Individual mode: an office pool still holding credits from the shared mode (a switch of mode moves
    nothing) is a leftover pool. Its credits may only leave: master users move them to the workspace pool or to
    a user who may send SMS; a user with manage_office_credits moves those of their own offices to users of
    their offices. The mirror of the users' leftover credits in shared mode (check_transfer_shared)."""
    require_own_office(session, actor.workspace_id, source.id)
    if to.kind not in SMS_HOLDER_KINDS:
        raise InvalidInput("With individual user SMS credits, an office pool's credits move to the workspace pool "
                           "or to a user who may send SMS.", code="invalid_sms_account")
    if to.kind == "workspace":
        require_pool_manager(actor)
    elif not actor.is_master:
        scope = scope_of(session, actor)
        if scope.kind != "office" or source.id not in scope.office_ids or not scope.covers(to.id):
            raise NotPermitted("Master users move an office pool's leftover SMS credits; office managers those of "
                               "their own offices, to users of their offices.", code="not_permitted")
    if to.kind == "user":
        require_recipient(session.get(User, to.id))


def sms_receivers(session: Session, actor: Actor, ct, source, candidates) -> list:
    """Of `candidates` (holder refs), those the rules of this credit type let `actor` move credits to from
    `source` (a transfer or a change of holder): pickers offer only these, so a refusal never waits for the
    confirmation. Every candidate for an ungoverned type."""
    if not is_governed(ct):
        return list(candidates)
    out = []
    for to in candidates:
        if (to.kind, to.id) == (source.kind, source.id):
            continue
        try:
            authorize_transfer(session, actor, ct, source, to)
        except (InvalidInput, NotPermitted, NotFound, Conflict):
            continue
        out.append(to)
    return out


# --- every path ----------------------------------------------------------------------------------

def is_wallet_money(ct) -> bool:
    """Whether a credit type is the money of account wallets (billing.wallets)."""
    return bool(getattr(ct, "wallet_currency", None))


def require_not_wallet_money(ct, what: str) -> None:
    """Wallet money moves only through its wallet (top up, pay an invoice, refund): every credit path
    (grant, import, consume, hold, transfer, void, reverse) refuses it, so no path spends it around the
    wallet's rules and history."""
    if is_wallet_money(ct):
        raise NotPermitted(f"{ct.code} is wallet money: it moves only through its account's wallet (top up, "
                           f"pay an invoice, refund: /v1/accounts/{{id}}/wallet), never by {what}.",
                           code="wallet_money")


def check_grant_source(ct, data) -> None:
    """What a grant outside the SMS purchase flow may claim to be. A plain grant is never a transfer
    (transfers make their packs themselves), and never names an SMS purchase as what paid for it."""
    if data.source == "wallet":
        raise InvalidInput("A grant cannot have the source wallet: wallet money comes from a wallet top up.",
                           code="source_reserved")
    if data.source == "transfer":
        raise InvalidInput("A grant cannot have the source transfer: transferred credits come from a transfer "
                           "(POST /v1/transfers).", code="source_reserved")
    if data.source == "purchase" and (data.external_ref or "").startswith(SMS_PURCHASE_PREFIX):
        raise InvalidInput("The external_ref names an SMS purchase: only that purchase grants its credits.",
                           code="source_reserved")
    if is_governed(ct) and data.source == "purchase":
        raise InvalidInput(f"{ct.code} credits with the source purchase come only from a paid SMS purchase "
                           "(POST /v1/sms/purchases), which issues its receipt.", code="source_reserved")


def authorize_grant(session: Session, actor: Actor, ct, holder, data, *, paid_purchase: bool = False) -> None:
    """May this actor grant this pack (`data`, a PackCreate) to this holder? Every grant path comes here.

    `paid_purchase` is set by the SMS purchase flow only, when the payment succeeded: who may buy for whom
    was decided by `check_purchase` when the purchase was made, and its pack is the purchase's own."""
    if paid_purchase:
        return
    require_grant(actor)
    require_not_wallet_money(ct, "a grant")
    check_grant_source(ct, data)
    if not is_governed(ct):
        return
    if not actor.is_master:
        raise NotPermitted(f"{ct.code} credits are bought through POST /v1/sms/purchases (granted once paid, with "
                           "a receipt) and moved with POST /v1/sms/transfers; only master users grant them "
                           "directly.", code=GOVERNED)
    shared = is_shared_mode(session, actor.workspace_id)
    require_sms_holder(holder, shared=shared)
    if holder.kind == "user":
        _require_individual_mode_for(session, actor)
        require_recipient(session.get(User, holder.id))
    elif holder.kind == "office":
        require_own_office(session, actor.workspace_id, holder.id)


def authorize_spend(session: Session, actor: Actor, ct, context_kind: str, context_id: str | None) -> None:
    """May this actor consume, hold, capture or release credits of this type for this context?"""
    require_consume(actor)
    require_not_wallet_money(ct, "consuming or holding credits")
    if not is_governed(ct):
        return
    if is_shared_mode(session, actor.workspace_id):
        # Shared: a sender spends their office's pool, then the workspace's.
        user = session.get(User, actor.user_id) if actor.user_id else None
        if user is None or not may_send_sms(user):
            raise NotPermitted(f"{ct.code} credits are spent by users who may send SMS.", code="not_permitted")
        if not ((context_kind == "office" and context_id in (actor.office_ids or ())) or context_kind == "workspace"):
            raise NotPermitted(f"With shared office SMS credits, {ct.code} credits are spent from your office's "
                               "pool or the workspace pool.", code="own_credits_only")
        return
    if context_kind != "user" or actor.user_id is None or context_id != actor.user_id:
        raise NotPermitted(f"{ct.code} credits are spent only by the user who holds them, on their own account "
                           "(context: yourself), or through POST /v1/messages; pool credits are allocated to a "
                           "user first.", code="own_credits_only")
    _require_individual_mode_for(session, actor)
    # A holder who may not use them (may_use) finds them frozen: the burn leaves frozen credits out and
    # answers credits_frozen with how many there are.


def authorize_transfer(session: Session, actor: Actor, ct, source, to,
                       *, what: str = "transfer credits between holders") -> None:
    """May this actor move credits of this type from `source` to `to` (a transfer, or a change of holder)?"""
    require_manage_packs(actor, what)
    require_not_wallet_money(ct, "a transfer")
    if is_governed(ct):
        if is_shared_mode(session, actor.workspace_id):
            check_transfer_shared(session, actor, source, to)
            return
        check_transfer(session, actor, source, to)


def authorize_correction(actor: Actor, ct, what: str) -> None:
    """Void a pack, reverse a consumption or a captured hold: credits leave or come back outside the
    holder's own use, so governed credits need a master user."""
    require_manage_packs(actor, what)
    require_not_wallet_money(ct, "a correction (void or reversal)")
    if is_governed(ct) and not actor.is_master:
        raise NotPermitted(f"Only master users may {what} of {ct.code} credits.", code=GOVERNED)


# --- reads ---------------------------------------------------------------------------------------

def governed_type_ids(session: Session, workspace_id: str) -> list[str]:
    return list(session.scalars(select(CreditType.id).where(CreditType.workspace_id == workspace_id,
                                                            CreditType.required_permission.is_not(None))))


def visible_clause(session: Session, actor: Actor, type_column, kind_column, id_column):
    """A filter keeping the rows the actor may see (None: every row of the workspace): every row of an
    ungoverned type, and governed rows whose holder (or context: kind_column, id_column) is a user in the
    actor's scope."""
    if actor.is_master:
        return None
    governed = governed_type_ids(session, actor.workspace_id)
    if not governed:
        return None
    scope = scope_of(session, actor)
    return or_(type_column.not_in(governed), and_(kind_column == "user", id_column.in_(sorted(scope.user_ids))),
               and_(kind_column == "office", id_column.in_(sorted(scope.office_ids))))


def visible_packs_clause(session: Session, actor: Actor):
    """The packs the actor may see (visible_clause on the pack's holder)."""
    return visible_clause(session, actor, Pack.credit_type_id, Pack.holder_kind, Pack.holder_id)


def may_see(session: Session, actor: Actor, ct, holder_kind: str, holder_id: str) -> bool:
    if actor.is_master or not is_governed(ct):
        return True
    return scope_of(session, actor).sees(holder_kind, holder_id)


def require_visible(session: Session, actor: Actor, credit_type_id: str, sides: list[tuple[str, str]], *,
                     label: str, object_id: str) -> None:
    """A consumption, hold or transfer of a governed type is seen by those who see one of its holders
    (context, or either side of a transfer); to others it is not admitted to exist."""
    if actor.is_master:
        return
    ct = session.get(CreditType, credit_type_id)
    if not is_governed(ct):
        return
    scope = scope_of(session, actor)
    if not any(scope.sees(kind, holder_id) for kind, holder_id in sides):
        raise NotFound(f"No {label} with id {object_id!r} in this workspace.", object_id=object_id)


def require_visible_pack(session: Session, actor: Actor, pack: Pack, ct=None) -> None:
    """A governed pack outside the actor's scope is not admitted to exist (a 403 would confirm the id)."""
    if actor.is_master:
        return
    ct = ct if ct is not None else session.get(CreditType, pack.credit_type_id)
    if not may_see(session, actor, ct, pack.holder_kind, pack.holder_id):
        raise NotFound(f"No pack with id {pack.id!r} in this workspace.", object_id=pack.id)
