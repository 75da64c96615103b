"""The events the live service accepts (``POST /v1/events``), as pydantic models.

Every event has a ``type``, a client ``event_id`` (unique across all event
types: a retried event is recognised by it and not counted twice), a
``customer_id`` and a ``time``. The types and the canonical rows they become:

============================  =============================================
``order``                     one row of ``orders`` and its ``items`` in
                              ``order_items``
``page_view``, ``product_view``, ``add_to_cart``, ``remove_from_cart``,
``checkout_start``, ``purchase``, ``search``, ``login``
                              one row of ``browsing_events``
``email_sent``, ``email_open``, ``email_click``, ``email_bounce``,
``email_unsubscribe``         one row of ``email_events`` (``sent``, ...)
``profile_update``            inserts or updates the customer's row of
                              ``customers`` (only the fields sent)
``survey_answer``             one row of ``survey_responses``
============================  =============================================

Values follow the conventions of ingestion: text is trimmed and an empty
text is a missing value, emails are lower-cased, numbers must be finite, a
time with a time zone is converted to UTC (a time without one is stored as
given). ``customer_id`` may be left out where ingestion allows it too: a
browsing event of a visitor who is not logged in carries an ``anonymous_id``
(the cleaning step attributes it to the customer seen on that device), and an
order, email event or survey answer may carry an ``email`` instead (joined to
the customer with that email; an order with neither is a guest order).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from custseg.store.schema import BROWSING_TYPES, EMAIL_TYPES, ORDER_STATUSES

MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000
MAX_ITEMS = 500
#: The earliest event time accepted.
EARLIEST = dt.datetime(1970, 1, 1)

EMAIL_EVENT_TYPES = tuple(f"email_{t}" for t in EMAIL_TYPES)


def _clean_text(value: str | None) -> str | None:
    """Trimmed text; an empty text is a missing value (as ingestion does)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _clean_email(value: str | None) -> str | None:
    value = _clean_text(value)
    return value.lower() if value is not None else None


Text = Annotated[str | None, Field(default=None, max_length=MAX_TEXT_CHARS), AfterValidator(_clean_text)]
Id = Annotated[str | None, Field(default=None, max_length=MAX_ID_CHARS), AfterValidator(_clean_text)]
Email = Annotated[str | None, Field(default=None, max_length=320), AfterValidator(_clean_email)]
Money = Annotated[float | None, Field(default=None, allow_inf_nan=False)]


def _required_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


RequiredId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_required_id)]


