"""Every back-office screen in Chromium at 1366 px and 390 px (issue 17: "every screen ... is exercised in Chromium
at 1366 px and 390 px by the test suite with screenshots looked at").

Against a real `creditdesk serve --demo` (on SQLite, and on a database of its own on PostgreSQL when
CREDITDESK_TEST_DATABASE_URL is set), with what the demo lacks added through the services (a webhook endpoint and
a failed delivery, an expiry email as sent, an SMS message, a credit package given to a customer), a master user
opens every page of the back office (SCREENS) at both widths. Each page must answer 200 with no error page, be
no wider than the screen, show no text outside the screen (its menus and collapsed sections opened one at a time,
so the Actions menus and the user's menu count), and log no console error. A full-page screenshot of each goes
to $CREDITDESK_SCREENSHOTS (default: a pytest temporary folder) as <page>-<width>.png, for a person to look at.
The SMS screens are seen again in the shared office credits mode, with the mode's confirmation page.

`test_the_screen_list_covers_every_page_route` reads the routes of the app: a new page without a screen here
fails it (NOT_PAGES lists what is not a page, each with why).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS, PG_URL
from tests.web.test_browser import CHROMIUM, LAUNCH_ARGS, MASTER, PASSWORD, _free_port, sync_api

expect = sync_api.expect
SIZES = {1366: 900, 390: 844}  # width: height (a laptop; a phone)


@dataclass(frozen=True)
class Screen:
    name: str  # the screenshot's file name, without the width
    route: str  # the route's path as the app registers it
    url: str  # the path opened, with {names} of SeedIds filled in


# Every GET route that renders a page, with real objects of the demo in its path. Some routes are opened more
# than once (an account with a group and a wallet as well as a plain one; each credit-control action).
SCREENS = [
    Screen("home", "/home", "/home"),
    Screen("credits", "/credits", "/credits"),
    Screen("credits-filtered", "/credits", "/credits?credit_type=hours&sort=remaining&order=desc"),
    Screen("pack-new", "/packs/new", "/packs/new"),
    Screen("pack-import", "/packs/import", "/packs/import"),
    Screen("pack", "/packs/{pack_id}", "/packs/{pack}"),
    Screen("pack-history", "/packs/{pack_id}/history", "/packs/{pack}/history"),
    Screen("pack-change-holder", "/packs/{pack_id}/change-holder", "/packs/{pack}/change-holder"),
    Screen("package-edit", "/packs/{pack_id}/package-edit", "/packs/{package_pack}/package-edit"),
    Screen("clients", "/clients", "/clients"),
    Screen("customer", "/customers/{customer_id}", "/customers/{customer}"),
    Screen("customer-new", "/customers/new", "/customers/new"),
    Screen("customer-edit", "/customers/{customer_id}/edit", "/customers/{customer}/edit"),
    Screen("address-new", "/customers/{customer_id}/addresses/new", "/customers/{customer}/addresses/new"),
    Screen("address-edit", "/customers/{customer_id}/addresses/{address_id}/edit",
           "/customers/{customer}/addresses/{address}/edit"),
    Screen("office", "/offices/{office_id}", "/offices/{office}"),
    Screen("office-new", "/offices/new", "/offices/new"),
    Screen("office-edit", "/offices/{office_id}/edit", "/offices/{office}/edit"),
    Screen("users", "/users", "/users"),
    Screen("user", "/users/{user_id}", "/users/{user}"),
    Screen("user-contact", "/users/{user_id}", "/users/{contact}"),
    Screen("user-new", "/users/new", "/users/new"),
    Screen("user-edit", "/users/{user_id}/edit", "/users/{user}/edit"),
    Screen("teams", "/teams", "/teams"),
    Screen("team", "/teams/{team_id}", "/teams/{team}"),
    Screen("team-new", "/teams/new", "/teams/new"),
    Screen("projects", "/projects", "/projects"),
    Screen("project", "/projects/{project_id}", "/projects/{project}"),
    Screen("project-new", "/projects/new", "/projects/new"),
    Screen("project-contacts", "/projects/{project_id}/contacts", "/projects/{project}/contacts"),
    Screen("consumption-reverse", "/consumptions/{consumption_id}/reverse", "/consumptions/{consumption}/reverse"),
    Screen("activity-log", "/activity", "/activity"),
    Screen("settings", "/settings", "/settings"),
    Screen("settings-emails", "/settings/emails", "/settings/emails"),
    Screen("settings-email-template", "/settings/emails/templates/{event}/{language}",
           "/settings/emails/templates/warning/en"),
    Screen("settings-email-sent", "/settings/emails/log/{send_id}", "/settings/emails/log/{email_send}"),
    Screen("settings-bill-templates", "/settings/bill-templates", "/settings/bill-templates"),
    Screen("settings-bill-template", "/settings/bill-templates/{template_id}",
           "/settings/bill-templates/{bill_template}"),
    Screen("settings-integrations", "/settings/integrations", "/settings/integrations"),
    Screen("settings-webhooks", "/settings/webhooks", "/settings/webhooks"),
    Screen("settings-webhook-endpoint", "/settings/webhooks/endpoints/{endpoint_id}",
           "/settings/webhooks/endpoints/{endpoint}"),
    Screen("settings-webhook-delivery", "/settings/webhooks/deliveries/{delivery_id}",
           "/settings/webhooks/deliveries/{delivery}"),
    Screen("settings-low-balance", "/settings/low-balance", "/settings/low-balance"),
    Screen("settings-billing", "/settings/billing", "/settings/billing"),
    Screen("sms", "/sms", "/sms"),
    Screen("sms-messages", "/sms/messages", "/sms/messages"),
    Screen("sms-purchase", "/sms/purchase", "/sms/purchase?for={sms_user}"),
    Screen("sms-receipt", "/sms/purchases/{purchase_id}", "/sms/purchases/{sms_purchase}"),
    Screen("sms-transfer", "/sms/transfer", "/sms/transfer?account={sms_user}&direction=from"),
    Screen("sms-logs", "/sms/logs", "/sms/logs"),
    Screen("sms-logs-account", "/sms/logs", "/sms/logs?account={sms_user}"),
    Screen("catalogue", "/catalogue", "/catalogue"),
    Screen("catalogue-products", "/catalogue/products", "/catalogue/products"),
    Screen("catalogue-product", "/catalogue/products/{product_id}", "/catalogue/products/{product}"),
    Screen("catalogue-package", "/catalogue/products/{product_id}", "/catalogue/products/{package_product}"),
    Screen("catalogue-product-new", "/catalogue/products/new", "/catalogue/products/new"),
    Screen("catalogue-price-plans", "/catalogue/price-plans", "/catalogue/price-plans"),
    Screen("catalogue-price-plan", "/catalogue/price-plans/{plan_id}", "/catalogue/price-plans/{price_plan}"),
    Screen("catalogue-taxes", "/catalogue/taxes", "/catalogue/taxes"),
    Screen("catalogue-types", "/catalogue/types", "/catalogue/types"),
    Screen("accounts", "/accounts", "/accounts"),
    Screen("account", "/accounts/{account_id}", "/accounts/{account}"),
    Screen("account-group-parent", "/accounts/{account_id}", "/accounts/{group_account}"),
    Screen("account-new", "/accounts/new", "/accounts/new"),
    Screen("account-edit", "/accounts/{account_id}/edit", "/accounts/{account}/edit"),
    Screen("account-credit-terms", "/accounts/{account_id}/{action}", "/accounts/{account}/credit-terms"),
    Screen("account-suspend", "/accounts/{account_id}/{action}", "/accounts/{account}/suspend"),
    Screen("account-write-off", "/accounts/{account_id}/{action}", "/accounts/{account}/write-off"),
    Screen("account-terminate", "/accounts/{account_id}/{action}", "/accounts/{account}/terminate"),
    Screen("account-member-new", "/accounts/{account_id}/members/new", "/accounts/{group_account}/members/new"),
    Screen("account-pricing-agreement", "/accounts/{account_id}/pricing-agreement/edit",
           "/accounts/{group_account}/pricing-agreement/edit"),
    Screen("invoices", "/invoices", "/invoices"),
    Screen("invoice", "/invoices/{invoice_id}", "/invoices/{invoice}"),
    Screen("invoice-draft", "/invoices/{invoice_id}", "/invoices/{draft_invoice}"),
    Screen("invoice-new", "/invoices/new", "/invoices/new"),
    Screen("invoice-communicate", "/invoices/{invoice_id}/communicate", "/invoices/{invoice}/communicate"),
    Screen("subscriptions", "/subscriptions", "/subscriptions"),
    Screen("subscription", "/subscriptions/{subscription_id}", "/subscriptions/{subscription}"),
    Screen("bills", "/bills", "/bills"),
    Screen("billing-runs", "/billing-runs", "/billing-runs"),
    Screen("billing-run", "/billing-runs/{run_id}", "/billing-runs/{billing_run}"),
    Screen("credit-ratings", "/finance/credit-ratings", "/finance/credit-ratings"),
    Screen("override-rules", "/finance/override-rules", "/finance/override-rules"),
    Screen("groups", "/finance/groups", "/finance/groups"),
    Screen("assets", "/finance/assets", "/finance/assets"),
    Screen("asset", "/assets/{asset_id}", "/assets/{asset}"),
    Screen("activities", "/activities", "/activities"),
    Screen("activities-mine", "/activities", "/activities?tab=mine"),
    Screen("activity", "/activities/{activity_id}", "/activities/{activity}"),
    Screen("activity-new", "/activities/new", "/activities/new"),
    Screen("activity-types", "/activities/types", "/activities/types"),
]
LOGIN = Screen("login", "/login", "/login")  # opened before logging in (a logged-in user is sent home)

# GET routes of the back office that are not pages to look at. Each says why.
NOT_PAGES = {
    "/": "redirects to /home or /login",
    "/settings/emails/template": "the 'another language' picker: redirects to the template's page",
    "/credits/export.csv": "CSV download",
    "/activity/export.csv": "CSV download",
    "/packs/import/template.csv": "CSV download",
    "/sms/logs.csv": "CSV download",
    "/accounts/{account_id}/statement.csv": "CSV download",
    "/invoices/{invoice_id}/pdf": "PDF download",
    "/sms/purchases/{purchase_id}/receipt.pdf": "PDF download",
}

# The SMS screens again with the workspace in shared office credits mode (each office's pool pays).
SHARED_SMS_SCREENS = [
    Screen("sms-shared", "/sms", "/sms"),
    Screen("sms-shared-messages", "/sms/messages", "/sms/messages"),
    Screen("sms-shared-purchase", "/sms/purchase", "/sms/purchase?for={sms_office}"),
    Screen("sms-shared-receipt", "/sms/purchases/{purchase_id}", "/sms/purchases/{office_purchase}"),
    Screen("sms-shared-transfer", "/sms/transfer", "/sms/transfer?account={sms_office}&direction=from"),
    Screen("sms-shared-logs", "/sms/logs", "/sms/logs"),
    Screen("sms-shared-logs-office", "/sms/logs", "/sms/logs?account={sms_office}"),
]


# --- the app's routes -----------------------------------------------------------------------------------

def _routes(routes):
    """Every route of the app, included routers opened (FastAPI keeps them as included routers since 0.16x)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            for sub_prefix, sub in _routes(inner.routes):
                yield prefix + sub_prefix, sub
        else:
            yield "", route


