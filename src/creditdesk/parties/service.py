"""Business rules for workspaces, customers, offices, users, teams and API keys.

Every function takes the session first and a keyword-only `actor`, writes its audit row in the same
transaction and never commits.
"""

from __future__ import annotations

import hashlib
import secrets

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, rawsql
from creditdesk.audit import Actor, snapshot
from creditdesk.errors import InvalidInput, NotPermitted, Unauthenticated
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate
from creditdesk.parties import schemas
from creditdesk.parties.models import (
    PERMISSIONS,
    ApiKey,
    Customer,
    Office,
    Team,
    TeamMember,
    User,
    UserOffice,
    Workspace,
)
from creditdesk.parties.passwords import hash_password, verify_password
from creditdesk.repository import get_in_workspace

API_KEY_PREFIX = "cdk_"
_EMAIL = TypeAdapter(EmailStr)
DEFAULT_WORKSPACE_SETTINGS = {"sms_credit_mode": "individual"}


# --- permission checks -------------------------------------------------------------------------

def require_manager(actor: Actor, what: str) -> None:
    if not (actor.is_master or actor.role == "manager"):
        raise NotPermitted(f"Only master or manager users may {what}.")


def require_master(actor: Actor, what: str) -> None:
    if not actor.is_master:
        raise NotPermitted(f"Only master users may {what}.")


def require_user_manager(actor: Actor) -> None:
    """Who may create users or change other people at all (what they may change is _check_user_change)."""
    if not (actor.is_master or (actor.role == "manager" and actor.has("manage_users"))):
        raise NotPermitted("Only master users, or managers with the manage_users permission, may manage users.")


def actor_for_user(session: Session, user: User, *, kind: str = "user", api_key_id: str | None = None) -> Actor:
    offices = session.scalars(select(UserOffice.office_id).where(UserOffice.user_id == user.id))
    return _actor(user.workspace_id, user.id, user.role, user.permissions, user.primary_office_id, offices,
                  kind=kind, api_key_id=api_key_id)


def _actor(workspace_id: str, user_id: str, role: str, permissions, primary_office_id: str | None, office_ids,
           *, kind: str, api_key_id: str | None) -> Actor:
    """A user's actor: their offices are their memberships and their primary office."""
    offices = set(office_ids)
    if primary_office_id:
        offices.add(primary_office_id)
    return Actor(workspace_id=workspace_id, user_id=user_id, role=role, permissions=frozenset(permissions or ()),
                 kind=kind, api_key_id=api_key_id, office_ids=frozenset(offices))


# --- workspaces ----------------------------------------------------------------------------------

def create_workspace(session: Session, *, name: str, master_name: str, master_email: str,
                     master_password: str | None = None, time_zone: str = "UTC") -> tuple[Workspace, User, ApiKey, str]:
    """A new tenant with its first master user and an API key acting as that user (shown once)."""
    from creditdesk import timezones

    time_zone = timezones.check_name(time_zone)
    # The CLI calls this directly, without the API's request schemas: check what they would have checked.
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("A workspace needs a name of 1 to 200 characters.", code="invalid_name")
    try:
        master_email = _EMAIL.validate_python(master_email.strip())
    except ValidationError:
        raise InvalidInput(f"{master_email!r} is not an email address; the master user logs in with it.",
                           code="invalid_email") from None
    now = clock.now()
    ws = Workspace(id=new_id("ws"), name=name, settings=dict(DEFAULT_WORKSPACE_SETTINGS), time_zone=time_zone,
                   created_at=now, updated_at=now)
    session.add(ws)
    session.flush()
    master = User(id=new_id("usr"), workspace_id=ws.id, name=master_name, email=master_email.lower(),
                  is_staff=True, role="master", permissions=[], is_active=True,
                  password_hash=hash_password(master_password) if master_password else None,
                  created_at=now, updated_at=now)
    session.add(master)
    session.flush()
    actor = Actor(workspace_id=ws.id, user_id=master.id, role="master", kind="system")
    audit.record(session, actor=actor, action="workspace.create", object_type="workspace", object_id=ws.id,
                 after=snapshot(ws))
    audit.record(session, actor=actor, action="user.create", object_type="user", object_id=master.id,
                 after=snapshot(master))
    key, secret = _new_api_key(session, workspace_id=ws.id, user_id=master.id, name="First key")
    audit.record(session, actor=actor, action="api_key.create", object_type="api_key", object_id=key.id,
                 after=snapshot(key))
    return ws, master, key, secret


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    return session.get(Workspace, workspace_id)


