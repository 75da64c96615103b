"""``POST /v1/events``: one event or a batch, answered once committed."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import Discriminator, Tag

from custseg.service.context import ServiceDep, guard
from custseg.service.events import Event, EventBatch
from custseg.service.schemas import EventsResult
from custseg.service.writer import ServiceBusy

router = APIRouter(tags=["events"])


def _kind(value) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "event"


Body_ = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[Event, Tag("event")],
    Discriminator(_kind),
    Body(openapi_examples={
        "order": {"summary": "One order", "value": {
            "type": "order", "event_id": "evt-1001", "customer_id": "C000042", "time": "2024-12-02T10:15:00Z",
            "order_id": "O-77812", "currency": "EUR", "total": 59.9,
            "items": [{"product_id": "P0113", "category": "books", "quantity": 2, "unit_price": 29.95}]}},
        "batch": {"summary": "A batch", "value": {"events": [
            {"type": "product_view", "event_id": "evt-1002", "customer_id": "C000042",
             "time": "2024-12-02T10:01:00Z", "session_id": "s-9", "product_id": "P0113"},
            {"type": "email_open", "event_id": "evt-1003", "customer_id": "C000042",
             "time": "2024-12-02T08:00:00Z", "campaign_id": "NL-2024-12"}]}},
    }),
]


@router.post("/events", response_model=EventsResult, dependencies=guard("write"),
             summary="Record events and re-evaluate the customers' segments",
             responses={503: {"description": "Busy or not confirmed in time: send the same events again."}})
async def post_events(body: Body_, service: ServiceDep) -> dict:
    """Record one event or a batch (``{"events": [...]}``).

    The answer comes once the events are committed to the store: per event its status
    (``applied``, ``duplicate`` for an event id received before, ``already_stored`` when
    its order / event / response id was ingested before), and per customer the segments
    they are in now in every live segmentation, and which changed. Sending an event again
    (same ``event_id``) is safe: it is applied at most once.
    """
    events = body.events if isinstance(body, EventBatch) else [body]
    where = ("body", "events") if isinstance(body, EventBatch) else ("body",)
    _check(events, where, service.limits)
    try:
        future = service.writer.submit(events)
    except ServiceBusy as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from None
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), service.limits.request_timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise HTTPException(503, detail=f"the events were not confirmed within {service.limits.request_timeout:g} s; "
                                        "send them again with the same event ids (each is applied at most once)",
                            headers={"Retry-After": "1"}) from None
    except ServiceBusy as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from None


def _check(events: list, where: tuple, limits) -> None:
    """Limits a model cannot express: batch size, repeated ids, times in the future."""
    errors = []
    if len(events) > limits.max_batch:
        errors.append({"type": "too_long", "loc": where, "input": None,
                       "msg": f"at most {limits.max_batch:,} events per request, got {len(events):,}"})
    latest = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + limits.max_future
    first: dict[str, int] = {}
    for n, e in enumerate(events):
        loc = (*where, n) if len(where) > 1 else where
        if e.event_id in first:
            errors.append({"type": "value_error", "loc": (*loc, "event_id"), "input": e.event_id,
                           "msg": f"event_id {e.event_id!r} appears twice in the request "
                                  f"(events {first[e.event_id]} and {n})"})
        first.setdefault(e.event_id, n)
        if e.time > latest:
            errors.append({"type": "value_error", "loc": (*loc, "time"), "input": e.time.isoformat(),
                           "msg": f"time {e.time.isoformat()} is more than {limits.max_future} in the future"})
    if errors:
        raise RequestValidationError(errors)
