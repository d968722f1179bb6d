"""Issue 17, "errors next to their field", on the billing forms: the account and address forms, New subscription
and the subscription page's forms, the account page's Wallet, Payment preferences and Assets forms. Each is posted
with several wrong fields at once: every message is next to its field (the field aria-invalid and described by
it), in plain words (never pydantic's, an endpoint or a code), what was typed is kept, and nothing is written."""

from __future__ import annotations

import html as html_lib
import re

from sqlalchemy import select

from creditdesk.billing import asset_schemas as as_
from creditdesk.billing import assets, wallets
from creditdesk.billing.models import CustomerAddress
from creditdesk.billing.subscription_models import Subscription, SubscriptionService
from creditdesk.catalog import schemas as cs
from creditdesk.catalog import service as catalog
from tests.billing.factories import configure, make_account, make_address
from tests.parties.factories import master_actor
from tests.reliability.test_authorization_roles import workspace_state
from tests.web.conftest import logged_in, post_form

RAW = ("Input should", "Value error", "value_error", "PATCH", "POST /", "/v1/", "field required", "String should",
       "proximity range", "ISO 3166", "ISO 4217", "_id", "minor units", "type=", "{'")


def form_of(html: str, form_id: str) -> str:
    """The HTML of one form of a page (from its tag to its end)."""
    start = html.index(f'id="{form_id}"')
    start = html.rindex("<form", 0, start)
    return html[start:html.index("</form>", start)]


def error_of(form: str, name: str) -> str | None:
    """The message next to field `name` in `form`, after checking the field is marked and described by it."""
    match = re.search(rf'<span class="field-error" id="err-{name}">([^<]*)</span>', form)
    if match is None:
        return None
    fields = re.findall(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', form)
    assert fields, f"no field {name}"
    for tag in fields:
        assert 'aria-invalid="true"' in tag and f'aria-describedby="err-{name}"' in tag, tag
    return html_lib.unescape(match.group(1))


def plain(html: str) -> None:
    visible = re.sub(r"<[^>]+>", " ", html.split("<main", 1)[-1])
    for raw in RAW:
        assert raw not in visible, raw


def messages(form: str) -> list[str]:
    return re.findall(r'<span class="field-error" id="err-[^"]+">([^<]*)</span>', form)


def test_account_form_new_and_edit(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor, enabled=["EUR"])
    client = logged_in(web, world.master_email)
    page = f"/accounts/new?customer_id={world.customer_id}"
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, "/accounts/new", {"customer_id": "", "name": "", "currency": "USD",
                                              "classification": "C" * 101, "credit_period_days": "soon"}, page=page)
    assert bad.status_code == 422
    form = form_of(bad.text, "account-form")
    assert error_of(form, "customer_id") == "Choose the customer."
    assert error_of(form, "name") == "Give the account a name."
    assert "USD" in error_of(form, "currency") and "enabled" in error_of(form, "currency")
    assert "100 characters" in error_of(form, "classification")
    assert "not a number" in error_of(form, "credit_period_days")
    assert len(messages(form)) == 5 and 'value="soon"' in form and 'value="' + "C" * 101 + '"' in form
    assert "Nothing was saved" in form
    plain(bad.text)
    # The credit period outside the default terms, and a name too long: both at once.
    bad = post_form(client, "/accounts/new", {"customer_id": world.customer_id, "name": "N" * 201, "currency": "AUD",
                                              "credit_period_days": "99"}, page=page)
    form = form_of(bad.text, "account-form")
    assert error_of(form, "credit_period_days") == "The credit period must be between 14 and 60 days."
    assert "200 characters" in error_of(form, "name")
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Main")
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"/accounts/{account.id}/edit", {"name": "", "classification": "",
                                                            "credit_period_days": "7"},
                    page=f"/accounts/{account.id}/edit")
    assert bad.status_code == 422
    form = form_of(bad.text, "account-form")
    assert error_of(form, "name") == "Give the account a name."
    assert error_of(form, "credit_period_days") == "The credit period must be between 14 and 60 days."
    assert 'value="7"' in form
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before


def test_address_form_new_and_edit(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    client = logged_in(web, world.master_email)
    customer = f"/customers/{world.customer_id}"
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"{customer}/addresses/new", {"type": "billing", "line1": "", "city": "", "country": "ZQ",
                                                          "postcode": "9" * 21, "region": "VIC"},
                    page=f"{customer}/addresses/new")
    assert bad.status_code == 422
    form = form_of(bad.text, "address-form")
    assert error_of(form, "line1") == "Address line 1 is required."
    assert error_of(form, "city") == "City is required."
    assert error_of(form, "country") == "Type the country's two-letter code, like AU, NZ or GB."
    assert "20 characters" in error_of(form, "postcode")
    assert error_of(form, "region") is None and 'value="VIC"' in form and 'value="ZQ"' in form
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before
    address = make_address(db, actor=actor, customer_id=world.customer_id)
    before = workspace_state(db, world.workspace_id)
    edit = f"{customer}/addresses/{address}/edit"
    bad = post_form(client, edit, {"type": "postal", "line1": "", "city": "Perth", "country": "Australia"}, page=edit)
    assert bad.status_code == 422
    form = form_of(bad.text, "address-form")
    assert error_of(form, "line1") == "Address line 1 is required."
    assert error_of(form, "country") == "Type the country's two-letter code, like AU, NZ or GB."
    assert 'value="Perth"' in form
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before
    with db.read() as session:
        assert session.get(CustomerAddress, address).city == "Sydney"


