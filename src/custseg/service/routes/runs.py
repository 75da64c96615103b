"""``GET /v1/runs``: every segmentation run of the store."""

from __future__ import annotations

from fastapi import APIRouter

from custseg.service import queries
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas import Run

router = APIRouter(tags=["runs"])


@router.get("/runs", response_model=list[Run], dependencies=guard("read"), summary="Segmentation runs")
def list_runs(service: ServiceDep) -> list[dict]:
    """Every run in ``segment_runs``, newest first; ``live`` says whether the service evaluates it live."""
    with service.readers.cursor() as cur:
        return queries.runs(cur, service)
