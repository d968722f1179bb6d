"""Exactly-once back-office forms: the API's idempotency keys, with the logged-in user as the caller.

Every form that moves credits or money renders a one-time key in a hidden field (`{{ once_field() }}`:
a fresh random key at every render of the page). Its handler does the write through `run`: the key is
claimed, the write done and its answer (where the browser goes next and what it is told) stored under
the key, all in one transaction (`idempotency.claim_in` / `complete`, as the API does). The same form
submitted again (a double click, Back and resubmit, a browser retrying after a dropped answer) finds the
stored answer and goes to the same place, told it was already done: nothing happens twice. A form
without a key (a page rendered before keys existed, or a hand-made request) is refused as stale.

A refused write stores nothing, unlike the API: the transaction, claim included, rolls back and the page
comes back with the message (and a new key). A person resubmitting a refused form has usually changed
something since (credits topped up, amount fixed), and there is no earlier effect to protect.

Forms in steps (choose, then confirm; details, then payment) carry the key of their first page to the
last (`{{ once_field(key) }}`). The earlier steps call `answered` first, so that resubmitting one of them
after the write leads to its answer rather than to a second confirmation page.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from creditdesk import idempotency
from creditdesk.errors import Conflict, IdempotencyKeyReused, InvalidInput
from creditdesk.web import core
from creditdesk.web.core import WebUser, db_of, redirect

FIELD = "idempotency_key"
ALREADY_DONE = "Already done (this form was submitted twice)"
# Form fields that say nothing about what is asked for.
_NOT_FINGERPRINTED = frozenset({"csrf_token", FIELD})


class StaleForm(InvalidInput):
    code = "form_key_missing"


class FormAlreadyUsed(Conflict):
    code = "form_already_used"


def new_key() -> str:
    return secrets.token_urlsafe(24)


def field(key: str | None = None) -> Markup:
    """The hidden one-time key of a form: a new one, or the key carried from the step before."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(key or new_key())}">')


# Templates render the key with {{ once_field() }}, like {{ csrf() }}.
core._env.globals["once_field"] = field


@dataclass
class Done:
    """What a form's write answers: the page the browser is sent to and the message it shows there.
    Both (and `links`) are stored under the key, so a repeat goes to the same place. `first` is the first answer
    when it is a page of its own (an import report) rather than that redirect; it is not stored."""

    url: str
    flash: str | None = None
    level: str = "success"
    first: Callable[[], Response] | None = None
    links: list[tuple[str, str]] | None = None  # [(label, local path)] shown after the flash (core.redirect)


def key_of(form: FormData) -> str:
    key = form.get(FIELD)
    if not isinstance(key, str) or not key.strip():
        raise StaleForm("This form is out of date (it has no one-time key). Nothing was done: reload the page "
                        "and submit it again.")
    if len(key) > idempotency.MAX_KEY_LENGTH or not key.isprintable():
        raise StaleForm("This form's one-time key is not valid. Nothing was done: reload the page and submit it "
                        "again.")
    return key


def fingerprint(request: Request, form: FormData) -> str:
    """What the form asks for: its path and every field but the CSRF token and the key (an uploaded file
    by its name and content)."""
    pairs = []
    for name, value in form.multi_items():
        if name in _NOT_FINGERPRINTED:
            continue
        if isinstance(value, UploadFile):
            content = value.file.read()
            value.file.seek(0)
            value = f"file {value.filename} sha256 {hashlib.sha256(content).hexdigest()}"
        pairs.append([name, str(value)])
    pairs.sort()
    return idempotency.request_fingerprint("POST", request.url.path, json.dumps(pairs).encode())


def run(request: Request, user: WebUser, form: FormData, action: Callable[[Session], Done]) -> Response:
    """Do `action(session)` once for this form's key. Domain errors raised by the action (or a stale
    form) come out as they are, with nothing written, for the handler to show on its form."""
    key = key_of(form)
    request_hash = fingerprint(request, form)
    caller = idempotency.caller_of(user.actor)
    path = request.url.path

    def transaction(session: Session) -> Done | idempotency.Replay:
        claimed = idempotency.claim_in(session, workspace_id=user.workspace_id, caller=caller, key=key,
                                       fingerprint=request_hash, method="POST", path=path)
        if isinstance(claimed, idempotency.Replay):
            return claimed
        done = action(session)
        idempotency.complete(session, claimed, status=303, body=json.dumps(
            {"url": done.url, "flash": done.flash, "level": done.level, "links": done.links or []}))
        return done

    try:
        outcome = db_of(request).write(transaction)
    except IdempotencyKeyReused:
        # Back, change a field, submit again: the first submission was done; this one is another request.
        raise FormAlreadyUsed("This form was already submitted, with other values, and that was done. Nothing "
                              "more was done now: open the form again to do something else.") from None
    if isinstance(outcome, idempotency.Replay):
        return _replayed(request, outcome)
    if outcome.first is not None:
        return outcome.first()
    return redirect(request, outcome.url, flash=outcome.flash, level=outcome.level, links=outcome.links)


def answered(request: Request, user: WebUser, form: FormData) -> Response | None:
    """For an earlier step of a form in steps: the stored answer if its last step was already done under
    this key (refused as stale when the form has no key)."""
    key = key_of(form)
    with db_of(request).read() as session:
        replay = idempotency.stored_answer(session, workspace_id=user.workspace_id,
                                           caller=idempotency.caller_of(user.actor), key=key)
    return _replayed(request, replay) if replay is not None else None


def _replayed(request: Request, replay: idempotency.Replay) -> Response:
    stored = json.loads(replay.body)
    text = f"{ALREADY_DONE}: {stored['flash']}" if stored.get("flash") else f"{ALREADY_DONE}."
    return redirect(request, stored["url"], flash=text, level=stored.get("level") or "success",
                    links=stored.get("links"))
