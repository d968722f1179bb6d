"""A workspace's billing settings (default currency, multi-currency, enabled currencies, default credit
terms, accounting period settings), dated conversion rates, and `convert`.

Until a master saves the settings the workspace has none: accounts cannot be opened (409
`billing_settings_required`), because no currency is assumed for anybody. Writing settings and rates is
for masters (finance)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation, localcontext

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk import audit, clock, currencies
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import schemas
from creditdesk.billing.models import RATE_DECIMALS, RATE_SCALE, BillingSettings, ConversionRate
from creditdesk.errors import Conflict, InvalidInput, NotPermitted
from creditdesk.ids import new_id
from creditdesk.pagination import Page, paginate

DEFAULT_CREDIT_PERIOD_DAYS = 30
MAX_RATE = Decimal(10**6)


def require_finance(actor: Actor, what: str) -> None:
    """Billing settings, conversion rates, credit periods and period closing are the masters' (finance)."""
    if not actor.is_master:
        raise NotPermitted(f"Only master users may {what}.")


def get_settings(session: Session, workspace_id: str, *, for_update: bool = False,
                 for_share: bool = False) -> BillingSettings | None:
    stmt = select(BillingSettings).where(BillingSettings.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    elif for_share:
        stmt = stmt.with_for_update(read=True)
    return session.scalar(stmt)


def require_settings(session: Session, workspace_id: str, *, for_update: bool = False) -> BillingSettings:
    settings = get_settings(session, workspace_id, for_update=for_update)
    if settings is None:
        raise Conflict("Set the workspace's billing settings (default currency) first: PATCH /v1/billing/settings.",
                       code="billing_settings_required")
    return settings


def allowed_currencies(settings: BillingSettings) -> list[str]:
    """Currencies a new account may have: the default, plus the enabled ones when multi-currency is on."""
    if not settings.multi_currency:
        return [settings.default_currency]
    return [settings.default_currency] + [c for c in settings.enabled_currencies if c != settings.default_currency]


def settings_out(settings: BillingSettings | None) -> schemas.BillingSettingsOut:
    if settings is None:
        return schemas.BillingSettingsOut(configured=False, default_currency=None, multi_currency=False,
                                          enabled_currencies=[], credit_terms=None, accounting_periods=None)
    periods = None
    if settings.period_frequency:
        periods = schemas.PeriodSettingsOut(frequency=settings.period_frequency, start_date=settings.period_start)
    return schemas.BillingSettingsOut(
        configured=True, default_currency=settings.default_currency, multi_currency=settings.multi_currency,
        enabled_currencies=list(settings.enabled_currencies or []),
        credit_terms=schemas.CreditTerms(credit_period_days=settings.credit_period_days,
                                         min_days=settings.credit_period_min_days,
                                         max_days=settings.credit_period_max_days),
        accounting_periods=periods)


def update_settings(session: Session, data: schemas.BillingSettingsUpdate, *, actor: Actor) -> BillingSettings:
    require_finance(actor, "change billing settings")
    settings = get_settings(session, actor.workspace_id, for_update=True)
    before = snapshot(settings) if settings is not None else None
    now = clock.now()
    if settings is None:
        if data.default_currency is None:
            raise InvalidInput("The first billing settings need a default_currency.", code="default_currency_required",
                               field="default_currency")
        settings = BillingSettings(
            workspace_id=actor.workspace_id, default_currency=currencies.check_currency(data.default_currency),
            multi_currency=False, enabled_currencies=[], credit_period_days=DEFAULT_CREDIT_PERIOD_DAYS,
            credit_period_min_days=DEFAULT_CREDIT_PERIOD_DAYS, credit_period_max_days=DEFAULT_CREDIT_PERIOD_DAYS,
            next_account_number=1, created_at=now, updated_at=now)
        session.add(settings)
    if data.default_currency is not None:
        settings.default_currency = currencies.check_currency(data.default_currency, field="default_currency")
    if data.multi_currency is not None:
        settings.multi_currency = data.multi_currency
    if data.enabled_currencies is not None:
        settings.enabled_currencies = sorted({currencies.check_currency(c, field="enabled_currencies")
                                              for c in data.enabled_currencies})
    if data.credit_terms is not None:
        terms = data.credit_terms
        if not terms.min_days <= terms.credit_period_days <= terms.max_days:
            raise InvalidInput("The credit period must lie inside its proximity range (min_days <= "
                               "credit_period_days <= max_days).", code="invalid_credit_terms", field="credit_terms")
        settings.credit_period_days = terms.credit_period_days
        settings.credit_period_min_days = terms.min_days
        settings.credit_period_max_days = terms.max_days
    if data.accounting_periods is not None:
        if settings.period_frequency is not None:
            raise Conflict("The accounting period settings are set once and cannot be changed.",
                           code="period_settings_locked")
        settings.period_frequency = data.accounting_periods.frequency
        settings.period_start = data.accounting_periods.start_date
    settings.updated_at = now
    session.flush()
    audit.record(session, actor=actor, action="billing_settings.update", object_type="billing_settings",
                 object_id=actor.workspace_id, before=before, after=snapshot(settings))
    return settings


# --- conversion rates ----------------------------------------------------------------------------------

def parse_rate(text: str) -> int:
    """A decimal string as an exact integer of 10**-12 units; more decimals, zero or too large: invalid_rate."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InvalidInput(f"{text!r} is not a decimal number.", code="invalid_rate", field="rate") from None
    if not value.is_finite() or value <= 0 or value > MAX_RATE:
        raise InvalidInput(f"A rate is a positive number up to {MAX_RATE}.", code="invalid_rate", field="rate")
    scaled = value.scaleb(RATE_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"A rate has at most {RATE_DECIMALS} decimals.", code="invalid_rate", field="rate")
    return int(scaled)


def rate_text(rate_scaled: int) -> str:
    """The stored rate as the shortest exact decimal string (1635000000000 -> "1.635")."""
    text = format(Decimal(rate_scaled).scaleb(-RATE_DECIMALS), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def rate_out(rate: ConversionRate) -> schemas.ConversionRateOut:
    return schemas.ConversionRateOut(id=rate.id, from_currency=rate.from_currency, to_currency=rate.to_currency,
                                     rate=rate_text(rate.rate_scaled), valid_from=rate.valid_from,
                                     created_at=rate.created_at)


def create_rate(session: Session, data: schemas.ConversionRateCreate, *, actor: Actor) -> ConversionRate:
    require_finance(actor, "set conversion rates")
    source = currencies.check_currency(data.from_currency, field="from_currency")
    target = currencies.check_currency(data.to_currency, field="to_currency")
    if source == target:
        raise InvalidInput("A conversion rate is between two different currencies.", code="same_currency")
    scaled = parse_rate(data.rate)
    taken = session.scalar(select(ConversionRate.id).where(
        ConversionRate.workspace_id == actor.workspace_id, ConversionRate.from_currency == source,
        ConversionRate.to_currency == target, ConversionRate.valid_from == data.valid_from))
    if taken:
        # Rates are never edited: amounts already converted name the rate they used.
        raise Conflict(f"A {source}->{target} rate from {data.valid_from} exists ({taken}); rates are not "
                       "changed, add one from another date.", code="conversion_rate_exists", rate_id=taken)
    rate = ConversionRate(id=new_id("rate"), workspace_id=actor.workspace_id, from_currency=source,
                          to_currency=target, rate_scaled=scaled, valid_from=data.valid_from, created_at=clock.now())
    session.add(rate)
    session.flush()
    audit.record(session, actor=actor, action="conversion_rate.create", object_type="conversion_rate",
                 object_id=rate.id, after=snapshot(rate))
    return rate


def list_rates(session: Session, *, actor: Actor, limit: int | None = None, cursor: str | None = None,
               from_currency: str | None = None, to_currency: str | None = None) -> Page[ConversionRate]:
    stmt = select(ConversionRate).where(ConversionRate.workspace_id == actor.workspace_id)
    if from_currency:
        stmt = stmt.where(ConversionRate.from_currency == from_currency.upper())
    if to_currency:
        stmt = stmt.where(ConversionRate.to_currency == to_currency.upper())
    return paginate(session, stmt, id_column=ConversionRate.id, limit=limit, cursor=cursor, descending=True)


@dataclass(frozen=True)
class Conversion:
    """An amount converted, with the rate that did it (store `rate_id`, `rate_scaled`, `valid_from`)."""

    amount: int
    rate_id: str | None
    rate_scaled: int
    valid_from: date | None

    @property
    def rate(self) -> str:
        return rate_text(self.rate_scaled)


def convert(session: Session, workspace_id: str, amount_minor: int, from_ccy: str, to_ccy: str,
            on_date: date) -> Conversion:
    """`amount_minor` of `from_ccy` in minor units of `to_ccy`, at the latest rate of the pair valid on
    `on_date`, rounded once, half-up (currencies.round_half_up) after scaling between the two currencies'
    minor units. Only a rate of that direction applies (a bought and a sold rate differ, so the inverse
    of the other direction is never assumed); none: 409 `no_conversion_rate`."""
    source, target = currencies.check_currency(from_ccy), currencies.check_currency(to_ccy)
    if source == target:
        return Conversion(amount_minor, None, RATE_SCALE, None)
    rate = session.scalar(select(ConversionRate).where(
        ConversionRate.workspace_id == workspace_id, ConversionRate.from_currency == source,
        ConversionRate.to_currency == target, ConversionRate.valid_from <= on_date)
        .order_by(ConversionRate.valid_from.desc()).limit(1))
    if rate is None:
        raise Conflict(f"No {source}->{target} conversion rate valid on {on_date}. Add one: POST /v1/conversion-rates.",
                       code="no_conversion_rate", from_currency=source, to_currency=target, on_date=str(on_date))
    with localcontext() as context:
        context.prec = 60  # exact: 10**15 minor units times a rate of 18 digits fits in 60
        exact = (Decimal(amount_minor) * rate.rate_scaled / RATE_SCALE).scaleb(
            currencies.minor_units(target) - currencies.minor_units(source))
        converted = currencies.round_half_up(exact)
    return Conversion(converted, rate.id, rate.rate_scaled, rate.valid_from)