def _subscription_world(db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Home line")

    def products(session):
        catalog.create_product(session, cs.ProductCreate(code="fibre", name="Fibre 100", kind="subscription_service",
                                                         unit="month"), actor=actor)
        plan = catalog.create_price_plan(session, cs.PricePlanCreate(code="aud", name="AUD", currency="AUD",
                                                                      is_default=True), actor=actor)
        catalog.set_price(session, plan.id, cs.PriceSet(product="fibre", unit_price=3100), actor=actor)
    db.write(products)
    return account


def test_new_subscription_form(web, db, world):
    account = _subscription_world(db, world)
    client = logged_in(web, world.master_email)
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, "/subscriptions/new", {"account_id": "", "name": "Home", "frequency": "weekly",
                                                   "billing_day": "31", "product": "", "quantity": "0",
                                                   "activate_on": "15/01/2027"}, page="/subscriptions")
    assert bad.status_code == 422
    form = form_of(bad.text, "new-subscription")
    assert error_of(form, "account_id") == "Choose an account."
    assert error_of(form, "product") == "Choose a subscription service."
    assert error_of(form, "frequency") == "Billed: choose from the list."
    assert error_of(form, "billing_day") == "Billing day must be at most 28."
    assert error_of(form, "quantity") == "Quantity must be at least 1."
    assert "choose a day" in error_of(form, "activate_on")
    assert 'value="Home"' in form and 'value="31"' in form and 'value="15/01/2027"' in form
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before
    # An account that no longer exists is said next to the account.
    gone = post_form(client, "/subscriptions/new", {"account_id": "acc_gone", "product": "fibre", "quantity": "1",
                                                    "billing_day": "1"}, page="/subscriptions")
    assert "no longer exists" in error_of(form_of(gone.text, "new-subscription"), "account_id")
    ok = post_form(client, "/subscriptions/new", {"account_id": account.id, "product": "fibre", "quantity": "1",
                                                  "billing_day": "1", "activate_on": "2027-01-15"},
                   page="/subscriptions")
    assert ok.status_code == 303, ok.text


def test_subscription_page_forms(web, db, world):
    account = _subscription_world(db, world)
    client = logged_in(web, world.master_email)
    created = post_form(client, "/subscriptions/new", {"account_id": account.id, "product": "fibre", "quantity": "1",
                                                       "billing_day": "1", "activate_on": "2027-01-15"},
                        page="/subscriptions")
    assert created.status_code == 303
    with db.read() as session:
        sub_id = session.scalar(select(Subscription.id).where(Subscription.account_id == account.id))
        service_id = session.scalar(select(SubscriptionService.id).where(SubscriptionService.subscription_id == sub_id))
    url = f"/subscriptions/{sub_id}"
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"{url}/services", {"product": "", "quantity": "lots", "start_on": "soon",
                                                "pay_with_credits": "1"}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "add-service")
    assert error_of(form, "product") == "Choose a subscription service."
    assert error_of(form, "quantity") == "Quantity must be a whole number, like 14."
    assert "choose a day" in error_of(form, "start_on")
    assert 'value="lots"' in form and "checked" in form
    # The other forms of the page are untouched.
    assert messages(form_of(bad.text, "change-quantity")) == [] and messages(form_of(bad.text, "remove-services")) == []
    plain(bad.text)
    bad = post_form(client, f"{url}/change-quantity", {"service_id": "", "quantity": "0"}, page=url)
    form = form_of(bad.text, "change-quantity")
    assert error_of(form, "service_id") == "Choose the service."
    assert error_of(form, "quantity") == "Quantity must be at least 1."
    bad = post_form(client, f"{url}/remove-services", {"service_id": "", "action": "pause", "effective_on": "x"},
                    page=url)
    form = form_of(bad.text, "remove-services")
    assert error_of(form, "service_id") == "Choose the service to remove."
    assert error_of(form, "action") == "Choose the action type Remove service."
    assert "choose a day" in error_of(form, "effective_on")
    # The service's own refusal: next to the effective day, with the day typed kept.
    db_bill = post_form(client, f"{url}/bill", {"as_of": "2027-02-01"}, page=url)
    assert db_bill.status_code == 303
    before = workspace_state(db, world.workspace_id)
    # (A removal inside a billed period is taken now, with a credit note: the add-service form's start instead.)
    bad = post_form(client, f"{url}/services", {"product": "fibre", "quantity": "2", "start_on": "2020-02-10"},
                    page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "add-service")
    assert "before the subscription" in error_of(form, "start_on")
    assert 'value="2020-02-10"' in form and 'value="2"' in form
    plain(bad.text)
    bad = post_form(client, f"{url}/suspend", {"on": "tomorrow"}, page=url)
    assert "choose a day" in error_of(form_of(bad.text, "sub-suspend-form"), "on")
    bad = client.post(f"{url}/bill-preview", data={"as_of": "someday", "csrf_token": re.search(
        r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)})
    assert bad.status_code == 422
    assert "choose a day" in error_of(form_of(bad.text, "bill-preview-form"), "as_of")
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before


