"""The API's routers, one per resource, gathered under ``/v1``."""

from fastapi import APIRouter

from custseg.service.routes import assign, changes, customers, events, health, runs, segments
from custseg.service.routes import admin, audiences, campaigns, migration
from custseg.service.routes import jobs

api = APIRouter(prefix="/v1")
for module in (health, events, customers, segments, runs, changes, assign,
               audiences, migration, campaigns, admin, jobs):
    api.include_router(module.router)

__all__ = ["api"]