def update_workspace(session: Session, data: schemas.WorkspaceUpdate, *, actor: Actor) -> Workspace:
    require_master(actor, "change workspace settings")
    ws = session.get(Workspace, actor.workspace_id)
    before = snapshot(ws)
    if data.name is not None:
        ws.name = data.name
    if data.time_zone is not None:
        from creditdesk import timezones

        ws.time_zone = timezones.check_name(data.time_zone)
    ws.updated_at = clock.now()
    audit.record(session, actor=actor, action="workspace.update", object_type="workspace", object_id=ws.id,
                 before=before, after=snapshot(ws))
    return ws


def count_workspaces(session: Session) -> int:
    return len(session.scalars(select(Workspace.id).limit(1)).all())


# --- customers -----------------------------------------------------------------------------------

def create_customer(session: Session, data: schemas.CustomerCreate, *, actor: Actor) -> Customer:
    require_manager(actor, "create customers")
    now = clock.now()
    customer = Customer(id=new_id("cus"), workspace_id=actor.workspace_id, name=data.name,
                        email=data.email, external_ref=data.external_ref, notes=data.notes,
                        kyc_profile=data.kyc_profile or None,
                        language=data.language or None, created_at=now, updated_at=now)
    session.add(customer)
    session.flush()
    audit.record(session, actor=actor, action="customer.create", object_type="customer",
                 object_id=customer.id, after=snapshot(customer))
    return customer


def update_customer(session: Session, customer_id: str, data: schemas.CustomerUpdate, *, actor: Actor) -> Customer:
    customer = get_in_workspace(session, Customer, actor.workspace_id, customer_id, for_update=True)
    require_manager(actor, "change customers")
    before = snapshot(customer)
    _apply(customer, data)
    customer.updated_at = clock.now()
    audit.record(session, actor=actor, action="customer.update", object_type="customer",
                 object_id=customer.id, before=before, after=snapshot(customer))
    return customer


def list_customers(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                   q: str | None = None) -> Page[Customer]:
    stmt = select(Customer).where(Customer.workspace_id == actor.workspace_id)
    if q:
        stmt = stmt.where(Customer.name.ilike(f"%{q}%"))
    return paginate(session, stmt, id_column=Customer.id, limit=limit, cursor=cursor)


# --- offices -------------------------------------------------------------------------------------

def create_office(session: Session, data: schemas.OfficeCreate, *, actor: Actor) -> Office:
    require_manager(actor, "create offices")
    if data.customer_id:
        get_in_workspace(session, Customer, actor.workspace_id, data.customer_id)
    now = clock.now()
    office = Office(id=new_id("off"), workspace_id=actor.workspace_id, customer_id=data.customer_id,
                    name=data.name, email=data.email, created_at=now, updated_at=now)
    session.add(office)
    session.flush()
    audit.record(session, actor=actor, action="office.create", object_type="office", object_id=office.id,
                 after=snapshot(office))
    return office


def update_office(session: Session, office_id: str, data: schemas.OfficeUpdate, *, actor: Actor) -> Office:
    office = get_in_workspace(session, Office, actor.workspace_id, office_id, for_update=True)
    require_manager(actor, "change offices")
    before = snapshot(office)
    _apply(office, data)
    office.updated_at = clock.now()
    audit.record(session, actor=actor, action="office.update", object_type="office", object_id=office.id,
                 before=before, after=snapshot(office))
    return office


def list_offices(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
                 customer_id: str | None = None, q: str | None = None) -> Page[Office]:
    stmt = select(Office).where(Office.workspace_id == actor.workspace_id)
    if customer_id:
        stmt = stmt.where(Office.customer_id == customer_id)
    if q:
        stmt = stmt.where(Office.name.ilike(f"%{q}%"))
    return paginate(session, stmt, id_column=Office.id, limit=limit, cursor=cursor)


# --- users ---------------------------------------------------------------------------------------

