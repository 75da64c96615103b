"""Request and response models of the audience, migration, campaign and admin endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


# -- audiences ----------------------------------------------------------------------------------
class AudienceSegment(BaseModel):
    segment: str
    in_segment: int
    excluded: int = Field(description="No consent, unsubscribed, no usable email or an address of another customer.")
    eligible: int = Field(description="Treatment plus control.")
    holdout: int = Field(description="The control arm (kept out of the send).")
    exported: int = Field(description="The treatment arm.")


class AudienceMember(BaseModel):
    customer_id: str
    segment: str
    arm: Literal["treatment", "control"]
    email: str | None
    first_name: str | None
    last_name: str | None
    play: str | None = Field(description="The playbook's play for the segment.")
    offer: str | None


class AudienceCounts(BaseModel):
    run_id: str
    method: str
    segments: list[str] = Field(description="The chosen segments, in the order customers are assigned to them.")
    control: float = Field(description="Share of each segment's eligible customers held out.")
    seed: int
    in_segment: int
    no_consent: int
    unsubscribed: int
    no_email: int
    duplicate_email: int
    excluded: int
    eligible: int
    holdout: int = Field(description="Customers in the control arm.")
    exported: int = Field(description="Customers in the treatment arm.")
    control_share: float | None = Field(description="holdout / eligible (null when nobody is eligible).")
    per_segment: list[AudienceSegment]
    notes: list[str]


class Audience(AudienceCounts):
    arm: Literal["all", "treatment", "control"] = Field(description="Which arms `members` lists.")
    members: list[AudienceMember]


class AudienceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"run_id": "rfm-20250105-101500-1a2b3c", "segment": "At Risk,Can't Lose Them", "control": 0.1, "seed": 0}]})

    segment: str | list[str] = Field(
        description="A segment name, several comma-separated names, a list of names, or `all`.")
    run_id: str | None = Field(None, min_length=1, max_length=200,
                               description="The segmentation run; default the newest.")
    control: float = Field(0.1, ge=0, lt=1, description="Share of each segment held out as the control group.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the holdout draw.")
    campaign_id: str | None = Field(None, min_length=1, max_length=200,
                                    description="Campaign id to record; default `AUD-<date>-<time>-<random>`.")


class AudienceRecorded(AudienceCounts):
    campaign_id: str
    reused: bool = Field(description="The campaign already held exactly these arms: nothing was added.")


# -- migration ----------------------------------------------------------------------------------
class RunSummary(BaseModel):
    run_id: str
    method: str
    as_of: str | None
    created_at: str | None
    n_customers: int
    n_memberships: int
    exclusive: bool


class MigrationCell(BaseModel):
    from_segment: str
    to_segment: str
    customers: int
    share: float | None = Field(description="customers / customers of the from segment.")


class SegmentGrowth(BaseModel):
    segment: str
    customers_from: int
    customers_to: int
    change: int
    growth: float | None = Field(description="change / customers_from (null for a new segment).")


class Migration(BaseModel):
    from_run: RunSummary
    to_run: RunSummary
    customers_in_both: int
    same_segment: int | None = Field(description="Customers of both runs in a segment of the same name "
                                                 "(exclusive runs only).")
    same_segment_share: float | None
    rows: list[str] = Field(description="Segments of from_run, then `(not in run)`.")
    columns: list[str] = Field(description="Segments of the run, then `(not in run)`.")
    counts: list[list[int]] = Field(description="counts[i][j]: customers in rows[i] before and columns[j] now.")
    cells: list[MigrationCell] = Field(description="The non-zero cells of the matrix.")
    growth: list[SegmentGrowth]


# -- campaigns ----------------------------------------------------------------------------------
class CampaignSummary(BaseModel):
    campaign_id: str
    name: str | None
    channel: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    description: str | None
    treatment: int
    control: int
    first_assigned_at: dt.datetime | None
    measurable: bool = Field(description="Both arms have customers.")


class Campaigns(BaseModel):
    items: list[CampaignSummary]
    total: int
    page: int
    size: int


class CampaignInfo(BaseModel):
    campaign_id: str
    name: str | None
    channel: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    description: str | None
    assigned: int | None
    first_assigned_at: dt.datetime | None


class CampaignWindow(BaseModel):
    start: dt.date
    end: dt.date = Field(description="Exclusive.")
    pre_start: dt.date
    followup_end: dt.date
    days: int
    followup_days: int
    data_end: dt.date | None
    followup_complete: bool


class Conversion(BaseModel):
    segment: str
    n_treatment: int
    n_control: int
    converted_treatment: int
    converted_control: int
    rate_treatment: float | None
    rate_treatment_low: float | None
    rate_treatment_high: float | None
    rate_control: float | None
    rate_control_low: float | None
    rate_control_high: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    relative_lift: float | None
    relative_lift_low: float | None
    relative_lift_high: float | None
    p_value: float | None
    p_holm: float | None
    significant: bool
    verdict: str


class Revenue(BaseModel):
    segment: str
    n_treatment: int
    n_control: int
    revenue_treatment: float | None
    revenue_control: float | None
    revenue_per_recipient_treatment: float | None
    revenue_per_recipient_control: float | None
    orders_treatment: int
    orders_control: int
    aov_treatment: float | None
    aov_control: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    relative_lift: float | None
    relative_lift_low: float | None
    relative_lift_high: float | None
    p_value: float | None
    p_holm: float | None
    significant: bool
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    method: str


class Engagement(BaseModel):
    segment: str
    recipients: int
    sent: int
    bounced: int
    opened: int
    clicked: int
    unsubscribed: int
    open_rate: float | None
    click_rate: float | None
    click_to_open_rate: float | None
    unsubscribe_rate: float | None
    control_sent: int


class Retention(BaseModel):
    segment: str
    retained_treatment: int | None = None
    retained_control: int | None = None
    retention_rate_treatment: float | None = None
    retention_rate_control: float | None = None
    followup_treatment: int | None = None
    followup_control: int | None = None
    followup_rate_treatment: float | None = None
    followup_rate_control: float | None = None
    followup_lift: float | None = None
    followup_lift_low: float | None = None
    followup_lift_high: float | None = None
    followup_p_value: float | None = None


class DiD(BaseModel):
    segment: str
    pre_rate_treatment: float | None = None
    window_rate_treatment: float | None = None
    pre_rate_control: float | None = None
    window_rate_control: float | None = None
    change_treatment: float | None = None
    change_control: float | None = None
    did: float | None = None
    did_low: float | None = None
    did_high: float | None = None


class CampaignSegmentSummary(BaseModel):
    segment: str
    n_treatment: int
    n_control: int
    conversion_treatment: float | None
    conversion_control: float | None
    conversion_lift: float | None
    conversion_lift_low: float | None
    conversion_lift_high: float | None
    conversion_p_value: float | None
    conversion_p_holm: float | None
    revenue_per_recipient_treatment: float | None
    revenue_per_recipient_control: float | None
    revenue_per_recipient_lift: float | None
    revenue_per_recipient_lift_low: float | None
    revenue_per_recipient_lift_high: float | None
    revenue_p_holm: float | None
    open_rate: float | None
    click_rate: float | None
    did: float | None
    verdict: str


class CampaignResult(BaseModel):
    campaign: CampaignInfo
    window: CampaignWindow
    alpha: float
    seed: int
    revenue_ci: Literal["welch", "bootstrap"]
    segments_from: str = Field(description="`run <run_id>`, `given` or `none` (overall only).")
    notes: list[str]
    summary: list[CampaignSegmentSummary] = Field(description="One row per segment, overall first.")
    conversion: list[Conversion]
    revenue: list[Revenue]
    engagement: list[Engagement]
    retention: list[Retention]
    did: list[DiD]


# -- admin ----------------------------------------------------------------------------------------
class ApiKey(BaseModel):
    key_id: str
    name: str | None
    scope: Literal["read", "write", "admin"]
    created_at: dt.datetime | None
    revoked_at: dt.datetime | None
    status: Literal["active", "revoked"]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scope": "read", "name": "dashboard"}]})

    scope: Literal["read", "write", "admin"]
    name: str | None = Field(None, max_length=200, description="Who or what uses the key.")


class CreatedKey(BaseModel):
    key_id: str
    token: str = Field(description="`csk_<key_id>_<secret>`: shown only in this answer; the store keeps a hash.")
    scope: Literal["read", "write", "admin"]
    name: str | None
    created_at: dt.datetime | None


class RevokedKey(BaseModel):
    key_id: str
    revoked: Literal[True]
    revoked_now: bool = Field(description="False when the key was already revoked (its first time is kept).")
    revoked_at: dt.datetime | None


class Deletion(BaseModel):
    deletion_id: str = Field(description="The `deletion_log` entry.")
    rows_deleted: dict[str, int] = Field(description="Rows removed per table.")
    total: int
    deleted_at: dt.datetime | None
    requested_by: str = Field(description="The id of the API key that asked.")


__all__ = [
    "ApiKey", "Audience", "AudienceCounts", "AudienceMember", "AudienceRecorded", "AudienceRequest",
    "AudienceSegment", "CampaignInfo", "CampaignResult", "CampaignSegmentSummary", "CampaignSummary",
    "CampaignWindow", "Campaigns", "Conversion", "CreatedKey", "DiD", "Deletion", "Engagement", "KeyRequest",
    "Migration", "MigrationCell", "Retention", "Revenue", "RevokedKey", "RunSummary", "SegmentGrowth",
]
