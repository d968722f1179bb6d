"""Group accounts and pricing agreements (seed 004: "Using group accounts", "Setting up an Account Pricing
Agreement"). README "Group accounts and pricing agreements".

Pricing agreement: an account may carry its own price plan (same currency, else `currency_mismatch`). Invoices
raised for it take that plan as their price plan unless the invoice names one itself; a product the plan has no
price for falls back to the currency's default plan (catalog.service.price_of). A member of a group whose parent
has an agreement takes the parent's; otherwise its own.

Group: a parent account with member accounts, each with a funding scope: `full` (every charge) or `partial`
(the named products, and every product of the named product types and families). Conditions (each its own code,
nothing written when one fails):
- parent: active (`parent_not_active`), not a member of a group (`parent_is_member`), not a system account
  (`parent_is_system_account`);
- member: not the parent itself (`member_is_parent_account`), active (`member_not_active`), not in a group
  (`member_already_in_group`), not a parent (`member_is_parent`), not a system account
  (`member_is_system_account`), the parent's currency (`member_currency_mismatch`), another owner (customer)
  than the parent (`member_same_owner`), no own pricing agreement when its classification is corporate
  (`member_has_own_pricing`; the same rule refuses an agreement for a corporate member later:
  `member_pricing_not_allowed`).
A system account is one classified `system` (case-insensitive): creditdesk opens none itself, so this only
keeps an account an operator marks as such out of groups. Corporate: classification `corporate`.

Funded charges (`bill_funded_lines`, called by invoices.post_invoice): when a member's draft is posted, its lines
in the member's funding scope move to a new invoice of the parent, which is posted first (the parent's credit
check, number and ledger posting); the rest stays on the member's invoice. When every line is funded the invoice
itself is billed to the parent. Lifecycle (`follow_parent`, called by billing.lifecycle): suspending the parent
suspends its active members, reactivating it reactivates the members suspended with it, terminating it
terminates its members (refused, nothing changed, when a member cannot be terminated).

Who may: masters and managers add and remove members and set pricing agreements; every staff user reads them.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import accounts
from creditdesk.billing import group_schemas as gs
from creditdesk.billing.group_models import GroupMember, PricingAgreement
from creditdesk.billing.invoice_models import Invoice
from creditdesk.billing.models import BillingAccount
from creditdesk.catalog import repository as catalog_repo
from creditdesk.catalog import service as catalog
from creditdesk.catalog.models import Product, ProductFamily, ProductType
from creditdesk.errors import Conflict, InvalidInput, NotFound
from creditdesk.ids import new_id
from creditdesk.parties.service import require_manager

SYSTEM = "system"
CORPORATE = "corporate"


def is_system_account(account: BillingAccount) -> bool:
    return (account.classification or "").strip().lower() == SYSTEM


def is_corporate(account: BillingAccount) -> bool:
    return (account.classification or "").strip().lower() == CORPORATE


# --- reads ---

def membership_of(session: Session, account: BillingAccount) -> GroupMember | None:
    """The account's row as a member of a group (None: not a member)."""
    return session.scalar(select(GroupMember).where(GroupMember.workspace_id == account.workspace_id,
                                                    GroupMember.member_id == account.id))


def members_of(session: Session, parent: BillingAccount) -> list[GroupMember]:
    return list(session.scalars(select(GroupMember).where(GroupMember.workspace_id == parent.workspace_id,
                                                          GroupMember.parent_id == parent.id)
                                .order_by(GroupMember.created_at, GroupMember.id)))


def is_parent(session: Session, account: BillingAccount) -> bool:
    return bool(session.scalar(select(func.count()).select_from(GroupMember).where(
        GroupMember.workspace_id == account.workspace_id, GroupMember.parent_id == account.id)))


def own_agreement(session: Session, account: BillingAccount) -> PricingAgreement | None:
    return session.get(PricingAgreement, account.id)


def agreed_price_plan(session: Session, account: BillingAccount) -> str | None:
    """The price plan the account's invoices take prices from: its parent's agreement when it is a member of a
    group whose parent has one, else its own; None: the currency's default plan."""
    return _effective(session, account)[0]


def _effective(session: Session, account: BillingAccount) -> tuple[str | None, str]:
    membership = membership_of(session, account)
    if membership is not None:
        parents = session.get(PricingAgreement, membership.parent_id)
        if parents is not None:
            return parents.price_plan_id, "parent"
    own = own_agreement(session, account)
    return (own.price_plan_id, "own") if own else (None, "none")


def funding_out(membership: GroupMember) -> gs.FundingScopeOut:
    return gs.FundingScopeOut(scope=membership.funding_scope, products=list(membership.funded_products or []),
                              product_types=list(membership.funded_product_types or []),
                              product_families=list(membership.funded_product_families or []))