def _check_user_change(actor: Actor, *, target: User | None, new_role: str, permissions: list[str]) -> None:
    """Who may create a user (target None) or change one.

    Masters may change anyone, other masters included. Anyone else needs the manager role and
    manage_users, and then acts only on users who hold nothing the actor does not: never a master, never
    another manager (peers are managed by masters: a manager taking over a peer's login would act under
    the peer's name and on the peer's own credits), never someone holding a permission the actor lacks;
    and grants only roles and permissions the actor holds. Nobody changes their own role."""
    if target is not None and target.id == actor.user_id and new_role != target.role:
        # Masters included: a master who demoted themselves could leave the workspace without one.
        raise NotPermitted("Users may not change their own role.")
    if actor.is_master:
        return
    require_user_manager(actor)
    if new_role == "master" or (target is not None and target.role == "master"):
        raise NotPermitted("Only master users may create or change master users.")
    if target is not None and target.id != actor.user_id:
        if target.role != "member":
            raise NotPermitted(f"{target.name} is a {target.role}: only master users may change other managers.")
        held = set(target.permissions or []) - set(actor.permissions)
        if held:
            raise NotPermitted(f"{target.name} holds permissions you do not hold ({', '.join(sorted(held))}): "
                               "only a master user may change them.")
    beyond = set(permissions) - set(actor.permissions)
    if beyond:
        raise NotPermitted(f"You cannot grant permissions you do not hold: {', '.join(sorted(beyond))}.")


def _office_names(session: Session, workspace_id: str, ids: set[str]) -> str:
    names = session.scalars(select(Office.name).where(Office.workspace_id == workspace_id, Office.id.in_(ids))
                            .order_by(Office.name)).all()
    return ", ".join(names) or "no office"


def _check_office_reach(session: Session, actor: Actor, *, target: User | None, offices_before: set[str],
                        offices_after: set[str]) -> None:
    """A manager manages users within their own offices (primary and additional) only: a user placed in
    offices must be in one of them, and every office added or removed must be one of them. Users in no office
    yet (just created, or contacts not placed) are reachable by every user manager, so that whoever creates a
    user can place them. Masters reach every office; one's own offices are ruled by _reach_changes."""
    if actor.is_master or (target is not None and target.id == actor.user_id):
        return
    mine = set(actor.office_ids)
    if target is not None and offices_before and not offices_before & mine:
        raise NotPermitted(f"{target.name} is not in any of your offices: only a master user, or a manager of one "
                           "of their offices, may change them.", code="user_outside_your_offices")
    outside = (offices_before ^ offices_after) - mine
    if outside:
        for office_id in sorted(outside):  # another workspace's office is not found, never named
            get_in_workspace(session, Office, actor.workspace_id, office_id)
        raise NotPermitted("You can only add or remove your own offices, not "
                           f"{_office_names(session, actor.workspace_id, outside)}.",
                           code="office_outside_your_offices")


def _require_current_password(user: User, current_password: str | None) -> None:
    """Changing one's own password or email (the login) needs the current password, whatever the channel:
    a stolen session or API key must not turn into the account itself."""
    if not user.password_hash:
        raise NotPermitted("You have no password, so you cannot change your own password or email: ask a "
                           "master user (or a manager with manage_users) to do it.", code="no_current_password")
    if not current_password:
        raise InvalidInput("Give your current password (current_password) to change your own password or email.",
                           code="current_password_required", field="current_password")
    if not verify_password(user.password_hash, current_password):
        raise NotPermitted("The current password is not right.", code="current_password_wrong")


def _office_ids_of(session: Session, workspace_id: str, ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(ids))
    for office_id in unique:
        get_in_workspace(session, Office, workspace_id, office_id)
    return unique


def create_user(session: Session, data: schemas.UserCreate, *, actor: Actor) -> User:
    _check_user_change(actor, target=None, new_role=data.role, permissions=data.permissions)
    if data.primary_office_id:
        get_in_workspace(session, Office, actor.workspace_id, data.primary_office_id)
    additional = _office_ids_of(session, actor.workspace_id, data.additional_office_ids)
    _check_office_reach(session, actor, target=None, offices_before=set(),
                        offices_after=set(additional) | ({data.primary_office_id} - {None}))
    if data.is_staff and not data.email:
        raise InvalidInput("Staff users log in with their email; give one.", code="email_required")
    if data.password and not data.is_staff:
        raise InvalidInput("Only staff users log in; contacts have no password.", code="contact_has_no_login")
    email = data.email.lower() if data.email else None
    if email and session.scalar(select(User.id).where(User.workspace_id == actor.workspace_id, User.email == email)):
        raise InvalidInput(f"A user with email {email} already exists in this workspace.", code="email_taken")
    now = clock.now()
    user = User(id=new_id("usr"), workspace_id=actor.workspace_id, name=data.name, email=email,
                is_staff=data.is_staff, role=data.role, permissions=sorted(set(data.permissions)),
                is_active=True, primary_office_id=data.primary_office_id,
                password_hash=hash_password(data.password) if data.password else None,
                created_at=now, updated_at=now)
    session.add(user)
    session.flush()
    for office_id in additional:
        session.add(UserOffice(user_id=user.id, office_id=office_id, workspace_id=actor.workspace_id))
    session.flush()
    audit.record(session, actor=actor, action="user.create", object_type="user", object_id=user.id,
                 after=user_snapshot(session, user))
    return user


