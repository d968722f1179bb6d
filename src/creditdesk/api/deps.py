"""What every endpoint needs: the database, the authenticated actor, and the write runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditdesk import idempotency
from creditdesk.api.problems import PROBLEM_MEDIA_TYPE, error_problem
from creditdesk.audit import Actor
from creditdesk.db import Database
from creditdesk.errors import Conflict, CreditdeskError, IdempotencyInProgress, InvalidInput, Unauthenticated
from creditdesk.parties import service as parties
from creditdesk.parties.key_usage import touch_api_key

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cdk_...`")


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_actor(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
              db: Database = Depends(get_db)) -> Actor:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("Send an API key: Authorization: Bearer <key>.", code="missing_api_key")
    with db.read() as session:
        actor = parties.authenticate_api_key(session, credentials.credentials)
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


class _Refused(Exception):
    """A domain error answered (and, under a key, stored for replays) in a transaction that commits."""

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

    def run(self, fn: Callable[[Session], Any], *, status_code: int = 200,
            redact: Callable[[Any], Any] | None = None) -> Response:
        """`redact(body)` gives what is kept for replays when the answer holds a secret shown only once."""

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
                if exc.http_status >= 500 or exc.http_status in _NOT_STORED or \
                        isinstance(exc, IdempotencyInProgress) or exc.code == "idempotency_key_taken_over":
                    raise  # nothing is kept, the claim included: a retry runs again
                problem_body = json.dumps(error_problem(exc, instance=self.path), default=str)
                if claim is not None:
                    # A refused request is answered the same way when retried with its key.
                    idempotency.complete(session, claim, status=exc.http_status, body=problem_body)
                return _Refused(exc, problem_body)
            return body

        try:
            outcome = self.db.write(transaction)
        except CreditdeskError as exc:
            return self._problem(exc, json.dumps(error_problem(exc, instance=self.path), default=str))
        except IntegrityError:
            # A uniqueness race the service's own checks could not see (two requests at once).
            conflict = Conflict("This request conflicts with a concurrent change; retry it.",
                                code="concurrent_conflict")
            return Response(json.dumps(error_problem(conflict, instance=self.path)), status_code=409,
                            media_type=PROBLEM_MEDIA_TYPE)
        if isinstance(outcome, idempotency.Replay):
            media = PROBLEM_MEDIA_TYPE if outcome.status >= 400 else "application/json"
            return Response(outcome.body, status_code=outcome.status, media_type=media,
                            headers={"Idempotent-Replayed": "true"})
        if isinstance(outcome, _Refused):
            return self._problem(outcome.error, outcome.body)
        return Response(outcome, status_code=status_code, media_type="application/json")

    @staticmethod
    def _problem(exc: CreditdeskError, body: str) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return Response(body, status_code=exc.http_status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


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
