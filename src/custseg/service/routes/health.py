"""``GET /v1/health``: is the service up, and is its writer running."""

from __future__ import annotations

from fastapi import APIRouter

from custseg.service.context import ServiceDep, require
from custseg.service.schemas import Health

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
