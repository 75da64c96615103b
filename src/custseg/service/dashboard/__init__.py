"""The web dashboard of the live service, served by the same FastAPI app under ``/dashboard``.

Pages (Jinja2 templates, plotly.js served from the installed ``plotly`` package,
nothing fetched from the internet): an overview, a segmentation's segments, a
segment's members and migration, a customer's timeline, campaign lift and a
rule editor. See ``docs/dashboard.md``.

>>> from custseg.service.dashboard import mount   # doctest: +SKIP
>>> mount(app)                                     # doctest: +SKIP
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from custseg.service.dashboard.routes import PREFIX, STATIC_DIR, router


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages (``/dashboard/...``) and its static files to ``app``.

    ``app.state.store`` and ``app.state.service`` must be set (``create_app`` does it).
    """
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(STATIC_DIR)), name="dashboard-static")


__all__ = ["PREFIX", "mount", "router"]