def member_out(session: Session, membership: GroupMember) -> gs.MemberOut:
    member = session.get(BillingAccount, membership.member_id)
    return gs.MemberOut(id=membership.id, parent_id=membership.parent_id, member_id=member.id,
                        member_number=member.number, member_name=member.name, member_status=member.status,
                        funding=funding_out(membership), created_at=clock.aware(membership.created_at))


def group_out(session: Session, account: BillingAccount) -> gs.GroupOut:
    membership = membership_of(session, account)
    return gs.GroupOut(account_id=account.id, parent_id=membership.parent_id if membership else None,
                       funding=funding_out(membership) if membership else None,
                       members=[member_out(session, m) for m in members_of(session, account)])


def list_members(session: Session, account_id: str, *, actor: Actor) -> list[GroupMember]:
    parent = accounts.get_account(session, actor.workspace_id, account_id)
    return members_of(session, parent)


def agreement_out(session: Session, account: BillingAccount) -> gs.PricingAgreementOut:
    own = own_agreement(session, account)
    effective, source = _effective(session, account)
    return gs.PricingAgreementOut(account_id=account.id, price_plan_id=own.price_plan_id if own else None,
                                  effective_price_plan_id=effective, source=source)


# --- pricing agreements ---

def set_pricing_agreement(session: Session, account_id: str, data: gs.PricingAgreementIn, *,
                          actor: Actor) -> BillingAccount:
    """Set (or, with a null plan, clear) the account's own price plan."""
    account = accounts.get_account(session, actor.workspace_id, account_id, for_update=True)
    require_manager(actor, "set pricing agreements")
    if account.status == "terminated":
        raise Conflict(f"Account {account.number} is terminated: nothing more changes on it.",
                       code="account_terminated")
    own = own_agreement(session, account)
    before = {"price_plan_id": own.price_plan_id if own else None}
    now = clock.now()
    if data.price_plan_id:
        try:
            plan = catalog.get_price_plan(session, actor.workspace_id, data.price_plan_id)
        except NotFound as exc:
            exc.details.setdefault("field", "price_plan_id")
            raise
        if plan.currency != account.currency:
            raise InvalidInput(f"Price plan {plan.code!r} is in {plan.currency}, the account in {account.currency}.",
                               code="currency_mismatch", field="price_plan_id", expected=account.currency)
        if not plan.active:
            raise InvalidInput(f"Price plan {plan.code!r} is inactive.", code="price_plan_inactive",
                               field="price_plan_id")
        if is_corporate(account) and membership_of(session, account) is not None:
            raise Conflict(f"Account {account.number} is a corporate member of a group: it takes its parent's "
                           "pricing and cannot have its own.", code="member_pricing_not_allowed",
                           field="price_plan_id")
        if own is None:
            own = PricingAgreement(account_id=account.id, workspace_id=account.workspace_id, created_at=now)
            session.add(own)
        own.price_plan_id, own.updated_at = plan.id, now
    elif own is not None:
        session.delete(own)
    session.flush()
    audit.record(session, actor=actor, action="account.pricing_agreement", object_type="account",
                 object_id=account.id, before=before, after={"price_plan_id": data.price_plan_id or None})
    return account


# --- members ---

def _check_scope(session: Session, workspace_id: str, funding: gs.FundingScopeIn) -> tuple[list, list, list]:
    named = (funding.products, funding.product_types, funding.product_families)
    if funding.scope == "full":
        if any(named):
            raise InvalidInput("A full funding scope funds everything: name no products, types or families.",
                               code="funding_scope_codes_with_full", field="funding.scope")
        return [], [], []
    if not any(named):
        raise InvalidInput("A partial funding scope names at least one product, product type or product family.",
                           code="funding_scope_empty", field="funding.products")
    checks = ((Product, funding.products, "product", "unknown_product", "funding.products"),
              (ProductType, funding.product_types, "product type", "unknown_product_type", "funding.product_types"),
              (ProductFamily, funding.product_families, "product family", "unknown_product_family",
               "funding.product_families"))
    for model, codes, what, error, field in checks:
        for code in codes:
            if catalog_repo.by_code(session, model, workspace_id, code) is None:
                raise InvalidInput(f"Unknown {what} {code!r}.", code=error, field=field, value=code)
    return sorted(set(funding.products)), sorted(set(funding.product_types)), sorted(set(funding.product_families))


def _check_parent(session: Session, parent: BillingAccount) -> None:
    if parent.status != "active":
        raise Conflict(f"The parent account {parent.number} is {parent.status}: a group's parent must be active.",
                       code="parent_not_active")
    if membership_of(session, parent) is not None:
        raise Conflict(f"Account {parent.number} is a member of another group: it cannot be a parent.",
                       code="parent_is_member")
    if is_system_account(parent):
        raise Conflict(f"Account {parent.number} is a system account: it cannot be a group's parent.",
                       code="parent_is_system_account")