def utc_naive(value: dt.datetime) -> dt.datetime:
    """A timestamp as stored: UTC without a time zone when it had one, else as given."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class _Event(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT_CHARS)

    event_id: RequiredId = Field(description="The client's id of the event; a retried event is recognised by it.")
    customer_id: Id = Field(default=None, description="The store's customer id.")
    time: dt.datetime = Field(description="When it happened (ISO 8601; with a time zone it is stored in UTC).")

    @field_validator("time")
    @classmethod
    def _time(cls, value: dt.datetime) -> dt.datetime:
        value = utc_naive(value)
        if value < EARLIEST:
            raise ValueError(f"time {value.isoformat()} is before {EARLIEST.date().isoformat()}")
        return value

    @property
    def table(self) -> str:
        """The canonical table the event lands in."""
        raise NotImplementedError

    def payload(self) -> str:
        """The event as JSON, as kept in ``service_events.payload``."""
        return self.model_dump_json(exclude_none=True)


class OrderItem(BaseModel):
    """One order line."""

    model_config = ConfigDict(extra="forbid")

    product_id: Id = None
    product_name: Text = None
    category: Text = None
    quantity: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    unit_price: Money = None
    line_amount: Money = Field(default=None, description="Default: quantity * unit_price.")

    @model_validator(mode="after")
    def _amount(self) -> OrderItem:
        if self.line_amount is None:
            if self.unit_price is None:
                raise ValueError("an order line needs line_amount or unit_price")
            self.line_amount = self.quantity * self.unit_price
        return self


class OrderEvent(_Event):
    """An order (with its lines): one row of ``orders`` and one of ``order_items`` per line."""

    type: Literal["order"]
    order_id: Id = Field(default=None, description="Default: the event id.")
    email: Email = Field(default=None, description="Buyer email, joins a customer when customer_id is missing.")
    status: Literal[ORDER_STATUSES] = "completed"  # type: ignore[valid-type]
    currency: Annotated[str | None, Field(default=None, pattern=r"^\s*[A-Za-z]{3}\s*$"),
                        AfterValidator(_clean_text)] = None
    total: Money = Field(default=None, description="Amount paid after discount; default the sum of the lines.")
    discount: Money = None
    channel: Text = None
    items_count: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    items: list[OrderItem] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _total(self) -> OrderEvent:
        if self.order_id is None:
            self.order_id = self.event_id
        if self.currency is not None:
            self.currency = self.currency.upper()
        if self.total is None:
            if not self.items:
                raise ValueError("an order needs total or items")
            self.total = sum(i.line_amount for i in self.items)
        return self

    @property
    def table(self) -> str:
        return "orders"


class BrowsingEvent(_Event):
    """A visit event: one row of ``browsing_events``."""

    type: Literal[BROWSING_TYPES]  # type: ignore[valid-type]
    session_id: Id = None
    anonymous_id: Id = Field(default=None, description="Cookie or device id (for visitors not logged in).")
    product_id: Id = None
    category: Text = None
    search_query: Text = None

    @model_validator(mode="after")
    def _who(self) -> BrowsingEvent:
        if self.customer_id is None and self.anonymous_id is None:
            raise ValueError("a browsing event needs customer_id or anonymous_id")
        return self

    @property
    def table(self) -> str:
        return "browsing_events"


class EmailEvent(_Event):
    """An email engagement event: one row of ``email_events``."""

    type: Literal[EMAIL_EVENT_TYPES]  # type: ignore[valid-type]
    campaign_id: Id = None
    email: Email = None

    @model_validator(mode="after")
    def _who(self) -> EmailEvent:
        if self.customer_id is None and self.email is None:
            raise ValueError("an email event needs customer_id or email")
        return self

    @property
    def email_type(self) -> str:
        return self.type.removeprefix("email_")

    @property
    def table(self) -> str:
        return "email_events"


class ProfileUpdate(_Event):
    """New or changed customer attributes: only the fields sent are written to ``customers``."""

    type: Literal["profile_update"]
    customer_id: RequiredId
    email: Email = None
    first_name: Text = None
    last_name: Text = None
    signup_date: dt.date | None = None
    birth_date: dt.date | None = None
    age: int | None = Field(default=None, ge=0, le=150)
    gender: Text = None
    country: Text = None
    region: Text = None
    city: Text = None
    postal_code: Text = None
    acquisition_channel: Text = None
    loyalty_member: bool | None = None
    email_consent: bool | None = None
    attributes: dict[str, Any] | None = Field(default=None, description="Free attributes (a JSON object).")

    #: Fields that are columns of ``customers``.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "email", "first_name", "last_name", "signup_date", "birth_date", "age", "gender", "country", "region",
        "city", "postal_code", "acquisition_channel", "loyalty_member", "email_consent", "attributes")

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict | None) -> dict | None:
        if value is not None and len(json.dumps(value, default=str)) > 10 * MAX_TEXT_CHARS:
            raise ValueError(f"attributes are longer than {10 * MAX_TEXT_CHARS} characters as JSON")
        return value

    def payload(self) -> str:
        """The event as JSON; a field sent as null stays in it (it clears the column)."""
        return self.model_dump_json(exclude_unset=True)

    def changes(self) -> dict[str, Any]:
        """The customer columns this update sets (the fields given, even when given as null)."""
        out = {}
        for name in self.COLUMNS:
            if name in self.model_fields_set:
                value = getattr(self, name)
                out[name] = json.dumps(value, default=str) if name == "attributes" and value is not None else value
        return out

    @property
    def table(self) -> str:
        return "customers"


class SurveyAnswer(_Event):
    """A survey answer: one row of ``survey_responses``."""

    type: Literal["survey_answer"]
    response_id: Id = Field(default=None, description="Default: the event id.")
    email: Email = None
    nps: int | None = Field(default=None, ge=0, le=10)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    interests: list[Annotated[str, Field(max_length=200)]] | str | None = None

    @model_validator(mode="after")
    def _fill(self) -> SurveyAnswer:
        if self.response_id is None:
            self.response_id = self.event_id
        if self.customer_id is None and self.email is None:
            raise ValueError("a survey answer needs customer_id or email")
        return self

    @property
    def interests_text(self) -> str | None:
        if self.interests is None:
            return None
        values = self.interests.split(",") if isinstance(self.interests, str) else self.interests
        values = [v.strip() for v in values if v.strip()]
        return ",".join(values) or None

    @property
    def table(self) -> str:
        return "survey_responses"


Event = Annotated[
    OrderEvent | BrowsingEvent | EmailEvent | ProfileUpdate | SurveyAnswer,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = ("order", *BROWSING_TYPES, *EMAIL_EVENT_TYPES, "profile_update", "survey_answer")


class EventBatch(BaseModel):
    """Several events in one request, applied together (at most ``max_batch`` of them)."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1)


__all__ = [
    "EVENT_TYPES", "BrowsingEvent", "EmailEvent", "Event", "EventBatch", "OrderEvent", "OrderItem",
    "ProfileUpdate", "SurveyAnswer", "utc_naive",
]