def _session_identity(user: User) -> tuple:
    """What a back-office session was granted on: when any of it changes, every session of the user ends
    (see User.session_version)."""
    return user.email, user.role, sorted(user.permissions or []), user.is_active, user.password_hash


# What users may change on themselves without manage_users (password and email need the current password).
_SELF_SERVICE = {"name", "email", "password", "current_password"}
# What decides a user's reach: never changed by that user unless a master.
_REACH = {"primary_office_id", "additional_office_ids", "permissions", "is_active", "role"}


def _reach_changes(session: Session, user: User, data: schemas.UserUpdate) -> set[str]:
    """The fields of `data` that would change what the user reaches (sending an unchanged value is fine)."""
    fields = data.model_fields_set & _REACH
    changed = set()
    if "primary_office_id" in fields and data.primary_office_id != user.primary_office_id:
        changed.add("primary_office_id")
    if "additional_office_ids" in fields and data.additional_office_ids is not None and \
            set(data.additional_office_ids) != set(additional_office_ids(session, user.id)):
        changed.add("additional_office_ids")
    if "permissions" in fields and data.permissions is not None and \
            set(data.permissions) != set(user.permissions or []):
        changed.add("permissions")
    if "is_active" in fields and data.is_active is not None and data.is_active != user.is_active:
        changed.add("is_active")
    if "role" in fields and data.role and data.role != user.role:
        changed.add("role")
    return changed


def update_user(session: Session, user_id: str, data: schemas.UserUpdate, *, actor: Actor) -> User:
    user = get_in_workspace(session, User, actor.workspace_id, user_id, for_update=True)
    fields = data.model_fields_set
    new_role = data.role if "role" in fields and data.role else user.role
    new_perms = data.permissions if "permissions" in fields and data.permissions is not None else []
    is_self = user.id == actor.user_id
    if fields - _SELF_SERVICE or not is_self:
        _check_user_change(actor, target=user, new_role=new_role, permissions=new_perms)
        current_additional = set(additional_office_ids(session, user.id))
        offices_before = current_additional | ({user.primary_office_id} - {None})
        new_primary = data.primary_office_id if "primary_office_id" in fields else user.primary_office_id
        new_additional = (set(data.additional_office_ids) if "additional_office_ids" in fields
                          and data.additional_office_ids is not None else current_additional)
        _check_office_reach(session, actor, target=user, offices_before=offices_before,
                            offices_after=new_additional | ({new_primary} - {None}))
    if is_self and not actor.is_master and _reach_changes(session, user, data):
        # Offices and permissions decide whose credits and users one manages (an office SMS manager adding
        # an office to herself would reach its users): only a master widens or narrows someone's reach.
        raise NotPermitted("You cannot change your own offices, permissions or access: ask a master user.",
                           code="cannot_change_own_reach")
    new_email = data.email.lower() if "email" in fields and data.email else None
    if is_self and (("password" in fields and data.password) or ("email" in fields and new_email != user.email)):
        _require_current_password(user, data.current_password)
    before = user_snapshot(session, user)
    identity = _session_identity(user)
    if "name" in fields and data.name:
        user.name = data.name
    if "email" in fields:
        email = new_email
        if email and session.scalar(select(User.id).where(User.workspace_id == actor.workspace_id,
                                                          User.email == email, User.id != user.id)):
            raise InvalidInput(f"A user with email {email} already exists in this workspace.", code="email_taken")
        if user.is_staff and not email:
            raise InvalidInput("Staff users log in with their email; it cannot be removed.", code="email_required")
        user.email = email
    if "role" in fields and data.role:
        user.role = data.role
    if "permissions" in fields and data.permissions is not None:
        user.permissions = sorted(set(data.permissions))
    if "is_active" in fields and data.is_active is not None:
        if user.id == actor.user_id and not data.is_active:
            raise InvalidInput("You cannot deactivate yourself.", code="cannot_deactivate_self")
        user.is_active = data.is_active
    if "primary_office_id" in fields:
        if data.primary_office_id:
            get_in_workspace(session, Office, actor.workspace_id, data.primary_office_id)
        user.primary_office_id = data.primary_office_id
    if "additional_office_ids" in fields and data.additional_office_ids is not None:
        ids = _office_ids_of(session, actor.workspace_id, data.additional_office_ids)
        session.execute(delete(UserOffice).where(UserOffice.user_id == user.id))
        for office_id in ids:
            session.add(UserOffice(user_id=user.id, office_id=office_id, workspace_id=actor.workspace_id))
    if "password" in fields and data.password:
        if not user.is_staff:
            raise InvalidInput("Only staff users log in; contacts have no password.", code="contact_has_no_login")
        user.password_hash = hash_password(data.password)
    if _session_identity(user) != identity:
        user.session_version = (user.session_version or 0) + 1
    user.updated_at = clock.now()
    session.flush()
    audit.record(session, actor=actor, action="user.update", object_type="user", object_id=user.id,
                 before=before, after=user_snapshot(session, user))
    return user