def back_office_get_routes(app) -> set[str]:
    from creditdesk.web.core import WebRoute

    return {prefix + route.path for prefix, route in _routes(app.routes)
            if isinstance(route, WebRoute) and "GET" in route.methods}


def test_the_screen_list_covers_every_page_route(tmp_path):
    from creditdesk.api.app import create_app
    from creditdesk.db import Database

    database = Database(f"sqlite:///{tmp_path / 'routes.db'}")  # routes only: nothing is read or written
    try:
        routes = back_office_get_routes(create_app(db=database))
    finally:
        database.dispose()
    assert len(routes) > 50, sorted(routes)  # the walk found the back office, not an empty list
    listed = {s.route for s in SCREENS + SHARED_SMS_SCREENS + [LOGIN]}
    missing = routes - listed - set(NOT_PAGES)
    assert not missing, f"pages without a screen in this test (add them to SCREENS, or to NOT_PAGES with why): " \
                        f"{sorted(missing)}"
    stale = (listed | set(NOT_PAGES)) - routes
    assert not stale, f"screens for routes the app no longer has: {sorted(stale)}"
    assert not listed & set(NOT_PAGES), sorted(listed & set(NOT_PAGES))


# --- the server, the demo and what it lacks --------------------------------------------------------------

@contextlib.contextmanager
def _database_for(backend: str, folder: Path):
    """A database URL of its own: a SQLite file, or a new PostgreSQL database (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'screens.db'}"
        return
    from creditdesk.db import normalize_url

    url = make_url(normalize_url(PG_URL))
    name = f"creditdesk_screens_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Served:
    backend: str
    base: str
    database_url: str


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"screens-{request.param}")
    with _database_for(request.param, folder) as url:
        port = _free_port()
        env = {**os.environ, "CREDITDESK_SECRET_KEY": secrets.token_hex(32),
               "CREDITDESK_JOBS_INTERVAL_SECONDS": "0"}  # no jobs: the pages stay as seeded while they are seen
        env.pop("CREDITDESK_DATABASE_URL", None)
        source = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's code, from any folder
        env["PYTHONPATH"] = os.pathsep.join([source] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        log_path = folder / "serve.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "creditdesk.cli", "serve", "--demo", "--host", "127.0.0.1", "--port",
                 str(port), "--database-url", url, "--no-access-log"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=folder)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            try:
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"creditdesk serve exited: {log_path.read_text()[-3000:]}")
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError("creditdesk serve did not become ready in 90 s")
                    time.sleep(0.2)
                yield Served(request.param, base, url)
            finally:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture(scope="module")
def demo_db(served):
    from creditdesk.db import Database

    database = Database(served.database_url)
    yield database
    database.dispose()


class _Inbox:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def _seed(db) -> dict[str, str]:
    """What the demo lacks for every page to have something to show, made through the services; then the ids
    of the objects the screens open."""
    from creditdesk.billing import packages
    from creditdesk.billing.invoice_models import Invoice
    from creditdesk.billing.models import BillingAccount
    from creditdesk.credits import packs
    from creditdesk.credits import schemas as cs
    from creditdesk.notify import schemas as ns
    from creditdesk.notify import service as notify
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import Office, User, Workspace
    from creditdesk.sms import schemas as ss
    from creditdesk.sms import service as sms
    from creditdesk.webhooks import schemas as whs
    from creditdesk.webhooks import service as webhooks

    def add(session):
        ws = session.scalar(select(Workspace).where(Workspace.name == "Demo Services Ltd"))
        master = session.scalar(select(User).where(User.workspace_id == ws.id, User.email == MASTER))
        actor = parties.actor_for_user(session, master)
        # A webhook endpoint nobody listens at: the pack granted below gives it a delivery that failed once.
        webhooks.create_endpoint(session, whs.EndpointCreate(
            url="http://127.0.0.1:9/creditdesk-hooks", event_types=["pack.created", "pack.voided"],
            description="Order system"), actor=actor)
        london = session.scalar(select(Office).where(Office.workspace_id == ws.id, Office.name == "Acme London"))
        packs.grant_pack(session, cs.PackCreate(holder=cs.Holder(kind="office", id=london.id), credit_type="hours",
                                                quantity=1500, name="Acme onboarding hours"), actor=actor)
        # A credit package given to Acme (its Edit page), and expiry warnings 30 days ahead (the send log).
        packages.grant_free(session, "massage-10", cs.Holder(kind="office", id=london.id), actor=actor,
                            notes="Welcome gift")
        notify.update_settings(session, ns.EmailSettingsUpdate(enabled=True, send_warning=True, warning_days=30),
                               actor=actor)
        alice = session.scalar(select(User).where(User.workspace_id == ws.id, User.email == "alice@demo.example.com"))
        message = sms.send_message(session, ss.MessageCreate(
            to="+61400000123", body="Your technician arrives at 9:00 tomorrow. Reply STOP to opt out."),
            actor=parties.actor_for_user(session, alice))
        return message.id

    message_id = db.write(add)
    sms.complete_message(db, message_id)
    from creditdesk.jobs import runner

    runner.bill_due_subscriptions(db)  # the jobs loop is off: the demo's subscription bills what is due
    from aiosmtpd.controller import Controller

    from creditdesk.config import Settings
    from creditdesk.notify import expiry_emails

    controller = Controller(_Inbox(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        sent = expiry_emails.send_due(db, settings=Settings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                                            smtp_from="desk@demo.example.com"))
    finally:
        controller.stop()
    assert sent["sent"] >= 1, sent

    from creditdesk.activities.models import Activity
    from creditdesk.billing.asset_models import Asset
    from creditdesk.billing.group_models import GroupMember
    from creditdesk.billing.models import CustomerAddress
    from creditdesk.billing.subscription_models import BillingRun, Subscription
    from creditdesk.catalog.models import PricePlan, Product
    from creditdesk.credits.models import Consumption, Pack, Project
    from creditdesk.notify.communication_models import CommunicationTemplate
    from creditdesk.notify.models import EmailSend
    from creditdesk.parties.models import Customer, Team
    from creditdesk.sms.models import SmsPurchase
    from creditdesk.webhooks.models import WebhookDelivery, WebhookEndpoint

    with db.read() as session:
        ws = session.scalar(select(Workspace.id).where(Workspace.name == "Demo Services Ltd"))

        def one(model, *where, order=None):
            query = select(model.id).where(model.workspace_id == ws, *where)
            found = session.scalar(query.order_by(order if order is not None else model.id).limit(1))
            assert found, f"the demo has no {model.__name__} {where}"
            return found

        acme = one(Customer, Customer.name == "Acme Widgets")
        return {
            "pack": one(Pack, Pack.name == "Acme 40h content pack"),
            "package_pack": one(Pack, Pack.name == "10 massages"),
            "customer": acme,
            "address": session.scalar(select(CustomerAddress.id).where(CustomerAddress.customer_id == acme)),
            "office": one(Office, Office.name == "Acme London"),
            "user": one(User, User.email == "bob@demo.example.com"),
            "contact": one(User, User.email == "wendy@acme.example.com"),
            "team": one(Team, Team.name == "Project delivery"),
            "project": one(Project, Project.name == "Acme website refresh"),
            "consumption": one(Consumption),
            "email_send": one(EmailSend, EmailSend.state == "sent"),
            "bill_template": one(CommunicationTemplate),
            "endpoint": one(WebhookEndpoint),
            "delivery": one(WebhookDelivery),
            "sms_user": one(User, User.email == "alice@demo.example.com"),
            "sms_purchase": one(SmsPurchase),
            "sms_office": one(Office, Office.name == "Head Office"),
            "product": one(Product, Product.code == "consulting-hour"),
            "package_product": one(Product, Product.code == "massage-10"),
            "price_plan": one(PricePlan, PricePlan.code == "aud-standard"),
            "account": one(BillingAccount, BillingAccount.number == "ACC-000001"),
            "group_account": session.scalar(select(GroupMember.parent_id).where(GroupMember.workspace_id == ws)),
            "invoice": one(Invoice, Invoice.status == "posted", Invoice.amount_credited > 0),
            "draft_invoice": one(Invoice, Invoice.status == "draft", Invoice.notes.like("Spa visit%")),
            "subscription": one(Subscription),
            # The jobs' run (every workspace) that billed the demo's subscription above: its part here.
            "billing_run": session.scalar(select(BillingRun.id).order_by(BillingRun.id).limit(1)),
            "asset": one(Asset),
            "activity": one(Activity),
        }


@pytest.fixture(scope="module")
def ids(demo_db) -> dict[str, str]:
    return _seed(demo_db)


@pytest.fixture(scope="module")
def shots(served, tmp_path_factory) -> Path:
    chosen = os.environ.get("CREDITDESK_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screens")
    if served.backend != "sqlite":
        folder = folder / served.backend  # the same names, side by side
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the browser: one context per width -------------------------------------------------------------------

@dataclass
class Tab:
    page: object
    width: int
    errors: list = field(default_factory=list)  # console errors and uncaught exceptions since the last look
    logged_in: bool = False


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def tabs(chromium, served):
    opened: dict[int, Tab] = {}

    def tab(width: int) -> Tab:
        if width not in opened:
            context = chromium.new_context(base_url=served.base, viewport={"width": width, "height": SIZES[width]})
            context.set_default_timeout(15_000)
            # Print buttons call window.print(): a headless print dialog never returns.
            context.add_init_script("window.print = function () {};")
            page = context.new_page()
            seen = Tab(page, width)
            page.on("console", lambda message: seen.errors.append(f"console: {message.text}")
                    if message.type == "error" else None)
            page.on("pageerror", lambda exc: seen.errors.append(f"script error: {exc}"))
            opened[width] = seen
        return opened[width]

    yield tab
    for seen in opened.values():
        seen.page.context.close()


def _log_in(tab: Tab) -> None:
    if tab.logged_in:
        return
    page = tab.page
    page.goto("/login")
    page.get_by_label("Email").fill(MASTER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    tab.logged_in = True


# Text on screen that lies outside the screen, left or right: for every text node that is drawn, the part of it
# not cut away by its boxes (overflow hidden or clip), unless a box of it scrolls sideways (a wide table in its
# own box is read by scrolling it). Then the same with each closed <details> opened in turn (Actions menus, the
# user's menu, inline edits), closed again afterwards.
OFF_SCREEN = """(width) => {
  const range = document.createRange();
  const label = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  function offText(root, where) {
    const found = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      // Hidden on purpose: screen-reader texts, and the skip link until it has the focus.
      if (!node.nodeValue.trim() || !el) continue;
      if (el.closest('script, style, template, .sr-only, .skip-link:not(:focus)')) continue;
      let left = -Infinity, right = Infinity, scrolls = false;
      for (let box = el; box && box !== document.documentElement; box = box.parentElement) {
        const style = getComputedStyle(box);
        if (style.overflowX === 'auto' || style.overflowX === 'scroll') { scrolls = true; break; }
        if (style.overflowX === 'hidden' || style.overflowX === 'clip') {
          const r = box.getBoundingClientRect(); left = Math.max(left, r.left); right = Math.min(right, r.right);
        }
      }
      if (scrolls) continue;
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        const a = Math.max(r.left, left), b = Math.min(r.right, right);
        if (r.height < 2 || b - a < 2) continue;  // not drawn, or cut away entirely
        if (a < -1 || b > width + 1) {
          found.push(where + label(el) + ' "' + node.nodeValue.trim().slice(0, 40) + '" at ' + Math.round(a)
                     + '..' + Math.round(b) + ' px');
          break;
        }
      }
      if (found.length >= 5) break;
    }
    return found;
  }
  const problems = offText(document.body, '');
  for (const details of Array.from(document.querySelectorAll('details:not([open])'))) {
    if (!details.checkVisibility()) continue;
    details.open = true;
    const name = (details.querySelector('summary') || details).textContent.trim().slice(0, 30);
    problems.push(...offText(details, 'opened "' + name + '": '));
    details.open = false;
    if (problems.length >= 10) break;
  }
  return problems;
}"""


def look_at(tab: Tab, screen: Screen, url: str, folder: Path, *, response=None) -> list[str]:
    """Open `url` (unless a form led there: then `response` is its answer), judge the page and take its picture;
    the problems found, each naming the page and the width."""
    page, width = tab.page, tab.width
    where = f"{screen.name} at {width} px ({url})"
    if response is None:
        tab.errors.clear()
        response = page.goto(url)
    problems = []
    if response is None or response.status != 200:
        problems.append(f"{where}: answered {response.status if response else 'nothing'}")
    opened = urlsplit(page.url)
    asked = urlsplit(url)
    if url != "(form)" and (opened.path, opened.query) != (asked.path, asked.query):
        problems.append(f"{where}: ended at {page.url}")
    if page.locator(".error-page").count():
        problems.append(f"{where}: error page: {page.locator('.error-page').inner_text()[:200]}")
    wide = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    if wide > inner + 1:
        problems.append(f"{where}: the page is {wide} px wide on a {inner} px screen")
    problems += [f"{where}: text off screen: {p}" for p in page.evaluate(OFF_SCREEN, inner)]
    problems += [f"{where}: {e}" for e in tab.errors]
    tab.errors.clear()
    page.screenshot(path=str(folder / f"{screen.name}-{width}.png"), full_page=True)
    return problems


# --- the screens -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", list(SIZES))
def test_every_screen(tabs, ids, shots, width):
    tab = tabs(width)
    problems = []
    if not tab.logged_in:  # the login page is seen logged out
        problems += look_at(tab, LOGIN, LOGIN.url, shots)
    _log_in(tab)
    for screen in SCREENS:
        problems += look_at(tab, screen, screen.url.format(**ids), shots)
    assert not problems, "\n".join(problems)


def _submit(tab: Tab, button):
    """Press a form's button; the answer of the page it leads to."""
    tab.errors.clear()
    with tab.page.expect_navigation() as navigation:
        button.click()
    return navigation.value


