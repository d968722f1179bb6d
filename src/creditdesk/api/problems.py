"""RFC 9457 problem+json: the one place errors become HTTP responses."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditdesk.errors import CreditdeskError

log = logging.getLogger("creditdesk.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "not_permitted", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
}


def problem(status: int, code: str, title: str, detail: str, *, instance: str | None = None, **extra) -> dict:
    body = {"type": f"urn:creditdesk:problem:{code}", "title": title, "status": status, "detail": detail,
            "code": code}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def error_problem(exc: CreditdeskError, *, instance: str | None = None) -> dict:
    return problem(exc.http_status, exc.code, exc.title, exc.message, instance=instance,
                   **{k: v for k, v in exc.details.items() if k not in ("type", "status", "code", "title")})


def problem_response(body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, default=str), status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE,
                    headers=headers)


# The shape of every error answer, as documented in /openapi.json.
PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `code` is stable; some problems add fields (e.g. `available`).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "loc": {"type": "array", "items": {"type": "string"}},
            "type": {"type": ["string", "null"]},
            "msg": {"type": ["string", "null"]}}}},
    },
    "additionalProperties": True,
}
_READ_ERRORS = {401: "Missing or unknown API key", 403: "Not permitted", 404: "Not found",
                422: "Invalid parameters"}
_WRITE_ERRORS = {400: "Malformed JSON", **_READ_ERRORS, 409: "Conflict (e.g. insufficient credits, or a request "
                 "with this Idempotency-Key still in progress)", 413: "Request body too large",
                 422: "Invalid input (unknown fields, wrong types, broken rules, Idempotency-Key reused)"}


def document_problems(schema: dict) -> dict:
    """Document the error answers of /v1 as they are sent: application/problem+json with the Problem
    schema. FastAPI's default documents 422 as application/json HTTPValidationError, which this API never
    sends, and documents no other error at all."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            errors = _READ_ERRORS
            if method in ("post", "put", "patch", "delete"):
                errors = {s: d for s, d in _WRITE_ERRORS.items() if "requestBody" in operation or s not in (400, 413)}
            elif any(p.get("name") == "cursor" for p in operation.get("parameters", ())):
                errors = {400: "Invalid cursor (not a next_cursor of this list)", **_READ_ERRORS}
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                responses[str(status)] = {"description": description, "content": content}
    if not any("HTTPValidationError" in str(ops) for ops in schema.get("paths", {}).values()):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema


def _install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi


def _browser_page(request: Request) -> bool:
    """A browser asking for a page outside the API (the API's clients always get problem+json)."""
    path = request.url.path
    return (request.method == "GET" and not path.startswith(("/v1", "/openapi", "/docs"))
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    _install_openapi(app)

    @app.exception_handler(CreditdeskError)
    async def _domain(request: Request, exc: CreditdeskError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return problem_response(error_problem(exc, instance=request.url.path), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        malformed = False
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                malformed = True
            errors.append({"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"),
                           "msg": err.get("msg")})
        if malformed:
            body = problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.",
                           instance=request.url.path, errors=errors)
        else:
            unknown = [".".join(e["loc"][1:]) for e in errors if e["type"] == "extra_forbidden"]
            detail = (f"Unknown field(s): {', '.join(unknown)}." if unknown
                      else "The request does not match the expected shape; see errors.")
            body = problem(422, "unknown_field" if unknown and len(unknown) == len(errors) else "validation_error",
                           "Invalid request", detail, instance=request.url.path, errors=errors)
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        if exc.status_code in (404, 405) and _browser_page(request):
            # A mistyped back-office address, or a form's step opened again (reload, new tab): a page with the
            # way back, not a JSON document.
            from creditdesk.errors import CreditdeskError as PageError
            from creditdesk.errors import NotFound
            from creditdesk.web.core import error_page

            if exc.status_code == 404:
                return error_page(request, NotFound("There is no page at this address."))
            return error_page(request, PageError(
                "This address is a step of a form: open the page the form is on and submit it from there. "
                "Nothing was done.", code="method_not_allowed", http_status=405))
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return problem_response(problem(exc.status_code, code, detail, detail, instance=request.url.path),
                                getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    @app.exception_handler(StatementError)
    @app.exception_handler(OverflowError)
    async def _value_refused(request: Request, exc: Exception):
        # A value the schemas let through but the database cannot hold (an integer past 64 bits, a
        # date that leaves years 1..9999 once moved to UTC, text PostgreSQL refuses): bad input, not
        # a crash. Anything else wrapped in a StatementError is still ours.
        cause = getattr(exc, "orig", exc)
        if isinstance(exc, StatementError) and not isinstance(exc, DataError) and not isinstance(
                cause, OverflowError):
            return await _unexpected(request, exc)
        log.warning("value refused by the database on %s %s: %s", request.method, request.url.path, cause)
        return problem_response(problem(422, "value_out_of_range", "Invalid input",
                                        "A value of the request is out of the range this service can store.",
                                        instance=request.url.path))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(problem(500, "internal_error", "Internal error",
                                        "Something went wrong on our side; nothing was changed.",
                                        instance=request.url.path))
