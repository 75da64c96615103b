"""``GET /v1/campaigns`` and ``GET /v1/campaigns/{campaign_id}``: campaigns and their measured lift."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from custseg.service import queries_more as q
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas_more import CampaignResult, Campaigns

router = APIRouter(tags=["campaigns"])


@router.get("/campaigns", response_model=Campaigns, dependencies=guard("read"), summary="Campaigns")
def list_campaigns(
    service: ServiceDep,
    page: Annotated[int, Query(ge=1, le=10_000_000, description="1-based page number.")] = 1,
    size: Annotated[int, Query(ge=1, le=1_000, description="Campaigns per page.")] = 100,
) -> dict:
    """Every campaign of `campaigns` or `campaign_assignments` (audiences recorded by `POST /v1/audiences`
    or `custseg audience export` included), newest start first, with the size of each arm."""
    with service.readers.cursor() as cur:
        return q.campaigns(cur, page, size)


@router.get("/campaigns/{campaign_id}", response_model=CampaignResult, dependencies=guard("read"),
            summary="A campaign's lift per segment, with confidence intervals",
            responses={404: {"description": "Unknown campaign or run."}})
def get_campaign(
    campaign_id: str,
    service: ServiceDep,
    run_id: Annotated[str | None, Query(min_length=1, max_length=200, description=(
        "Segments of this run; default the run the audience came from, else the newest run."))] = None,
    window_days: Annotated[int | None, Query(ge=1, le=3_650, description=(
        "Window length from the campaign's start day; default up to its end_time, else 28."))] = None,
    followup_days: Annotated[int, Query(ge=0, le=3_650, description="Days after the window for retention.")] = 90,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="1 - confidence level; the significance level.")] = 0.05,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="Seed of the bootstrap intervals.")] = 0,
    revenue_ci: Annotated[Literal["welch", "bootstrap"], Query(description="Interval of the revenue lift.")] = "welch",
) -> dict:
    """The campaign measured as `custseg campaign analyze` measures it (`analyze_campaign`): per
    segment (overall first) conversion of each arm with Wilson intervals and the lift with its Newcombe
    interval and Holm-adjusted p-value, revenue per recipient and its lift (Welch or bootstrap),
    engagement of the treatment arm, retention in the follow-up, and the difference in differences;
    `summary` has the key numbers in one row per segment."""
    with service.readers.cursor() as cur, q.http_errors():
        return q.campaign(cur, service, campaign_id, run_id=run_id, window_days=window_days, alpha=alpha,
                          seed=seed, revenue_ci=revenue_ci, followup_days=followup_days)
