"""Customers, offices, users, teams, API keys and the caller's workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from creditdesk.api.deps import Cursor, CustomerId, Limit, WriteContext, get_actor, read_session, write_context
from creditdesk.api.schemas import ListOf, list_of
from creditdesk.audit import Actor
from creditdesk.parties import schemas as s
from creditdesk.parties import service as parties
from creditdesk.parties.models import Customer, Office, Team, User
from creditdesk.repository import get_in_workspace

router = APIRouter()

OfficeId = Annotated[str, Path(description="The id of the office, as its `id` field gives it.")]
UserId = Annotated[str, Path(description="The id of the user, as its `id` field gives it.")]
TeamId = Annotated[str, Path(description="The id of the team, as its `id` field gives it.")]
KeyId = Annotated[str, Path(description=(
    "The id of the API key (its `id`, never the secret key). Keys you may not see answer 404."))]


# --- workspace ---

@router.get("/workspace", response_model=s.WorkspaceOut, tags=["workspace"])
def get_workspace(actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.WorkspaceOut.model_validate(parties.get_workspace(session, actor.workspace_id))


@router.patch("/workspace", response_model=s.WorkspaceOut, tags=["workspace"])
def update_workspace(body: s.WorkspaceUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.WorkspaceOut.model_validate(parties.update_workspace(db, body, actor=actor)))


# --- customers ---

@router.post("/customers", status_code=201, response_model=s.CustomerOut, tags=["customers"])
def create_customer(body: s.CustomerCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.CustomerOut.model_validate(parties.create_customer(db, body, actor=actor)),
                   status_code=201)


@router.get("/customers", response_model=ListOf[s.CustomerOut], tags=["customers"])
def list_customers(limit: int | None = Limit, cursor: str | None = Cursor,
                   q: str | None = Query(default=None, max_length=200, description=(
                       "Only customers whose name contains this text, ignoring case.")),
                   actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = parties.list_customers(session, actor=actor, limit=limit, cursor=cursor, q=q)
    return list_of(page.items, page.next_cursor, s.CustomerOut.model_validate)


@router.get("/customers/{customer_id}", response_model=s.CustomerOut, tags=["customers"])
def get_customer(customer_id: CustomerId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.CustomerOut.model_validate(get_in_workspace(session, Customer, actor.workspace_id, customer_id))


@router.patch("/customers/{customer_id}", response_model=s.CustomerOut, tags=["customers"])
def update_customer(customer_id: CustomerId, body: s.CustomerUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.CustomerOut.model_validate(
        parties.update_customer(db, customer_id, body, actor=actor)))


# --- offices ---

@router.post("/offices", status_code=201, response_model=s.OfficeOut, tags=["offices"])
def create_office(body: s.OfficeCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.OfficeOut.model_validate(parties.create_office(db, body, actor=actor)),
                   status_code=201)


@router.get("/offices", response_model=ListOf[s.OfficeOut], tags=["offices"])
def list_offices(limit: int | None = Limit, cursor: str | None = Cursor,
                 customer_id: str | None = Query(default=None, max_length=40, description=(
                     "Only the offices of this customer (its id).")),
                 q: str | None = Query(default=None, max_length=200, description=(
                     "Only offices whose name contains this text, ignoring case.")),
                 actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = parties.list_offices(session, actor=actor, limit=limit, cursor=cursor, customer_id=customer_id, q=q)
    return list_of(page.items, page.next_cursor, s.OfficeOut.model_validate)


@router.get("/offices/{office_id}", response_model=s.OfficeOut, tags=["offices"])
def get_office(office_id: OfficeId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.OfficeOut.model_validate(get_in_workspace(session, Office, actor.workspace_id, office_id))


@router.patch("/offices/{office_id}", response_model=s.OfficeOut, tags=["offices"])
def update_office(office_id: OfficeId, body: s.OfficeUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.OfficeOut.model_validate(
        parties.update_office(db, office_id, body, actor=actor)))


# --- users ---

@router.post("/users", status_code=201, response_model=s.UserOut, tags=["users"])
def create_user(body: s.UserCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: parties.user_out(db, parties.create_user(db, body, actor=actor)),
                   status_code=201)


@router.get("/users", response_model=ListOf[s.UserOut], tags=["users"])
def list_users(limit: int | None = Limit, cursor: str | None = Cursor,
               office_id: str | None = Query(default=None, max_length=40, description=(
                   "Only the users of this office (its id), as their primary or an additional office.")),
               role: s.Role | None = Query(default=None, description=(
                   "Only users with this role: `master`, `manager` or `member`.")),
               is_staff: bool | None = Query(default=None, description=(
                   "`true`: only staff users (they log in); `false`: only customer contacts; omitted: both.")),
               q: str | None = Query(default=None, max_length=200, description=(
                   "Only users whose name or email contains this text, ignoring case.")),
               actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = parties.list_users(session, actor=actor, limit=limit, cursor=cursor, office_id=office_id, role=role,
                              is_staff=is_staff, q=q)
    return list_of(page.items, page.next_cursor, lambda u: parties.user_out(session, u))


@router.get("/users/{user_id}", response_model=s.UserOut, tags=["users"])
def get_user(user_id: UserId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return parties.user_out(session, get_in_workspace(session, User, actor.workspace_id, user_id))


@router.patch("/users/{user_id}", response_model=s.UserOut, tags=["users"])
def update_user(user_id: UserId, body: s.UserUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: parties.user_out(db, parties.update_user(db, user_id, body, actor=actor)))


# --- teams ---

@router.post("/teams", status_code=201, response_model=s.TeamOut, tags=["teams"])
def create_team(body: s.TeamCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: parties.team_out(db, parties.create_team(db, body, actor=actor)),
                   status_code=201)


@router.get("/teams", response_model=ListOf[s.TeamOut], tags=["teams"])
def list_teams(limit: int | None = Limit, cursor: str | None = Cursor,
               office_id: str | None = Query(default=None, max_length=40, description=(
                   "Only the teams of this office (its id).")),
               actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = parties.list_teams(session, actor=actor, limit=limit, cursor=cursor, office_id=office_id)
    return list_of(page.items, page.next_cursor, lambda t: parties.team_out(session, t))


@router.get("/teams/{team_id}", response_model=s.TeamOut, tags=["teams"])
def get_team(team_id: TeamId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return parties.team_out(session, get_in_workspace(session, Team, actor.workspace_id, team_id))


@router.patch("/teams/{team_id}", response_model=s.TeamOut, tags=["teams"])
def update_team(team_id: TeamId, body: s.TeamUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: parties.team_out(db, parties.update_team(db, team_id, body, actor=actor)))


# --- API keys ---

def _key_created(result) -> s.ApiKeyCreated:
    key, secret = result
    return s.ApiKeyCreated.model_validate({**s.ApiKeyOut.model_validate(key).model_dump(), "key": secret})


def _without_secret(created: dict) -> dict:
    # The secret is shown once and stored only as a hash: a replay answers without it.
    return {**created, "key": None}


@router.post("/api-keys", status_code=201, response_model=s.ApiKeyCreated, tags=["api keys"],
             description="The secret `key` is in this answer only. A replay of the request with the same "
                         "Idempotency-Key answers with `key: null`: only a hash of the key is stored.")
def create_api_key(body: s.ApiKeyCreate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: _key_created(parties.create_api_key(db, body, actor=actor)), status_code=201,
                   redact=_without_secret)


@router.get("/api-keys", response_model=ListOf[s.ApiKeyOut], tags=["api keys"])
def list_api_keys(limit: int | None = Limit, cursor: str | None = Cursor,
                  actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    page = parties.list_api_keys(session, actor=actor, limit=limit, cursor=cursor)
    return list_of(page.items, page.next_cursor, s.ApiKeyOut.model_validate)


@router.get("/api-keys/{key_id}", response_model=s.ApiKeyOut, tags=["api keys"])
def get_api_key(key_id: KeyId, actor: Actor = Depends(get_actor), session: Session = Depends(read_session)):
    return s.ApiKeyOut.model_validate(parties.get_api_key(session, key_id, actor=actor))


@router.patch("/api-keys/{key_id}", response_model=s.ApiKeyOut, tags=["api keys"])
def update_api_key(key_id: KeyId, body: s.ApiKeyUpdate, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.ApiKeyOut.model_validate(parties.update_api_key(db, key_id, body, actor=actor)))


@router.delete("/api-keys/{key_id}", response_model=s.ApiKeyOut, tags=["api keys"])
def revoke_api_key(key_id: KeyId, ctx: WriteContext = Depends(write_context)):
    return ctx.run(lambda db, actor: s.ApiKeyOut.model_validate(parties.revoke_api_key(db, key_id, actor=actor)))
