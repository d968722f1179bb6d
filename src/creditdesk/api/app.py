"""The FastAPI application: REST API under /v1, back office at /, /healthz and /metrics."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from creditdesk import __version__
from creditdesk.api import docs, problems
from creditdesk.api.deps import get_db
from creditdesk.api.middleware import BodyLimitAndMetrics
from creditdesk.api.routes import audit as audit_routes
from creditdesk.api.routes import credits as credits_routes
from creditdesk.api.routes import parties as parties_routes
from creditdesk.api.security import BodyReadTimeout, SecurityHeaders, metrics_caller_allowed
from creditdesk.config import get_settings
from creditdesk.db import Database, get_database
from creditdesk.jobs.runner import JobLoop

API_VERSION = "1"

DESCRIPTION = """
Prepaid credits and account billing on a double-entry credit ledger.

Authenticate with an API key: `Authorization: Bearer cdk_...`. Every write accepts an
`Idempotency-Key` header; send one on every write that moves credits. Errors are RFC 9457
problem+json documents with a stable `code`.
"""


def create_app(database_url: str | None = None, *, db: Database | None = None, run_jobs: bool = False) -> FastAPI:
    settings = get_settings()
    database = db or get_database(database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        loop = None
        if run_jobs and settings.jobs_interval_seconds > 0:
            loop = JobLoop(database, settings.jobs_interval_seconds)
            loop.start()
        yield
        if loop is not None:
            loop.stop()

    # The document's version is the API's (/v1), not the package's: which release runs is for
    # monitoring to know (/healthz with the metrics token), not for anonymous callers.
    app = FastAPI(title="creditdesk", version=API_VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan)
    app.state.db = database
    problems.install(app)

    # Credits first: routes are matched in order, and consumptions are the busiest. Each router is
    # included straight into the app (no /v1 router around them): FastAPI re-checks every nested
    # router's routes on each request, and one level less is measurably cheaper (bench, workload 1).
    _include_optional(app)
    app.include_router(parties_routes.router, prefix="/v1")
    app.include_router(audit_routes.router, prefix="/v1")
    from creditdesk.api.routes import catalog as catalog_routes  # the catalogue (billing core, issue 12)
    app.include_router(catalog_routes.router, prefix="/v1")

    @app.get("/healthz", tags=["system"])
    def healthz(request: Request, database: Database = Depends(get_db)):
        try:
            with database.read() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # the probe must answer, not raise
            return JSONResponse({"status": "unavailable", "database": str(exc.__class__.__name__)}, status_code=503)
        body = {"status": "ok", "database": database.dialect}
        if _may_read_metrics(request):
            body["version"] = __version__
        return body

    @app.get("/metrics", tags=["system"], include_in_schema=False)
    def metrics(request: Request):
        # Read per request: the settings can change without rebuilding the app (tests, reloads).
        if not _may_read_metrics(request):
            if get_settings().metrics_token:
                return problems.problem_response(problems.problem(
                    401, "unauthenticated", "Authentication required",
                    "Send Authorization: Bearer <CREDITDESK_METRICS_TOKEN>.", instance="/metrics"),
                    headers={"WWW-Authenticate": "Bearer"})
            # Not published: answer as for any unknown path, so scanners learn nothing.
            return problems.problem_response(problems.problem(404, "not_found", "Not Found", "Not Found",
                                                              instance="/metrics"))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    docs.install(app, openapi_url=app.openapi_url)
    _mount_web(app)
    app.add_middleware(BodyLimitAndMetrics, max_body_bytes=settings.max_body_bytes)
    # Outermost last: the timeout must wrap the body reading above, and the headers every answer,
    # the 408 and 413 included.
    app.add_middleware(BodyReadTimeout, seconds=settings.body_read_timeout_seconds)
    app.add_middleware(SecurityHeaders)
    return app


def _may_read_metrics(request: Request) -> bool:
    settings = get_settings()
    return metrics_caller_allowed(request.headers.get("authorization"), token=settings.metrics_token,
                                  public=settings.metrics_public)


def _include_optional(app: FastAPI) -> None:
    app.include_router(credits_routes.router, prefix="/v1")
    from creditdesk.api.routes import sms as sms_routes  # SMS credits (seed 003)
    app.include_router(sms_routes.router, prefix="/v1")
    from creditdesk.api.routes import billing as billing_routes  # customer accounts (seed 004)
    app.include_router(billing_routes.router, prefix="/v1")
    from creditdesk.api.routes import invoices as invoice_routes  # invoices, credit notes, payments
    app.include_router(invoice_routes.router, prefix="/v1")
    from creditdesk.api.routes import credit_control as credit_control_routes  # credit control (seed 004)
    app.include_router(credit_control_routes.router, prefix="/v1")
    from creditdesk.api.routes import notify as notify_routes  # expiry emails (seed 001)
    app.include_router(notify_routes.router, prefix="/v1")
    from creditdesk.api.routes import communications as communication_routes  # communicate a bill (seed 002)
    app.include_router(communication_routes.router, prefix="/v1")
    from creditdesk.api.routes import groups as group_routes  # group accounts, pricing agreements (seed 004)
    app.include_router(group_routes.router, prefix="/v1")
    from creditdesk.api.routes import packages as package_routes  # credit packages sold (seed 001, issue 13)
    app.include_router(package_routes.router, prefix="/v1")
    from creditdesk.api.routes import assets as asset_routes  # account assets (seed 004)
    app.include_router(asset_routes.router, prefix="/v1")
    from creditdesk.api.routes import activities as activity_routes  # activities (seed 002)
    app.include_router(activity_routes.router, prefix="/v1")
    from creditdesk.api.routes import wallets as wallet_routes  # wallets, payment preferences (seed 004)
    app.include_router(wallet_routes.router, prefix="/v1")
    from creditdesk.api.routes import subscriptions as subscription_routes  # subscriptions, bills (seed 002)
    app.include_router(subscription_routes.router, prefix="/v1")
    from creditdesk.api.routes import low_balance as low_balance_routes  # low-balance thresholds (issue 16)
    app.include_router(low_balance_routes.router, prefix="/v1")
    from creditdesk.api.routes import integrations as integration_routes  # packs from CRM deals (issue 16)
    app.include_router(integration_routes.router, prefix="/v1")
    from creditdesk.api.routes import webhooks as webhook_routes  # outbound webhooks (issue 16)
    app.include_router(webhook_routes.router, prefix="/v1")


def create_server_app() -> FastAPI:
    """The app as `creditdesk serve` runs it: with the background jobs. As a production entry point
    (also for `uvicorn --factory`), it refuses the placeholder or a short session key like `serve` does."""
    from creditdesk.config import SECRET_KEY_HINT, secret_key_problem

    problem = secret_key_problem(get_settings().secret_key)
    if problem:
        raise RuntimeError(f"{problem} {SECRET_KEY_HINT}")
    return create_app(run_jobs=True)


def _mount_web(app: FastAPI) -> None:
    try:
        from creditdesk.web.app import mount
    except ImportError:
        return
    mount(app)
