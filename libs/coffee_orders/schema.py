"""The order: one pydantic model for the ingest API, the Kafka wire format and the Flink job.

Strict on purpose: a wrong type, an unknown or a missing field is an error, never a guess, so
what reaches Kafka is exactly what the tests and the dashboard expect. The wire format is the
JSON of :func:`to_wire` (the field names below, ``placed_at`` in RFC 3339 with its offset).

The ``placed_at`` window (not in the future, not older than a horizon) depends on *when* an
order is checked, so it is applied only when a :class:`Window` is passed in the validation
context (:func:`parse_order` does that); the Flink job validates without one, because an
order accepted at ingest must not turn invalid while it waits in Kafka.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_ITEMS = 200
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE_CENTS = 100_000_000  # one million in major units: a wholesale pallet, not a typo
MAX_FUTURE = timedelta(minutes=5)  # tolerated clock skew of a till
DEFAULT_HORIZON = timedelta(days=7)  # the orders topic's retention

Channel = Literal["counter", "app", "market", "wholesale"]
Category = Literal["drink", "beans", "food", "merch"]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]

# Active ISO 4217 currency codes (precious metals, test and "no currency" codes left out).
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())

# RFC 3339 date-time (section 5.6): seconds required, offset required. Pydantic alone would also
# take "2024-05-04 09:15Z" or a Unix number; the wire format is stricter than that.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)

# A store id: also the dashboard's store filter and the Redis key part, so it is defined here once.
STORE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
StoreId = Annotated[str, StringConstraints(pattern=STORE_ID_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
# No control characters: Postgres refuses NUL in text (a history write that can never succeed),
# and a line break or tab in a product name is a producer bug, not a name.
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


@dataclass(frozen=True)
class Window:
    """When an order may have been placed: ``now - horizon <= placed_at <= now + max_future``."""

    now: datetime
    horizon: timedelta = DEFAULT_HORIZON
    max_future: timedelta = MAX_FUTURE


def placed_at_problem(placed_at: datetime, window: Window) -> str | None:
    """Why ``placed_at`` is outside ``window``, or None when it is inside. Pure, for unit tests."""
    if placed_at > window.now + window.max_future:
        return f"placed_at is more than {_human(window.max_future)} in the future"
    if placed_at < window.now - window.horizon:
        return f"placed_at is older than the accepted horizon of {_human(window.horizon)}"
    return None


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sku: Sku
    name: Text
    category: Category
    origin: Text | None = Field(None, description='The coffee, e.g. "Guatemala Honey"; absent for non-coffee lines.')
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    unit_price_cents: int = Field(ge=0, le=MAX_UNIT_PRICE_CENTS)

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Order(BaseModel):
    """One order as a till, the app or a wholesale integration sends it (the idempotency key is ``message_id``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    message_id: UUID = Field(description="Idempotency key chosen by the client; a resend keeps it.")
    store_id: StoreId
    # Lax for pydantic (a before-validator hands it a Python str), strict by _rfc3339 below.
    placed_at: AwareDatetime = Field(strict=False,
                                     description="RFC 3339 with offset, e.g. 2025-03-01T08:15:02.120+01:00.")
    channel: Channel
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")
    items: list[OrderItem] = Field(min_length=1, max_length=MAX_ITEMS)
    total_cents: int = Field(ge=0, description="Must equal the sum of quantity * unit_price_cents.")

    @field_validator("placed_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("datetime_type", "placed_at must be a string (RFC 3339 date-time with offset)")
        if not _RFC3339.fullmatch(value):
            raise PydanticCustomError(
                "rfc3339", "placed_at must be an RFC 3339 date-time with offset, e.g. 2025-03-01T08:15:02+01:00"
            )
        return value

    @field_validator("placed_at")
    @classmethod
    def _in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        window = info.context.get("window") if isinstance(info.context, dict) else None
        if isinstance(window, Window) and (problem := placed_at_problem(value, window)):
            raise PydanticCustomError("placed_at_window", problem)
        return value

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in ISO_4217:
            raise PydanticCustomError("currency", "{value} is not an ISO 4217 currency code", {"value": value})
        return value

    @field_validator("total_cents")
    @classmethod
    def _total_adds_up(cls, value: int, info: ValidationInfo) -> int:
        # A field validator (not a model one) so the error names total_cents; skipped when the
        # items themselves are invalid, because their errors say more.
        items: list[OrderItem] | None = info.data.get("items")
        if items is not None:
            lines = sum(item.line_total_cents for item in items)
            if lines != value:
                raise PydanticCustomError(
                    "total_mismatch", "total_cents is {total} but the lines add up to {lines}",
                    {"total": value, "lines": lines},
                )
        return value


def parse_order(data: bytes | str, window: Window | None = None) -> Order:
    """Validate one order from its JSON text; raises ``pydantic.ValidationError``."""
    return Order.model_validate_json(data, context={"window": window} if window else None)


def to_wire(order: Order) -> bytes:
    """The Kafka record value: compact JSON, fields in schema order, ``origin`` always present."""
    return order.model_dump_json().encode()


def from_wire(value: bytes) -> Order:
    """Read a record written by :func:`to_wire` (no time window: it was checked at ingest)."""
    return parse_order(value)


def json_schema() -> dict[str, Any]:
    """The order's JSON Schema (draft 2020-12), as served in the ingest service's OpenAPI document."""
    return Order.model_json_schema(ref_template="#/components/schemas/{model}")


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
