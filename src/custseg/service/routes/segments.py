"""``GET /v1/segments``: live segmentations, a run's profile, its members page by page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from custseg.service import queries
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas import Member, Page, SegmentationProfile, Segmentations

router = APIRouter(tags=["segments"])


@router.get("/segments", response_model=Segmentations, dependencies=guard("read"),
            summary="Live segmentations and the size of their segments")
def list_segmentations(service: ServiceDep) -> dict:
    """Every segmentation evaluated live (the newest run of each kind), with its segments' current sizes,
    and the runs that could not be made live, with the reason."""
    with service.readers.cursor() as cur:
        return queries.segmentations(cur, service)


@router.get("/segments/{run_id}", response_model=SegmentationProfile, dependencies=guard("read"),
            summary="Profile of a segmentation's segments")
def segment_profile(run_id: str, service: ServiceDep) -> dict:
    """Per segment: customers, share, share of revenue, mean recency, orders, revenue, order value,
    CLV and P(alive), over current memberships and features (batch ones for a run that is not live)."""
    with service.readers.cursor() as cur:
        found = queries.profile(cur, service, run_id)
    if found is None:
        raise HTTPException(404, detail=f"no segmentation run {run_id!r}; see GET /v1/runs")
    return found


@router.get("/segments/{run_id}/members", response_model=Page[Member], dependencies=guard("read"),
            summary="Members of a segmentation, page by page")
def segment_members(
    run_id: str,
    service: ServiceDep,
    segment: Annotated[str | None, Query(description="Only this segment.")] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000, description="1-based page number.")] = 1,
    size: Annotated[int, Query(ge=1, le=1_000, description="Members per page.")] = 100,
) -> dict:
    """Members ordered by customer id, with the time they entered the segment (live runs)."""
    with service.readers.cursor() as cur:
        found = queries.members(cur, service, run_id, segment, page, size)
    if found is None:
        raise HTTPException(404, detail=f"no segmentation run {run_id!r}; see GET /v1/runs")
    return found
