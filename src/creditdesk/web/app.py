"""The back office: server-rendered pages at / in the same app as the REST API.

Pages call the same service functions as the API (credits.packs and its siblings, parties.service, reads, audit);
nothing here decides a business rule. Permission checks come from the services too: buttons are
hidden with the services' own checks, and a forged request is refused by the service (403 page).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from creditdesk.web import (activity, auth, catalog, clients, credit_control, finance, invoices, packs, people,
                            projects, sms)
from creditdesk.web import notify as notify_pages
from creditdesk.web import groups as groups_web  # group accounts and pricing agreements
from creditdesk.web import assets as assets_web  # account assets (seed 004)
from creditdesk.web import wallets as wallets_web  # wallets and payment preferences (seed 004)
from creditdesk.web import subscriptions as subscriptions_web  # subscriptions and bills (seed 002)
from creditdesk.web import home as home_page  # what needs attention
from creditdesk.web import activities as activities_web  # activities (seed 002)
from creditdesk.web import integrations as integrations_web  # packs from CRM deals (issue 16)
from creditdesk.web import webhooks as webhooks_web  # Settings > Webhooks (issue 16)
from creditdesk.web.core import STATIC_DIR, WebRoute, read_session


def mount(app: FastAPI) -> None:
    home = APIRouter(route_class=WebRoute, include_in_schema=False)

    @home.get("/")
    def index(request: Request):
        return RedirectResponse("/home" if read_session(request).get("uid") else "/login", status_code=303)

    for router in (home, home_page.router, auth.router, packs.fixed, packs.router, people.fixed, clients.router, projects.fixed,
                   projects.router, activity.router, sms.router, catalog.router, finance.fixed, finance.router,
                   invoices.fixed, invoices.router, people.router, notify_pages.router, groups_web.router,
                   assets_web.router, wallets_web.router, subscriptions_web.router, activities_web.router,
                   integrations_web.router, webhooks_web.router,
                   credit_control.router):  # after finance: its /accounts/{id}/{action} is the last to match
        app.include_router(router)
    from creditdesk.web import packages as package_pages  # credit packages sold (issue 13)
    app.include_router(package_pages.router)
    from creditdesk.web import communications as communication_pages  # communicate a bill (seed 002)
    app.include_router(communication_pages.router)
    from creditdesk.web import billing_settings as billing_settings_pages  # Settings > Billing (issue 17)
    app.include_router(billing_settings_pages.router)
    from creditdesk.web import low_balance as low_balance_pages  # Settings > Low balance (issue 16's thresholds)
    app.include_router(low_balance_pages.router)
    from creditdesk.web import billing_runs as billing_run_pages  # Finance > Billing runs (seed 002)
    app.include_router(billing_run_pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
