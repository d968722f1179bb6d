"""What every endpoint needs: the database, the authenticated actor, and the write runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import clock, idempotency
from creditdesk.api.problems import PROBLEM_MEDIA_TYPE, error_problem
from creditdesk.audit import Actor
from creditdesk.db import Database
from creditdesk.errors import Conflict, CreditdeskError, IdempotencyInProgress, InvalidInput, Unauthenticated
from creditdesk.pagination import DEFAULT_LIMIT, MAX_LIMIT
from creditdesk.parties import service as parties
from creditdesk.parties.key_usage import touch_api_key

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cdk_...`")

# --- query and path parameters shared by many endpoints, described once (issue 17) ---

Limit = Query(default=None, ge=1, le=MAX_LIMIT, description=(
    f"How many items one page holds, from 1 to {MAX_LIMIT}; {DEFAULT_LIMIT} when omitted."))
Cursor = Query(default=None, max_length=500, description=(
    "Where the page starts: the `next_cursor` of the previous page, sent with the same filters and sort. "
    "Omit it for the first page; the last page answers `next_cursor: null`. Cursors are keyset positions "
    "signed by the server, so rows added meanwhile shift nothing; a cursor not made by this server "
    "answers 400 invalid_cursor."))
BARE_DATE = ("A bare date (`2026-01-15`) means the start of that day, UTC, as does an instant without an offset; "
             "in a URL write an offset's `+` as `%2B` (`%2B02:00`), a bare `+` reads as a space (422).")


def status_query(allowed: Sequence[str], *, what: str) -> Any:
    """The `status` filter of a list: any of `allowed`, repeated or comma-separated (`statuses` reads it)."""
    listed = ", ".join(f"`{v}`" for v in allowed[:-1]) + f" or `{allowed[-1]}`"
    return Query(default=None, description=(
        f"Only {what} in one of these statuses: {listed}. Give several by repeating the parameter "
        f"(`status={allowed[0]}&status={allowed[1]}`) or separated by commas (`status={allowed[0]},{allowed[1]}`); "
        f"omitted: every status. An unknown status answers 422 invalid_status."))


def statuses(values: list[str] | None, allowed: Sequence[str]) -> list[str] | None:
    """`status` given repeated (`?status=a&status=b`) or comma-separated (`?status=a,b`), or both."""
    if not values:
        return None
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unknown status {', '.join(unknown)}: use one or more of {', '.join(allowed)}.",
                           code="invalid_status", allowed=list(allowed))
    return wanted or None


def path_id(what: str, *, more: str = "") -> Any:
    """A path parameter naming one object of the caller's workspace."""
    return Annotated[str, Path(description=(
        f"The id of the {what}, as its `id` field gives it{more}. Objects of other workspaces are not found "
        f"(404)."))]


AccountId = path_id("account", more=" (not its number, ACC-000001)")
CustomerId = path_id("customer")
InvoiceId = path_id("invoice", more=" (not its number, INV-000001)")
PackId = path_id("pack")
ProductRef = Annotated[str, Path(description=(
    "The product's `id` or its `code`. Products of other workspaces are not found (404)."))]


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_actor(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
              db: Database = Depends(get_db)) -> Actor:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("Send an API key: Authorization: Bearer <key>.", code="missing_api_key")
    with db.read_raw() as connection:  # no Session: see rawsql.Raw
        actor = parties.authenticate_api_key(connection, credentials.credentials)
    touch_api_key(db, actor.api_key_id)  # last_used_at, at most once a minute per key, outside any write
    request.state.actor = actor
    refuse_unknown_query_parameters(request)
    return actor


_declared_query: dict[int, frozenset[str]] = {}


