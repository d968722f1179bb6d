"""Customers' address books. An account's billing address is chosen from its customer's addresses.

Who may: every staff user reads them; masters and managers add and change them (as they create and
change customers)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditdesk import audit, clock
from creditdesk.audit import Actor, snapshot
from creditdesk.billing import schemas
from creditdesk.billing.models import CustomerAddress
from creditdesk.errors import InvalidInput
from creditdesk.ids import new_id
from creditdesk.parties.models import Customer
from creditdesk.parties.service import require_manager
from creditdesk.repository import get_in_workspace

try:  # ISO 3166-1 alpha-2 territories from the CLDR data babel ships (a direct dependency).
    from babel import Locale

    _COUNTRIES = frozenset(code for code in Locale("en").territories if len(code) == 2 and code.isalpha()
                           and code not in ("EU", "EZ", "UN", "QO", "ZZ"))
except Exception:  # pragma: no cover - babel is installed with creditdesk
    _COUNTRIES = frozenset()


def check_country(code: str) -> str:
    value = (code or "").strip().upper()
    if len(value) != 2 or (_COUNTRIES and value not in _COUNTRIES):
        raise InvalidInput(f"{code!r} is not an ISO 3166-1 alpha-2 country code (for example AU, NZ, GB).",
                           code="unknown_country", field="country")
    return value


def list_addresses(session: Session, customer_id: str, *, actor: Actor) -> list[CustomerAddress]:
    get_in_workspace(session, Customer, actor.workspace_id, customer_id)
    return list(session.scalars(select(CustomerAddress).where(
        CustomerAddress.workspace_id == actor.workspace_id, CustomerAddress.customer_id == customer_id)
        .order_by(CustomerAddress.is_primary.desc(), CustomerAddress.id)))


def get_address(session: Session, customer_id: str, address_id: str, *, actor: Actor,
                for_update: bool = False) -> CustomerAddress:
    address = get_in_workspace(session, CustomerAddress, actor.workspace_id, address_id, label="address",
                               for_update=for_update)
    if address.customer_id != customer_id:
        get_in_workspace(session, CustomerAddress, "", address_id, label="address")  # not found, as elsewhere
    return address


def _unset_other_primaries(session: Session, address: CustomerAddress) -> None:
    """One primary address per customer and type."""
    session.execute(update(CustomerAddress).where(
        CustomerAddress.workspace_id == address.workspace_id, CustomerAddress.customer_id == address.customer_id,
        CustomerAddress.type == address.type, CustomerAddress.id != address.id,
        CustomerAddress.is_primary.is_(True)).values(is_primary=False))


def create_address(session: Session, customer_id: str, data: schemas.AddressCreate, *,
                   actor: Actor) -> CustomerAddress:
    require_manager(actor, "change customers' addresses")
    customer = get_in_workspace(session, Customer, actor.workspace_id, customer_id)
    now = clock.now()
    address = CustomerAddress(id=new_id("adr"), workspace_id=actor.workspace_id, customer_id=customer.id,
                              type=data.type, line1=data.line1, line2=data.line2 or None, city=data.city,
                              region=data.region or None, postcode=data.postcode or None,
                              country=check_country(data.country), is_primary=data.is_primary,
                              created_at=now, updated_at=now)
    session.add(address)
    session.flush()
    if address.is_primary:
        _unset_other_primaries(session, address)
    audit.record(session, actor=actor, action="address.create", object_type="address", object_id=address.id,
                 after=snapshot(address))
    return address


def update_address(session: Session, customer_id: str, address_id: str, data: schemas.AddressUpdate, *,
                   actor: Actor) -> CustomerAddress:
    address = get_address(session, customer_id, address_id, actor=actor, for_update=True)
    require_manager(actor, "change customers' addresses")
    before = snapshot(address)
    for name in data.model_fields_set:
        value = getattr(data, name)
        if name in ("type", "line1", "city", "country", "is_primary") and value is None:
            raise InvalidInput(f"{name} cannot be null.", code="field_not_nullable", field=name)
        if name == "country":
            value = check_country(value)
        elif isinstance(value, str) and name in ("line2", "region", "postcode"):
            value = value or None
        setattr(address, name, value)
    address.updated_at = clock.now()
    session.flush()
    if address.is_primary:
        _unset_other_primaries(session, address)
    audit.record(session, actor=actor, action="address.update", object_type="address", object_id=address.id,
                 before=before, after=snapshot(address))
    return address


def one_line(address: CustomerAddress | None) -> str:
    """The address on one line, for lists and pickers."""
    if address is None:
        return ""
    parts = [address.line1, address.line2, address.city, address.region, address.postcode, address.country]
    return ", ".join(p for p in parts if p)