def test_wallet_and_payment_preference_forms(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Wallet shop")
    db.write(lambda s: wallets.open_wallet(s, account.id, actor=actor))
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"{url}/wallet/top-up", {"amount": "12.345", "method": "cheque",
                                                     "reference": "R" * 201}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "wallet-top-up")
    assert "more decimals than AUD" in error_of(form, "amount")
    assert error_of(form, "method") == "Received by: choose from the list."
    assert "200 characters" in error_of(form, "reference")
    assert 'value="12.345"' in form
    assert messages(form_of(bad.text, "wallet-refund")) == []
    plain(bad.text)
    bad = post_form(client, f"{url}/wallet/refund", {"amount": "0", "reason": ""}, page=url)
    form = form_of(bad.text, "wallet-refund")
    assert error_of(form, "amount") == "The amount must be more than zero."
    assert error_of(form, "reason") == "Reason is required."
    # More than the wallet has: the service's refusal, next to the amount.
    bad = post_form(client, f"{url}/wallet/refund", {"amount": "5.00", "reason": "goodwill"}, page=url)
    assert bad.status_code == 409
    form = form_of(bad.text, "wallet-refund")
    assert "is more" in error_of(form, "amount") and 'value="goodwill"' in form
    plain(bad.text)
    bad = post_form(client, f"{url}/payment-preferences", {"kind": "bank_transfer", "opt_in_purchases": "1"}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "preference-add")
    assert "Only card" in error_of(form, "opt_in_purchases")
    assert 'value="bank_transfer" selected' in form
    plain(bad.text)
    bad = post_form(client, f"{url}/payment-preferences", {"kind": "cheque"}, page=url)
    assert error_of(form_of(bad.text, "preference-add"), "kind") == "Pay by: choose from the list."
    assert workspace_state(db, world.workspace_id) == before


def test_card_token_next_to_its_field(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Card shop")
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    assert post_form(client, f"{url}/payment-preferences", {"kind": "card"}, page=url).status_code == 303
    page = client.get(url).text
    pref_id = re.search(r'id="card-register-([^"]+)"', page).group(1)
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"/payment-preferences/{pref_id}/cards", {"card_token": "4242 4242 4242 4242"}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, f"card-register-{pref_id}")
    assert "card numbers are never typed here" in error_of(form, "card_token")
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before


def test_asset_forms(web, db, world):
    actor = master_actor(db, world.workspace_id)
    configure(db, actor=actor)
    account = make_account(db, actor=actor, customer_id=world.customer_id, name="Shop")
    modem = db.write(lambda s: assets.import_asset(s, as_.AssetImport(account_id=account.id, description="Modem"),
                                                   actor=actor).id)
    client = logged_in(web, world.master_email)
    url = f"/accounts/{account.id}"
    before = workspace_state(db, world.workspace_id)
    bad = post_form(client, f"{url}/assets/transfer", {"to_account_id": "", "note": "N" * 2001}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "assets-actions")
    assert "Choose one or more assets" in error_of(form, "asset_id")
    assert error_of(form, "to_account_id") == "Choose the account that becomes the owner."
    assert "2000 characters" in error_of(form, "note")
    plain(bad.text)
    # The service's refusal about the chosen asset, next to the list, the asset still ticked.
    bad = post_form(client, f"{url}/assets/return", {"asset_id": [modem], "note": "back"}, page=url)
    assert bad.status_code == 409
    form = form_of(bad.text, "assets-actions")
    assert "stays with the account" in error_of(form, "asset_id")
    assert f'value="{modem}"' in form and "checked" in form.split(f'value="{modem}"', 1)[1][:80]
    assert 'value="back"' in form
    plain(bad.text)
    bad = post_form(client, f"{url}/assets/import", {"description": "", "serial_number": "S" * 201,
                                                     "warranty_ends_on": "next year", "note": "kept"}, page=url)
    assert bad.status_code == 422
    form = form_of(bad.text, "asset-import")
    assert error_of(form, "description") == "Say what the item is (e.g. Modem)."
    assert "200 characters" in error_of(form, "serial_number")
    assert "not a date" in error_of(form, "warranty_ends_on")
    assert 'value="kept"' in form and 'value="next year"' in form
    plain(bad.text)
    assert workspace_state(db, world.workspace_id) == before