def end_sessions(session: Session, *, actor: Actor) -> None:
    """Log the acting user out of every back-office session (logout is "log out everywhere": sessions are
    signed cookies, and a copied cookie must stop working too)."""
    user = get_in_workspace(session, User, actor.workspace_id, actor.user_id or "", for_update=True)
    user.session_version = (user.session_version or 0) + 1
    audit.record(session, actor=actor, action="user.logout", object_type="user", object_id=user.id)


def store_rehashed_password(session: Session, user_id: str, *, old_hash: str, new_hash: str) -> bool:
    """After a successful login, replace a hash made with older argon2 parameters by one made with
    today's (same password). Skipped when the password changed in between. Not a change of the user's
    access: the session version stays (other open sessions still end once, as their password fingerprint
    no longer matches), and the audit log records only that it happened."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None or user.password_hash != old_hash:
        return False
    user.password_hash = new_hash
    session.flush()
    audit.record(session, actor=Actor(workspace_id=user.workspace_id, user_id=user.id, role=user.role),
                 action="user.password_rehash", object_type="user", object_id=user.id)
    return True


def additional_office_ids(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(UserOffice.office_id).where(UserOffice.user_id == user_id)
                                .order_by(UserOffice.office_id)))


def team_ids_of(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)
                                .order_by(TeamMember.team_id)))


def user_snapshot(session: Session, user: User) -> dict:
    return snapshot(user, additional_office_ids=additional_office_ids(session, user.id))


def effective_permissions(user: User) -> list[str]:
    """The same rule as Actor.has: a master holds every permission."""
    if user.role == "master":
        return list(PERMISSIONS)
    return [p for p in PERMISSIONS if p in (user.permissions or [])]


def user_out(session: Session, user: User) -> schemas.UserOut:
    out = schemas.UserOut.model_validate(user)
    out.effective_permissions = effective_permissions(user)
    out.additional_office_ids = additional_office_ids(session, user.id)
    out.team_ids = team_ids_of(session, user.id)
    return out


def list_users(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               office_id: str | None = None, role: str | None = None, is_staff: bool | None = None,
               q: str | None = None) -> Page[User]:
    stmt = select(User).where(User.workspace_id == actor.workspace_id)
    if office_id:
        stmt = stmt.where(or_(User.primary_office_id == office_id,
                              User.id.in_(select(UserOffice.user_id).where(UserOffice.office_id == office_id))))
    if role:
        stmt = stmt.where(User.role == role)
    if is_staff is not None:
        stmt = stmt.where(User.is_staff == is_staff)
    if q:
        stmt = stmt.where(or_(User.name.ilike(f"%{q}%"), User.email.ilike(f"%{q}%")))
    return paginate(session, stmt, id_column=User.id, limit=limit, cursor=cursor)


def users_of_office(session: Session, workspace_id: str, office_id: str) -> list[User]:
    return list(session.scalars(
        select(User).where(User.workspace_id == workspace_id,
                           or_(User.primary_office_id == office_id,
                               User.id.in_(select(UserOffice.user_id).where(UserOffice.office_id == office_id))))
        .order_by(User.name, User.id)))


# --- teams ---------------------------------------------------------------------------------------

def _set_team_members(session: Session, team: Team, member_ids: list[str]) -> None:
    unique = list(dict.fromkeys(member_ids))
    for user_id in unique:
        get_in_workspace(session, User, team.workspace_id, user_id)
    session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for user_id in unique:
        session.add(TeamMember(team_id=team.id, user_id=user_id, workspace_id=team.workspace_id))
    session.flush()


def team_member_ids(session: Session, team_id: str) -> list[str]:
    return list(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)
                                .order_by(TeamMember.user_id)))


def team_out(session: Session, team: Team) -> schemas.TeamOut:
    out = schemas.TeamOut.model_validate(team)
    out.member_ids = team_member_ids(session, team.id)
    return out


def create_team(session: Session, data: schemas.TeamCreate, *, actor: Actor) -> Team:
    require_manager(actor, "create teams")
    if data.office_id:
        get_in_workspace(session, Office, actor.workspace_id, data.office_id)
    now = clock.now()
    team = Team(id=new_id("team"), workspace_id=actor.workspace_id, name=data.name, office_id=data.office_id,
                created_at=now, updated_at=now)
    session.add(team)
    session.flush()
    _set_team_members(session, team, data.member_ids)
    audit.record(session, actor=actor, action="team.create", object_type="team", object_id=team.id,
                 after=snapshot(team, member_ids=team_member_ids(session, team.id)))
    return team


def update_team(session: Session, team_id: str, data: schemas.TeamUpdate, *, actor: Actor) -> Team:
    team = get_in_workspace(session, Team, actor.workspace_id, team_id, for_update=True)
    require_manager(actor, "change teams")
    before = snapshot(team, member_ids=team_member_ids(session, team.id))
    fields = data.model_fields_set
    if "name" in fields and data.name:
        team.name = data.name
    if "office_id" in fields:
        if data.office_id:
            get_in_workspace(session, Office, actor.workspace_id, data.office_id)
        team.office_id = data.office_id
    if "member_ids" in fields and data.member_ids is not None:
        _set_team_members(session, team, data.member_ids)
    team.updated_at = clock.now()
    audit.record(session, actor=actor, action="team.update", object_type="team", object_id=team.id,
                 before=before, after=snapshot(team, member_ids=team_member_ids(session, team.id)))
    return team


def list_teams(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               office_id: str | None = None) -> Page[Team]:
    stmt = select(Team).where(Team.workspace_id == actor.workspace_id)
    if office_id:
        stmt = stmt.where(Team.office_id == office_id)
    return paginate(session, stmt, id_column=Team.id, limit=limit, cursor=cursor)


def team_mate_ids(session: Session, user_id: str) -> set[str]:
    """Users who share at least one team with this user (the user included)."""
    teams = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    return set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id.in_(teams)))) | {user_id}


# --- API keys ------------------------------------------------------------------------------------

def _hash_key(secret: str) -> str:
    # API keys carry 256 random bits, so a fast hash is enough; passwords use argon2.
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_api_key(session: Session, *, workspace_id: str, user_id: str, name: str) -> tuple[ApiKey, str]:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), workspace_id=workspace_id, user_id=user_id, name=name,
                 prefix=secret[:12], key_hash=_hash_key(secret), created_at=clock.now())
    session.add(key)
    session.flush()
    return key, secret


def create_api_key(session: Session, data: schemas.ApiKeyCreate, *, actor: Actor) -> tuple[ApiKey, str]:
    user_id = data.user_id or actor.user_id
    if user_id is None:
        raise InvalidInput("Say which user the key acts as (user_id).", code="user_required")
    user = get_in_workspace(session, User, actor.workspace_id, user_id)
    if user.id != actor.user_id and not actor.is_master:
        raise NotPermitted("Only master users may create API keys acting as someone else.")
    if not user.is_staff or not user.is_active:
        raise InvalidInput("API keys act as an active staff user.", code="user_not_staff")
    key, secret = _new_api_key(session, workspace_id=actor.workspace_id, user_id=user.id, name=data.name)
    audit.record(session, actor=actor, action="api_key.create", object_type="api_key", object_id=key.id,
                 after=snapshot(key))
    return key, secret


def _owned_key(session: Session, key_id: str, actor: Actor) -> ApiKey:
    key = get_in_workspace(session, ApiKey, actor.workspace_id, key_id, label="API key", for_update=True)
    if not api_key_visible(actor, key.user_id):
        # As in get_api_key: other users' keys are not even admitted to exist (403 would confirm the id).
        get_in_workspace(session, ApiKey, "", key_id, label="API key")
    return key


def update_api_key(session: Session, key_id: str, data: schemas.ApiKeyUpdate, *, actor: Actor) -> ApiKey:
    key = _owned_key(session, key_id, actor)
    before = snapshot(key)
    key.name = data.name
    audit.record(session, actor=actor, action="api_key.update", object_type="api_key", object_id=key.id,
                 before=before, after=snapshot(key))
    return key


def revoke_api_key(session: Session, key_id: str, *, actor: Actor) -> ApiKey:
    key = _owned_key(session, key_id, actor)
    if key.revoked_at is None:
        before = snapshot(key)
        key.revoked_at = clock.now()
        audit.record(session, actor=actor, action="api_key.revoke", object_type="api_key", object_id=key.id,
                     before=before, after=snapshot(key))
    return key


def list_api_keys(session: Session, *, actor: Actor, limit: int | None = None,
                  cursor: str | None = None) -> Page[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.workspace_id == actor.workspace_id)
    if not api_key_visible(actor, None):
        stmt = stmt.where(ApiKey.user_id == actor.user_id)
    return paginate(session, stmt, id_column=ApiKey.id, limit=limit, cursor=cursor)


def get_api_key(session: Session, key_id: str, *, actor: Actor) -> ApiKey:
    key = get_in_workspace(session, ApiKey, actor.workspace_id, key_id, label="API key")
    if not api_key_visible(actor, key.user_id):
        # Other users' keys are not even admitted to exist.
        get_in_workspace(session, ApiKey, "", key_id, label="API key")
    return key


# Authentication runs on every API request: two statements of SQL text rather than three ORM loads
# (see creditdesk.rawsql).
_API_KEY_SQL = (
    "SELECT k.id, k.revoked_at, u.id, u.workspace_id, u.role, u.permissions, u.is_active, u.primary_office_id "
    "FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.key_hash = :key_hash")
_USER_OFFICES_SQL = "SELECT office_id FROM user_offices WHERE user_id = :user_id"


def authenticate_api_key(session: Session | rawsql.Raw, secret: str) -> Actor:
    """The actor an API key acts as. Unknown, revoked, or of a deactivated user: unauthenticated."""
    if not secret.startswith(API_KEY_PREFIX):
        raise Unauthenticated("The API key is not valid.", code="invalid_api_key")
    found = rawsql.rows(session, _API_KEY_SQL, {"key_hash": _hash_key(secret)},
                        (None, None, None, None, None, User.__table__.c.permissions, User.__table__.c.is_active))
    if not found:
        raise Unauthenticated("The API key is not valid.", code="invalid_api_key")
    key_id, revoked_at, user_id, workspace_id, role, permissions, is_active, primary_office_id = found[0]
    if revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.", code="api_key_revoked")
    if user_id is None or not is_active:
        raise Unauthenticated("The user this API key acts as is deactivated.", code="api_key_user_inactive")
    offices = (office_id for (office_id,) in rawsql.rows(session, _USER_OFFICES_SQL, {"user_id": user_id}))
    return _actor(workspace_id, user_id, role, permissions, primary_office_id, offices, kind="api_key",
                  api_key_id=key_id)


def _apply(obj, data) -> None:
    columns = obj.__table__.columns
    for field in data.model_fields_set:
        value = getattr(data, field)
        if value is None and not columns[field].nullable:
            raise InvalidInput(f"{field} cannot be null.", code="field_not_nullable", field=field)
        setattr(obj, field, value)


# --- API keys: who sees which, and when each was last used -----------------------------------------

def api_key_visible(actor: Actor, owner_user_id: str | None) -> bool:
    """Master users see every API key; everyone else only the keys acting as themselves. One rule for
    GET /v1/api-keys and the audit log (`owner_user_id` None: may the actor see every key?)."""
    return actor.is_master or (owner_user_id is not None and owner_user_id == actor.user_id)
