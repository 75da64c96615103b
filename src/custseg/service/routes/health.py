"""``GET /v1/health``: is the service up, and is its writer running."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from custseg.service.context import ServiceDep, guard, require
from custseg.service.schemas import Health, WriterStats

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Service status (no key needed)")
def health(service: ServiceDep) -> dict:
    """Status without a key: for load balancers and monitors. It reveals no customer data."""
    with service.readers.cursor() as cur:
        version = cur.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    running = service.writer.running
    return {
        "status": "ok" if running else "degraded",
        "schema_version": int(version),
        "writer": "running" if running else "stopped",
        "queued_requests": service.writer.waiting,
        "clock": service.live.clock,
        "live_segmentations": len(service.live.runs),
        "not_live": len(service.live.not_live),
        "auth": require is not None,
    }


@router.get("/stats", response_model=WriterStats, dependencies=guard("admin"),
            summary="Where the writer's time goes (admin)")
def stats(service: ServiceDep,
          last: Annotated[int, Query(ge=1, le=1_000, description="Only the last groups.")] = 1_000) -> dict:
    """Over the writer's last ``last`` groups (at most 1,000): requests and events per group, and
    per-group time (ms) in total and by step (store the events, features, segments, commit), as
    median, 99th percentile and maximum. The derived-table writes after the answers are counted under
    ``flush`` (its last ``last`` runs). ``groups_total`` counts every group since the start."""
    groups = list(service.writer.groups)[-last:]
    out: dict = {"groups": len(groups), "groups_total": service.writer.groups_total,
                 "queued_requests": service.writer.waiting}
    if not groups:
        return out
    out["requests_per_group"] = _summary([g.requests for g in groups])
    out["events_per_group"] = _summary([g.events for g in groups])
    for step in ("write_ms", "features_ms", "segments_ms", "commit_ms", "total_ms"):
        out[step] = _summary([getattr(g, step) for g in groups])
    flushes = list(service.writer.flushes)[-last:]
    if flushes:
        out["flush_ms"] = _summary(flushes)
    return out


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": float(ordered[-1])}
