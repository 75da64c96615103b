"""Response models of the HTTP API (they shape the OpenAPI documentation at ``/docs``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class EventStatus(BaseModel):
    event_id: str
    status: Literal["applied", "duplicate", "already_stored"] = Field(
        description="applied: stored now; duplicate: this event id was received before (nothing done); "
                    "already_stored: new event id, but its order / event / response id is already in the store.")


class Membership(BaseModel):
    run_id: str
    method: str
    label: str = Field(description="What the segmentation divides customers by.")
    segments: list[str] = Field(description="The customer's segments now (one, or several for tag runs).")
    previous: list[str] = Field(description="Before this request's events.")
    changed: bool


class CustomerSegments(BaseModel):
    customer_id: str
    evaluated: bool = Field(description="Re-evaluated by these events (false: their current segments).")
    segments: list[Membership]


class EventsResult(BaseModel):
    received: int
    applied: int
    duplicate: int
    already_stored: int
    as_of: dt.date | None = Field(description="As-of date of the re-evaluated customers' features.")
    events: list[EventStatus]
    customers: list[CustomerSegments]


class Play(BaseModel):
    segment: str
    play: str
    objective: str | None = None
    actions: list[str] = []
    channel: str | None = None
    offer: str | None = None
    cadence: str | None = None
    service_level: str | None = None
    kpi: str | None = None


class CustomerSegment(BaseModel):
    run_id: str
    method: str
    label: str
    segments: list[str]
    since: dt.datetime | None = None
    cause: str | None = Field(None, description="The event id (or batch:<run_id>) that put them there.")
    plays: list[Play]


class Clv(BaseModel):
    source: Literal["live", "batch"]
    as_of: dt.date | None
    p_alive: float | None
    expected_purchases: float | None
    expected_spend: float | None
    clv: float | None
    horizon_days: float | None
    model_id: str | None
    spend_model_id: str | None


class Recommendation(BaseModel):
    rank: int
    product_id: str | None
    product_name: str | None
    category: str | None
    score: float | None
    reason: str | None


class Customer(BaseModel):
    customer_id: str
    profile: dict[str, Any] = Field(description="The customer's row of `customers` (empty when unknown).")
    features: dict[str, Any]
    features_as_of: dt.date | None
    features_source: Literal["live", "batch"] | None
    segments: list[CustomerSegment]
    clv: Clv | None
    recommendations: list[Recommendation]
    recommendation_run_id: str | None


class SegmentSize(BaseModel):
    segment: str
    customers: int
    share: float


class Segmentation(BaseModel):
    run_id: str
    method: str
    label: str
    live_key: str
    as_of: dt.date | None = Field(description="As-of date of the batch run the live segments started from.")
    created_at: dt.datetime | None
    customers: int
    segments: list[SegmentSize]


class NotLiveRun(BaseModel):
    run_id: str
    reason: str


class Segmentations(BaseModel):
    clock: dt.date = Field(description="As-of date of features computed now.")
    segmentations: list[Segmentation]
    not_live: list[NotLiveRun]


class SegmentProfile(BaseModel):
    segment: str
    customers: int
    share: float
    revenue_share: float | None
    avg_recency_days: float | None
    avg_orders_count: float | None
    avg_net_revenue: float | None
    avg_aov: float | None
    avg_clv: float | None
    avg_p_alive: float | None


class SegmentationProfile(BaseModel):
    run_id: str
    method: str
    live: bool
    customers: int
    segments: list[SegmentProfile]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int


class Member(BaseModel):
    customer_id: str
    segment: str
    since: dt.datetime | None = None


class Run(BaseModel):
    run_id: str
    method: str
    as_of: dt.date | None
    created_at: dt.datetime | None
    n_customers: int | None
    live: bool


class Change(BaseModel):
    change_id: int
    customer_id: str
    run_id: str
    from_segment: str | None
    to_segment: str | None
    changed_at: dt.datetime
    cause: str | None


class Changes(BaseModel):
    items: list[Change]
    next_since: int = Field(description="Pass as `since` to get the changes after these.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    schema_version: int
    writer: Literal["running", "stopped"]
    queued_requests: int
    clock: dt.date
    live_segmentations: int
    not_live: int
    auth: bool


class Summary(BaseModel):
    p50: float
    p99: float
    max: float


class WriterStats(BaseModel):
    groups: int
    groups_total: int
    queued_requests: int
    requests_per_group: Summary | None = None
    events_per_group: Summary | None = None
    write_ms: Summary | None = None
    features_ms: Summary | None = None
    segments_ms: Summary | None = None
    commit_ms: Summary | None = None
    total_ms: Summary | None = None
    flush_ms: Summary | None = None
