"""``GET /v1/changes``: the feed of segment membership changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from custseg.service import queries
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas import Changes

router = APIRouter(tags=["changes"])


@router.get("/changes", response_model=Changes, dependencies=guard("read"),
            summary="Segment changes after a change id (the feed)")
def list_changes(
    service: ServiceDep,
    since: Annotated[int, Query(ge=0, description="Return changes with a larger change_id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    run_id: Annotated[str | None, Query(description="Only this segmentation.")] = None,
    customer_id: Annotated[str | None, Query(description="Only this customer.")] = None,
) -> dict:
    """Changes oldest first. Poll with ``since`` = the last ``next_since`` to follow the feed."""
    with service.readers.cursor() as cur:
        return queries.changes(cur, since, limit, run_id, customer_id)