def _check_member(session: Session, parent: BillingAccount, member: BillingAccount) -> None:
    def refuse(message: str, code: str) -> Conflict:
        return Conflict(f"Account {member.number} {message}", code=code, field="member_id")

    if member.id == parent.id:
        raise refuse("is the parent itself.", "member_is_parent_account")
    if member.status != "active":
        raise refuse(f"is {member.status}: a member must be active.", "member_not_active")
    if membership_of(session, member) is not None:
        raise refuse("is already a member of a group.", "member_already_in_group")
    if is_parent(session, member):
        raise refuse("is the parent of another group.", "member_is_parent")
    if is_system_account(member):
        raise refuse("is a system account.", "member_is_system_account")
    if member.currency != parent.currency:
        raise refuse(f"is in {member.currency}, the parent in {parent.currency}: members share the parent's "
                     "currency.", "member_currency_mismatch")
    if member.customer_id == parent.customer_id:
        raise refuse("belongs to the parent's owner: a member belongs to another customer.", "member_same_owner")
    if is_corporate(member) and own_agreement(session, member) is not None:
        raise refuse("is a corporate account with its own pricing agreement: clear it first.",
                     "member_has_own_pricing")


def _locked_pair(session: Session, ws: str, first_id: str, second_id: str) -> tuple[BillingAccount, BillingAccount]:
    """Both account rows locked in id order (two concurrent changes cannot deadlock)."""
    rows = {}
    for account_id in sorted({first_id, second_id}):
        rows[account_id] = accounts.get_account(session, ws, account_id, for_update=True)
    return rows[first_id], rows[second_id]


def add_member(session: Session, parent_id: str, data: gs.MemberAdd, *, actor: Actor) -> GroupMember:
    ws = actor.workspace_id
    accounts.get_account(session, ws, parent_id)  # 404 before 403 (house order) and before reading the member
    try:
        parent, member = _locked_pair(session, ws, parent_id, data.member_id)
    except NotFound as exc:
        exc.details.setdefault("field", "member_id")
        raise
    require_manager(actor, "manage group accounts")
    _check_parent(session, parent)
    _check_member(session, parent, member)
    products, types, families = _check_scope(session, ws, data.funding)
    now = clock.now()
    row = GroupMember(id=new_id("gm"), workspace_id=ws, parent_id=parent.id, member_id=member.id,
                      funding_scope=data.funding.scope, funded_products=products, funded_product_types=types,
                      funded_product_families=families, suspended_with_parent=False, created_by=actor.user_id,
                      created_at=now, updated_at=now)
    session.add(row)
    session.flush([row])
    audit.record(session, actor=actor, action="account.member_add", object_type="account", object_id=parent.id,
                 before={"members": _member_ids(session, parent, without=member.id)},
                 after={"members": _member_ids(session, parent), "member": snapshot(row)})
    return row


def _member_ids(session: Session, parent: BillingAccount, without: str | None = None) -> list[str]:
    return [m.member_id for m in members_of(session, parent) if m.member_id != without]


def remove_member(session: Session, parent_id: str, member_id: str, *, actor: Actor) -> None:
    ws = actor.workspace_id
    parent = accounts.get_account(session, ws, parent_id, for_update=True)
    require_manager(actor, "manage group accounts")
    row = session.scalar(select(GroupMember).where(GroupMember.workspace_id == ws, GroupMember.parent_id == parent.id,
                                                   GroupMember.member_id == member_id).with_for_update())
    if row is None:
        raise NotFound("This account is not a member of this group.", code="not_found")
    before = {"members": _member_ids(session, parent), "member": snapshot(row)}
    session.delete(row)
    session.flush()
    audit.record(session, actor=actor, action="account.member_remove", object_type="account", object_id=parent.id,
                 before=before, after={"members": _member_ids(session, parent)})


# --- funded charges ---

def is_funded(session: Session, membership: GroupMember, product: Product) -> bool:
    if membership.funding_scope == "full":
        return True
    if product.code in (membership.funded_products or []):
        return True
    if product.product_type_id and membership.funded_product_types:
        kind = session.get(ProductType, product.product_type_id)
        if kind is not None and kind.code in membership.funded_product_types:
            return True
    if product.product_family_id and membership.funded_product_families:
        family = session.get(ProductFamily, product.product_family_id)
        if family is not None and family.code in membership.funded_product_families:
            return True
    return False


