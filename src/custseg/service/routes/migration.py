"""``GET /v1/runs/{run_id}/migration``: how customers moved between two segmentation runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from custseg.service import queries_more as q
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas_more import Migration

router = APIRouter(tags=["runs"])


@router.get("/runs/{run_id}/migration", response_model=Migration, dependencies=guard("read"),
            summary="Migration matrix from an earlier run to this one",
            responses={404: {"description": "Unknown run, or no earlier run to compare with."}})
def get_migration(
    run_id: str,
    service: ServiceDep,
    from_run: Annotated[str | None, Query(min_length=1, max_length=200, description=(
        "The earlier run; default the latest run of the same method recorded before this one."))] = None,
) -> dict:
    """Customers by segment in `from_run` (rows) and in this run (columns), with `(not in run)` on
    both sides for customers in only one of them, the non-zero cells with their row shares, and each
    segment's growth: `custseg profile compare` (the library's `compare_runs`) over the runs' batch
    memberships."""
    with service.readers.cursor() as cur, q.http_errors():
        return q.migration(cur, service, run_id, from_run)
