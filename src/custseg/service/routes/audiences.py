"""Audiences: ``GET /v1/segments/{run_id}/audience`` (who, with a seeded holdout) and
``POST /v1/audiences`` (record it as a campaign), as ``custseg audience export`` does."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from custseg.service import queries_more as q
from custseg.service.context import ServiceDep, guard
from custseg.service.schemas_more import Audience, AudienceRecorded, AudienceRequest

router = APIRouter(tags=["audiences"])

_CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}},
              "description": "The audience (JSON), or its members as CSV with `format=csv`."},
        404: {"description": "Unknown run or segment."}}


@router.get("/segments/{run_id}/audience", response_model=Audience, dependencies=guard("read"),
            summary="A segment's audience: consenting members, treatment or seeded control", responses=_CSV)
def get_audience(
    run_id: str,
    service: ServiceDep,
    segment: Annotated[str, Query(min_length=1, max_length=2_000,
                                  description="A segment name, several comma-separated names, or `all`.")],
    control: Annotated[float, Query(ge=0, lt=1, description="Share of each segment held out (control).")] = 0.1,
    seed: Annotated[int, Query(ge=0, le=2**63 - 1, description="Seed of the holdout draw.")] = 0,
    arm: Annotated[Literal["all", "treatment", "control"], Query(description="Which arms to list.")] = "all",
    fmt: Annotated[Literal["json", "csv"], Query(alias="format", description="`json` or `csv`.")] = "json",
):
    """The customers of the segments of a run that may be emailed, as `custseg audience export`
    plans them: without email consent (or unsubscribed since), without a usable address, or sharing
    another customer's address, they are counted and left out; of the rest, a seeded random `control`
    share of each segment is the holdout (`arm` `control`), everyone else the `treatment`. The same
    run, segments, share and seed give the same arms. Nothing is recorded: `POST /v1/audiences` records
    the campaign. Segments are the run's batch memberships, as in the CLI."""
    with service.readers.cursor() as cur, q.http_errors():
        body = q.audience(cur, service, run_id, segment, control, seed, arm)
    if fmt == "csv":
        return Response(q.audience_csv(body), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="audience.csv"'})
    return body


@router.post("/audiences", response_model=AudienceRecorded, status_code=201, dependencies=guard("write"),
             summary="Record an audience as a campaign (treatment and control arms)",
             responses={200: {"model": AudienceRecorded,
                              "description": "The campaign already held exactly these arms; nothing was added."},
                        404: {"description": "Unknown run or segment."},
                        409: {"description": "The campaign id holds other assignments."}})
def post_audience(body: AudienceRequest, service: ServiceDep, response: Response) -> dict:
    """Plan the audience as `GET /v1/segments/{run_id}/audience` does and record it, as `custseg audience
    export` does: a `campaigns` row and one `campaign_assignments` row per customer (`treatment` or
    `control`), in one transaction on the service's writer. Measure it later with
    `GET /v1/campaigns/{campaign_id}`. Recording the same arms again under the same `campaign_id`
    adds nothing (200, `reused`); other arms under an id that has assignments are refused (409)."""
    with q.http_errors():
        out = q.record_audience(service, body.run_id, body.segment, body.control, body.seed, body.campaign_id)
    if out["reused"]:
        response.status_code = 200
    return out
