from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Role = Literal["master", "manager", "member"]
Permission = Literal["send_sms", "manage_office_credits", "manage_packs", "consume_credits", "manage_users"]


class Input(BaseModel):
    """Request bodies refuse fields they do not know: no mass assignment of ids, workspace or role."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value, info: ValidationInfo):
        # Pydantic's lax mode reads true/false as 1/0; for a quantity or a rate that is a client bug,
        # never an amount. (Strict mode would also refuse the strings that forms and CSV rows send.)
        if isinstance(value, bool) and info.field_name and _takes_int(cls.model_fields[info.field_name].annotation):
            raise PydanticCustomError("int_type", "Input should be a valid integer, not true or false")
        if isinstance(value, (float, str)) and info.field_name and _takes_int(
                cls.model_fields[info.field_name].annotation) and not _WHOLE.fullmatch(str(value)):
            # Lax mode reads 10.0 and "10.00" as 10: an integrator sending dollars where minor units are asked
            # would record 10 cents without an error. Integers are whole numbers, written without a point.
            raise PydanticCustomError(
                "int_from_float", "Input should be a whole number without a decimal point; amounts are in the "
                "smallest unit (cents: 1050 for 10.50)")
        if info.field_name and _takes(cls.model_fields[info.field_name].annotation, (date, datetime)):
            return no_number_for_a_date(value)
        return value


def _takes(annotation, kinds: tuple[type, ...]) -> bool:
    if annotation in kinds:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(arg in kinds for arg in typing.get_args(annotation))
    return False


_WHOLE = re.compile(r"\s*[-+]?\d+\s*")


def _takes_int(annotation) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return int in args and bool not in args
    return False


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


_BASIC_DATE = re.compile(r"\s*(\d{4})(\d{2})(\d{2})\s*")


def no_number_for_a_date(value):
    """Pydantic's lax mode reads a number (or a string of digits) as seconds since 1970; the API documents
    dates and instants as ISO 8601 text, so a number is a client bug, refused rather than guessed. Eight digits
    are ISO 8601's basic form of a date (20260115: 15 January 2026), read as such."""
    basic = _BASIC_DATE.fullmatch(value) if isinstance(value, str) else None
    if basic is not None:
        try:
            return date(int(basic[1]), int(basic[2]), int(basic[3])).isoformat()
        except ValueError:
            raise PydanticCustomError("date_format", "{value} is not a day of the calendar (YYYYMMDD)",
                                      {"value": value.strip()}) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            or isinstance(value, str) and _NUMBER.fullmatch(value):
        raise PydanticCustomError("date_format", "Write a date as YYYY-MM-DD or an instant as ISO 8601 "
                                  "(2026-12-03T10:00:00Z), not a number")
    return value


# For query parameters (bodies get the same check from Input): ISO 8601 only.
Instant = Annotated[datetime, BeforeValidator(no_number_for_a_date)]
Day = Annotated[date, BeforeValidator(no_number_for_a_date)]


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Name = Field(min_length=1, max_length=200)


class WorkspaceOut(Output):
    id: str
    name: str
    settings: dict
    time_zone: str = Field(default="UTC", description="IANA time zone: a bare date (an expiry on 2027-01-31) is "
                                                      "that day's end here; the back office shows times in it.")
    created_at: datetime


class WorkspaceUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64, description="IANA name, e.g. Australia/Sydney.")


class CustomerCreate(Input):
    name: str = Name
    email: EmailStr | None = None
    external_ref: str | None = Field(default=None, max_length=200)
    notes: str = Field(default="", max_length=10_000)
    kyc_profile: str | None = Field(default=None, max_length=40,
                                    description="The customer's KYC profile (free text, e.g. verified); "
                                                "override credit limit rules can name it.")
    language: str | None = Field(default=None, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
                                 description="The customer's language for expiry emails (e.g. de, fr-CA); "
                                             "none: the workspace's default.")


class CustomerUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    external_ref: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=10_000)
    kyc_profile: str | None = Field(default=None, max_length=40,
                                    description="The customer's KYC profile (free text, e.g. verified); "
                                                "override credit limit rules can name it.")
    language: str | None = Field(default=None, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
                                 description="The customer's language for expiry emails (e.g. de, fr-CA); "
                                             "none: the workspace's default.")


class CustomerOut(Output):
    id: str
    object: Literal["customer"] = "customer"
    name: str
    email: str | None
    external_ref: str | None
    notes: str
    kyc_profile: str | None = None
    language: str | None = None
    created_at: datetime
    updated_at: datetime


class OfficeCreate(Input):
    name: str = Name
    customer_id: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None


class OfficeUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None


class OfficeOut(Output):
    id: str
    object: Literal["office"] = "office"
    name: str
    customer_id: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime


class UserCreate(Input):
    name: str = Name
    email: EmailStr | None = None
    is_staff: bool = False
    role: Role = "member"
    permissions: list[Permission] = Field(default_factory=list)
    primary_office_id: str | None = Field(default=None, max_length=40)
    additional_office_ids: list[str] = Field(default_factory=list, max_length=100)
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    role: Role | None = None
    permissions: list[Permission] | None = None
    is_active: bool | None = None
    primary_office_id: str | None = Field(default=None, max_length=40)
    additional_office_ids: list[str] | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    # Needed to change one's own password or email; never stored.
    current_password: str | None = Field(default=None, max_length=1000)


class UserOut(Output):
    id: str
    object: Literal["user"] = "user"
    name: str
    email: str | None
    is_staff: bool
    role: str
    permissions: list[str]
    effective_permissions: list[str] = Field(default_factory=list, description=(
        "What the user may do: a master may do everything, whatever `permissions` holds."))
    is_active: bool
    primary_office_id: str | None
    additional_office_ids: list[str] = Field(default_factory=list)
    team_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class TeamCreate(Input):
    name: str = Name
    office_id: str | None = Field(default=None, max_length=40)
    member_ids: list[str] = Field(default_factory=list, max_length=1000)


class TeamUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    office_id: str | None = Field(default=None, max_length=40)
    member_ids: list[str] | None = Field(default=None, max_length=1000)


class TeamOut(Output):
    id: str
    object: Literal["team"] = "team"
    name: str
    office_id: str | None
    member_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(Input):
    name: str = Name
    user_id: str | None = Field(default=None, max_length=40)


class ApiKeyUpdate(Input):
    name: str = Name


class ApiKeyOut(Output):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    user_id: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str | None = Field(description="The secret key. Shown once (null in an idempotent replay); "
                                        "only a hash is stored.")
