"""The API's routers, one per resource, gathered under ``/v1``."""

from fastapi import APIRouter

from custseg.service.routes import changes, customers, events, health, runs, segments

api = APIRouter(prefix="/v1")
for module in (health, events, customers, segments, runs, changes):
    api.include_router(module.router)

__all__ = ["api"]