def _ask_for_mode(tab: Tab, mode: str):
    """Settings > SMS credit mode > Save: the confirmation page (the mode changes only once it is confirmed)."""
    page = tab.page
    page.goto("/settings")
    form = page.locator("#sms-settings-form")
    form.get_by_label("SMS credit mode").select_option(mode)
    answer = _submit(tab, form.get_by_role("button", name="Save SMS settings"))
    expect(page.locator("#mode-change-question")).to_contain_text("Nothing is moved")
    return answer


def test_sms_screens_in_shared_office_mode(tabs, ids, demo_db, shots):
    problems = []
    confirm = Screen("sms-shared-mode-confirm", "/settings/sms", "(form)")
    for width in SIZES:  # the question at each width; the answer once
        tab = tabs(width)
        _log_in(tab)
        problems += look_at(tab, confirm, confirm.url, shots, response=_ask_for_mode(tab, "shared"))
    page = tabs(1366).page
    page.locator("#confirm-mode-change").click()
    expect(page.locator(".flash.success")).to_contain_text("shared office")
    shared = {**ids, "office_purchase": _office_purchase(demo_db, ids["sms_office"])}

    payment = Screen("sms-shared-payment", "/sms/purchase", "(form)")
    for width in SIZES:
        tab = tabs(width)
        for screen in SHARED_SMS_SCREENS:
            problems += look_at(tab, screen, screen.url.format(**shared), shots)
        # Proceed on the purchase form: the payment screen (nothing is bought until Pay).
        tab.page.goto(f"/sms/purchase?for={shared['sms_office']}")
        purchase = tab.page.locator("#purchase-form")
        purchase.get_by_label("Quantity (SMS credits)").fill("25")
        purchase.get_by_label("Address").fill("1 Demo Street")
        answer = _submit(tab, purchase.get_by_role("button", name="Proceed"))
        expect(tab.page.locator("#payment-summary")).to_contain_text("Head Office")
        problems += look_at(tab, payment, payment.url, shots, response=answer)

    # Back to individual credits, as the demo was (the other screens of this module expect it).
    tab = tabs(1366)
    _ask_for_mode(tab, "individual")
    tab.page.locator("#confirm-mode-change").click()
    expect(tab.page.locator(".flash.success")).to_be_visible()
    assert not problems, "\n".join(problems)


def _office_purchase(db, office_id: str) -> str:
    """Head Office's pool buys 40 credits (through the service), for its receipt in shared mode."""
    from creditdesk.parties import service as parties
    from creditdesk.parties.models import User
    from creditdesk.sms import schemas as ss
    from creditdesk.sms import service as sms

    def buy(session):
        master = session.scalar(select(User).where(User.email == MASTER))
        return sms.create_purchase(session, ss.PurchaseCreate.model_validate({
            "for": {"kind": "office", "id": office_id}, "quantity": 40,
            "billing": {"name": "Demo Services Ltd", "address": "1 Demo Street\nSydney NSW 2000",
                        "email": "accounts@demo.example.com"}}), actor=parties.actor_for_user(session, master)).id
    return db.write(buy)