def refuse_unknown_query_parameters(request: Request) -> None:
    """Query parameters the endpoint does not declare are refused, as unknown body fields are: a
    misspelt filter (`?holdr_id=`) must not silently widen a list that a script then acts on."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    declared = _declared_query.get(id(route))
    if declared is None:
        declared = frozenset(_query_names(dependant))
        _declared_query[id(route)] = declared
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise InvalidInput(f"Unknown query parameter(s): {', '.join(unknown)}.", code="unknown_query_parameter",
                           unknown=unknown)


def _query_names(dependant) -> set[str]:
    names = {p.alias for p in getattr(dependant, "query_params", ())}
    for sub in getattr(dependant, "dependencies", ()):
        names |= _query_names(sub)
    return names


def read_session(db: Database = Depends(get_db)) -> Iterator[Session]:
    with db.read() as session:
        yield session


# Refusals of the caller rather than of the request: never stored under a key.
_NOT_STORED = frozenset({401, 403})


class _Refused:
    """A domain error answered (and, under a key, stored for replays) in a transaction that commits:
    returned by the transaction, not raised."""

    def __init__(self, error: CreditdeskError, body: str):
        self.error = error
        self.body = body


class WriteContext:
    """Runs one write: idempotency claim, the service call and the stored response, all-or-nothing.

    All three happen in one transaction (one commit per request). The service call runs under a
    SAVEPOINT: when it is refused (a domain error) only its effects are rolled back, and under a key
    the refusal is stored in the same transaction, so a retry gets the same answer (as Stripe does: a
    409 for missing credits or a 422 is replayed; send a new key for a new attempt).

    Keys are the caller's own (`idempotency.caller_of`). A refusal of who is asking (401, 403) is never
    stored: the claim is rolled back with everything else, so the key stays free for a request that is
    permitted (otherwise anyone who can guess a key could make it answer 403 for its owner)."""

    def __init__(self, *, db: Database, actor: Actor, key: str | None, fingerprint: str, method: str, path: str):
        self.db = db
        self.actor = actor
        self.key = key
        self.fingerprint = fingerprint
        self.method = method
        self.path = path

    def _transaction(self, fn: Callable[[Session], Any], *, status_code: int,
                     redact: Callable[[Any], Any] | None) -> Callable[[Session], Any]:
        """The write's one transaction: the key claimed, `fn` under a SAVEPOINT, the answer stored."""

        def transaction(session: Session) -> str | idempotency.Replay | _Refused:
            claim = None
            if self.key is not None:
                outcome = idempotency.claim_in(session, workspace_id=self.actor.workspace_id,
                                               caller=idempotency.caller_of(self.actor), key=self.key,
                                               fingerprint=self.fingerprint, method=self.method, path=self.path)
                if isinstance(outcome, idempotency.Replay):
                    return outcome
                claim = outcome
            savepoint = session.begin_nested()
            try:
                result = fn(session, self.actor)
                session.flush()
                # pydantic's own JSON dump is what jsonable_encoder gives for a model, at a tenth of the cost.
                encoded = result.model_dump(mode="json", by_alias=True) if isinstance(result, BaseModel) \
                    else jsonable_encoder(result)
                body = json.dumps(encoded, separators=(",", ":"))
                if claim is not None:
                    kept = json.dumps(redact(encoded), separators=(",", ":")) if redact else body
                    idempotency.complete(session, claim, status=status_code, body=kept)
                savepoint.commit()
            except CreditdeskError as exc:
                if savepoint.is_active:
                    savepoint.rollback()
                keep, problem_body = self.refused(exc)
                if not keep:
                    raise  # nothing is kept, the claim included: a retry runs again
                if claim is not None:
                    # A refused request is answered the same way when retried with its key.
                    idempotency.complete(session, claim, status=exc.http_status, body=problem_body)
                return _Refused(exc, problem_body)
            return body

        return transaction

    def run(self, fn: Callable[[Session], Any], *, status_code: int = 200,
            redact: Callable[[Any], Any] | None = None,
            batch: tuple[Callable[[Session, list], list], Any] | None = None) -> Response:
        """`redact(body)` gives what is kept for replays when the answer holds a secret shown only once.

        `batch=(plan_many, item)`: this write may be run together with others of its kind in one group
        commit. `plan_many(session, [(actor, item), ...])` does what `fn` does for each, in order,
        returning each one's result or the CreditdeskError refusing it; see `_run_together`.
        `run_async` is the same for an `async def` endpoint (the write is awaited, no worker thread)."""
        transaction = self._transaction(fn, status_code=status_code, redact=redact)
        try:
            outcome = self.db.write(transaction, batch=self._together(batch, status_code, redact))
        except (CreditdeskError, IntegrityError) as exc:
            return self._failed(exc)
        return self._answer(outcome, status_code)

    async def run_async(self, fn: Callable[[Session], Any], *, status_code: int = 200,
                        redact: Callable[[Any], Any] | None = None,
                        batch: tuple[Callable[[Session, list], list], Any] | None = None) -> Response:
        transaction = self._transaction(fn, status_code=status_code, redact=redact)
        try:
            outcome = await self.db.write_async(transaction, batch=self._together(batch, status_code, redact))
        except (CreditdeskError, IntegrityError) as exc:
            return self._failed(exc)
        return self._answer(outcome, status_code)

    def _together(self, batch, status_code: int, redact) -> tuple | None:
        if batch is None or redact is not None:
            return None
        return _batch_handler(batch[0]), (self, batch[1], status_code)

    def _failed(self, exc: Exception) -> Response:
        if isinstance(exc, CreditdeskError):
            return self._problem(exc, json.dumps(error_problem(exc, instance=self.path), default=str))
        # A uniqueness race the service's own checks could not see (two requests at once).
        conflict = Conflict("This request conflicts with a concurrent change; retry it.", code="concurrent_conflict")
        return Response(json.dumps(error_problem(conflict, instance=self.path)), status_code=409,
                        media_type=PROBLEM_MEDIA_TYPE)

    def _answer(self, outcome, status_code: int) -> Response:
        if isinstance(outcome, idempotency.Replay):
            media = PROBLEM_MEDIA_TYPE if outcome.status >= 400 else "application/json"
            return Response(outcome.body, status_code=outcome.status, media_type=media,
                            headers={"Idempotent-Replayed": "true"})
        if isinstance(outcome, _Refused):
            return self._problem(outcome.error, outcome.body)
        return Response(outcome, status_code=status_code, media_type="application/json")

    def refused(self, exc: CreditdeskError) -> tuple[bool, str]:
        """(kept under the key?, the problem body) for a domain error of this request."""
        if exc.http_status >= 500 or exc.http_status in _NOT_STORED or \
                isinstance(exc, IdempotencyInProgress) or exc.code == "idempotency_key_taken_over":
            return False, ""
        return True, json.dumps(error_problem(exc, instance=self.path), default=str)

    @staticmethod
    def _problem(exc: CreditdeskError, body: str) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return Response(body, status_code=exc.http_status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


class _NotTogether(Exception):
    """A segment the batch path does not take (a key sent twice in it, a key in flight or expired):
    its requests run one by one (Database.write)."""


_handlers: dict[Callable, Callable] = {}


def _batch_handler(plan_many: Callable[[Session, list], list]) -> Callable[[Session, list], list]:
    """One handler per plan_many (the group writer batches requests whose handler is the same object)."""
    handler = _handlers.get(plan_many)
    if handler is None:
        handler = _handlers[plan_many] = lambda session, items: _run_together(session, items, plan_many)
    return handler


def _run_together(session: Session, items: list[tuple[WriteContext, Any, int]],
                  plan_many: Callable[[Session, list], list]) -> list:
    """WriteContext.run's transaction for many requests at once, with the same answers: their keys
    read with one query (replays and reuse decided as claim_in decides them), the writes planned by
    `plan_many` together, the answers stored with one executemany. No SAVEPOINT per request: a
    refused request simply writes nothing."""
    results: list = [None] * len(items)
    by_workspace: dict[str, set[tuple[str, str]]] = {}
    for ctx, _, _ in items:
        if ctx.key is not None:
            by_workspace.setdefault(ctx.actor.workspace_id, set()).add(
                (idempotency.caller_of(ctx.actor), ctx.key))
    stored: dict[tuple[str, str, str], idempotency.Stored] = {}
    for workspace_id, keys in by_workspace.items():
        for (caller, key), row in idempotency.find_many(session, workspace_id, keys).items():
            stored[(workspace_id, caller, key)] = row
    now = clock.now()
    seen: set[tuple[str, str, str]] = set()
    for n, (ctx, _, _) in enumerate(items):
        if ctx.key is None:
            continue
        full_key = (ctx.actor.workspace_id, idempotency.caller_of(ctx.actor), ctx.key)
        if full_key in seen:
            raise _NotTogether()
        seen.add(full_key)
        row = stored.get(full_key)
        if row is None:
            continue
        if row.expires_at <= now or row.state != "done":
            raise _NotTogether()
        if row.request_hash != ctx.fingerprint:
            results[n] = idempotency.key_reused(row.method, row.path)
        else:
            results[n] = idempotency.Replay(row.response_status or 200, row.response_body or "")
    to_run = [n for n in range(len(items)) if results[n] is None]
    planned = plan_many(session, [(items[n][0].actor, items[n][1]) for n in to_run])
    answers = []
    for n, result in zip(to_run, planned, strict=True):
        ctx, _, status = items[n]
        if isinstance(result, CreditdeskError):
            keep, body = ctx.refused(result)
            if not keep:
                results[n] = result
                continue
            status, results[n] = result.http_status, _Refused(result, body)
        else:
            encoded = result.model_dump(mode="json", by_alias=True) if isinstance(result, BaseModel) \
                else jsonable_encoder(result)
            body = results[n] = json.dumps(encoded, separators=(",", ":"))
        if ctx.key is not None:
            answers.append((ctx.actor.workspace_id, idempotency.caller_of(ctx.actor), ctx.key, ctx.fingerprint,
                            ctx.method, ctx.path, status, body))
    idempotency.store_many(session, answers)
    return results


async def write_context(
    request: Request,
    actor: Actor = Depends(get_actor),
    db: Database = Depends(get_db),
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key",
        description="Optional, and your own: keys are per user (any of their API keys). The same key with "
                    "the same body replays the first answer; with another body it is refused (422); while the "
                    "first is running, 409. A 401 or 403 is never stored under a key."),
) -> WriteContext:
    body = await request.body()
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    fingerprint = idempotency.request_fingerprint(request.method, request.url.path, body)
    return WriteContext(db=db, actor=actor, key=key, fingerprint=fingerprint, method=request.method,
                        path=request.url.path)