def bill_funded_lines(session: Session, invoice: Invoice, *, actor: Actor) -> Invoice | None:
    """Called on a draft about to be posted. For a member of a group: the lines its parent funds go to a new
    draft of the parent (returned: the caller posts it), or, when every line is funded, the invoice itself is
    billed to the parent (None returned). Anything else: nothing changes, None."""
    from creditdesk.billing import invoices  # invoices calls this: imported late (no import cycle)

    member = session.get(BillingAccount, invoice.account_id)
    membership = membership_of(session, member)
    if membership is None:
        return None
    lines = invoices.lines_of(session, invoice.id)
    funded = [line for line in lines if is_funded(session, membership, session.get(Product, line.product_id))]
    if not funded:
        return None
    parent = accounts.get_account(session, invoice.workspace_id, membership.parent_id)
    before = invoices._snapshot(session, invoice)
    if len(funded) == len(lines):
        invoice.account_id, invoice.customer_id = parent.id, parent.customer_id
        invoice.due_date = accounts.due_date(parent, invoice.issue_date)
        invoice.updated_at = clock.now()
        session.flush()
        audit.record(session, actor=actor, action="invoice.billed_to_parent", object_type="invoice",
                     object_id=invoice.id, before=before,
                     after=snapshot(invoice, member_id=member.id, funding=membership.funding_scope))
        return None
    now = clock.now()
    funded_invoice = Invoice(
        id=new_id("inv"), workspace_id=invoice.workspace_id, account_id=parent.id, customer_id=parent.customer_id,
        number=None, status="draft", currency=invoice.currency, price_plan_id=invoice.price_plan_id,
        issue_date=invoice.issue_date, due_date=accounts.due_date(parent, invoice.issue_date),
        notes=f"Charges of member account {member.number} funded by the group.", subtotal=0, tax_total=0, total=0,
        credits_value=0, amount_paid=0, amount_credited=0, amount_due=0, created_by=actor.user_id, created_at=now,
        updated_at=now)
    session.add(funded_invoice)
    session.flush([funded_invoice])
    for position, line in enumerate(funded, start=1):
        line.invoice_id, line.position, line.updated_at = funded_invoice.id, position, now
    session.flush()
    invoices._total(session, funded_invoice)
    invoices._total(session, invoice)
    session.flush()
    audit.record(session, actor=actor, action="invoice.create", object_type="invoice", object_id=funded_invoice.id,
                 after=snapshot(funded_invoice, lines=[snapshot(line) for line in funded], member_id=member.id,
                                member_invoice_id=invoice.id))
    audit.record(session, actor=actor, action="invoice.funded_lines_split", object_type="invoice",
                 object_id=invoice.id, before=before,
                 after=invoices._snapshot(session, invoice) | {"funded_invoice_id": funded_invoice.id})
    return funded_invoice


# --- lifecycle: the parent's actions apply to its members ---

def follow_parent(session: Session, parent: BillingAccount, action: str, *, actor: Actor, reason: str | None = None,
                  note: str | None = None) -> None:
    """After the parent's suspend / reactivate / terminate: the same action on its members (each audited by the
    lifecycle action itself)."""
    from creditdesk.billing import lifecycle  # lifecycle calls this: imported late (no import cycle)

    why = f"group parent {parent.number}: {action}" + (f" ({note})" if note else "")
    for row in members_of(session, parent):
        member = session.get(BillingAccount, row.member_id)
        try:
            if action == "suspend" and member.status == "active":
                lifecycle.suspend(session, member.id, reason, actor=actor, note=why)
                row.suspended_with_parent = True
            elif action == "reactivate" and member.status == "suspended" and row.suspended_with_parent:
                lifecycle.reactivate(session, member.id, actor=actor, note=why)
                row.suspended_with_parent = False
            elif action == "terminate" and member.status != "terminated":
                lifecycle.terminate(session, member.id, actor=actor, note=why)
                row.suspended_with_parent = False
        except (Conflict, InvalidInput) as exc:
            raise Conflict(f"Member account {member.number}: {exc.message}", code=exc.code, member_id=member.id,
                           **exc.details) from exc
        row.updated_at = clock.now()
    session.flush()


def list_groups(session: Session, *, actor: Actor) -> list[tuple[BillingAccount, list[tuple[GroupMember, BillingAccount]]]]:
    """Every parent account of the workspace with its members (and their funding scopes), parents by
    number: the Finance > Groups list, and GET /v1/groups."""
    rows = list(session.execute(
        select(GroupMember, BillingAccount).join(BillingAccount, BillingAccount.id == GroupMember.member_id)
        .where(GroupMember.workspace_id == actor.workspace_id).order_by(GroupMember.parent_id, BillingAccount.number)))
    parents = {a.id: a for a in session.scalars(select(BillingAccount).where(
        BillingAccount.workspace_id == actor.workspace_id,
        BillingAccount.id.in_({m.parent_id for m, _ in rows})))} if rows else {}
    out: dict[str, list] = {}
    for membership, member in rows:
        out.setdefault(membership.parent_id, []).append((membership, member))
    return [(parents[pid], members) for pid, members in sorted(out.items(), key=lambda kv: parents[kv[0]].number)]
