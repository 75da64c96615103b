"""The dashboard's pages and its two JSON endpoints, under ``/dashboard``.

Login: a form takes an API key (``custseg keys create --scope read``); the key is
checked with :func:`custseg.service.auth.verify` and kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/dashboard``. Every page checks the cookie's
key again (revoked keys are refused within the auth cache's 30 s) and sends a
browser without a valid key to the login page; the JSON endpoints answer 401.
The cookie does not open the ``/v1`` API, which keeps its bearer keys.

Every read borrows a cursor from ``service.readers``; nothing here writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import urllib.parse
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from custseg import __version__
from custseg.service.auth import KeyInfo, verify
from custseg.service.dashboard import charts, data

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
COOKIE = "custseg_dashboard_key"
COOKIE_MAX_AGE = 8 * 3600
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZES = (25, 50, 100, 250)
MAX_FORM_BYTES = 4_096

templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Pages are not cached (customer data), not framed, and run only the scripts served here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'"),
}


# -- formatting filters ------------------------------------------------------------------------
def _finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))


def _num(v, digits: int = 0) -> str:
    if not _finite(v):
        return "–"
    return f"{v:,.{digits}f}"


def _pct(v, digits: int = 1) -> str:
    return f"{100 * v:.{digits}f}%" if _finite(v) else "–"


def _pts(v, digits: int = 1) -> str:
    return f"{100 * v:+.{digits}f}" if _finite(v) else "–"


def _day(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)[:16].replace("T", " ")


def _seg_url(run_id: str, segment: str, **extra) -> str:
    query = urllib.parse.urlencode({"segment": segment, **{k: v for k, v in extra.items() if v not in (None, "")}})
    return f"{PREFIX}/segmentations/{urllib.parse.quote(run_id, safe='')}/segment?{query}"


templates.env.filters.update(num=_num, pct=_pct, pts=_pts, day=_day)
templates.env.globals.update(seg_url=_seg_url, quote=lambda s: urllib.parse.quote(str(s), safe=""),
                             prefix=PREFIX, version=__version__)


# -- auth --------------------------------------------------------------------------------------
def session_key(request: Request) -> KeyInfo | None:
    """The key in the dashboard cookie when it is valid, not revoked and allows ``read``."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    info = verify(request.app.state.store, token)
    return info if info is not None and info.allows("read") else None


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?{urllib.parse.urlencode({'next': target})}", status_code=303,
                            headers={"Cache-Control": "no-store"})


def _safe_next(target: str | None) -> str:
    """Only a path of the dashboard itself (no scheme, no host, no ``//``)."""
    if not target or not target.startswith(f"{PREFIX}/") and target != PREFIX:
        return f"{PREFIX}/"
    if target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return f"{PREFIX}/"
    return target


def _page(request: Request, name: str, context: dict, status_code: int = 200) -> Response:
    resp = templates.TemplateResponse(request, name, {"nav": name, **context}, status_code=status_code)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def _service(request: Request):
    return request.app.state.service


def _guarded(request: Request) -> Response | None:
    """None when the browser has a valid key; else the redirect to the login page."""
    key = session_key(request)
    if key is None:
        return _login_redirect(request)
    request.state.api_key = key
    return None


def _not_found(request: Request, what: str) -> Response:
    return _page(request, "not_found.html", {"what": what}, status_code=404)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if session_key(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _page(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    """Form fields ``key`` and ``next`` (``application/x-www-form-urlencoded``)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, detail="the login form is too large")
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    token = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or [None])[0])
    info = verify(request.app.state.store, token) if token else None
    if info is None or not info.allows("read"):
        log.info("dashboard login refused from %s", request.client.host if request.client else "?")
        return _page(request, "login.html", {"next": target, "error": "This key is not valid (unknown, revoked or "
                                                                      "mistyped). Ask for a key with scope read."},
                     status_code=401)
    log.info("dashboard login with key %s", info.key_id)
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path=PREFIX, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/logout")
def logout(request: Request) -> Response:
    resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
    resp.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


# -- static ------------------------------------------------------------------------------------
def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/vendor/plotly.min.js")
def plotly_js() -> Response:
    """plotly.js from the installed ``plotly`` package: the dashboard fetches nothing from the internet."""
    return FileResponse(plotly_js_path(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


# -- pages -------------------------------------------------------------------------------------
@router.get("/")
def overview(request: Request) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    with _service(request).readers.cursor() as cur:
        ov = data.overview(cur, _service(request))
    figs = {s["run_id"]: charts.to_json(charts.shares(s["profile"])) for s in ov["segmentations"]}
    return _page(request, "overview.html", {"ov": ov, "figs": figs})


@router.get("/customers")
def find_customer(request: Request, customer_id: str = "") -> Response:
    """The customer search box: straight to the customer's page."""
    if (redirect := _guarded(request)) is not None:
        return redirect
    cid = customer_id.strip()
    if not cid:
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    return RedirectResponse(f"{PREFIX}/customers/{urllib.parse.quote(cid, safe='')}", status_code=303)


@router.get("/segmentations/{run_id}")
def segmentation(request: Request, run_id: str) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    service = _service(request)
    with service.readers.cursor() as cur:
        seg = data.segmentation(cur, service, run_id)
    if seg is None:
        return _not_found(request, f"segmentation run {run_id!r}")
    figs = {"shares": charts.to_json(charts.shares(seg["segments"]))}
    if seg["heatmap"]["features"] and seg["heatmap"]["segments"]:
        figs["heatmap"] = charts.to_json(charts.heatmap(seg["heatmap"]))
    return _page(request, "segmentation.html", {"seg": seg, "figs": figs})


@router.get("/segmentations/{run_id}/segment")
def segment(request: Request, run_id: str, segment: str,
            q: Annotated[str, Query(max_length=200)] = "",
            page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
            size: Annotated[int, Query(ge=1, le=1_000)] = 50) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    service = _service(request)
    with service.readers.cursor() as cur:
        run = data.run_row(cur, run_id)
        if run is None or not data.segment_exists(cur, service, run_id, segment):
            return _not_found(request, f"segment {segment!r} of run {run_id!r}")
        whole = data.queries.profile(cur, service, run_id)
        prof = next((s for s in whole["segments"] if s["segment"] == segment), None)
        total = whole["customers"]
        mem = data.members(cur, service, run_id, segment, q.strip() or None, page, size)
        mig = data.migration(cur, service, run_id, segment)
        play = data.queries._play(service.playbook.for_segment(segment, run["method"]), segment)
        label = data.run_label(service, run)
    figs = {}
    if mig["previous"] is not None and (mig["came_from"] or mig["went_to"]):
        figs["migration"] = charts.to_json(charts.migration(mig["came_from"], mig["went_to"], segment,
                                                            mig["previous"]["run_id"]))
    if mig["live_in"] or mig["live_out"]:
        figs["live"] = charts.to_json(charts.live_moves(mig["live_in"], mig["live_out"]))
    return _page(request, "segment.html", {
        "run": run, "label": label, "segment": segment, "profile": prof, "run_customers": total,
        "live": run_id in service.live.runs, "members": mem, "mig": mig, "play": play, "figs": figs,
        "page_sizes": list(PAGE_SIZES)})


@router.get("/segmentations/{run_id}/export.csv")
def export(request: Request, run_id: str, segment: str) -> Response:
    """The segment's members as a CSV download: ``customer_id, segment, since``."""
    if (redirect := _guarded(request)) is not None:
        return redirect
    service = _service(request)
    with service.readers.cursor() as cur:
        if data.run_row(cur, run_id) is None:
            raise HTTPException(404, detail=f"no segmentation run {run_id!r}")
        names, rows = data.export_rows(cur, service, run_id, segment)

    def lines():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        for i, row in enumerate(rows, 1):
            writer.writerow(["" if v is None else (v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v)
                             for v in row])
            if i % 1000 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{run_id}_{segment}")[:120]
    headers = {"Content-Disposition": f'attachment; filename="{stem}.csv"', **SECURITY_HEADERS}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/customers/{customer_id}")
def customer(request: Request, customer_id: str) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    service = _service(request)
    with service.readers.cursor() as cur:
        found = data.customer(cur, service, customer_id)
    if found is None:
        return _not_found(request, f"customer {customer_id!r}")
    figs = {}
    if found["orders"] or found["browsing"] or found["email"] or found["surveys"] or found["changes"]:
        figs["timeline"] = charts.to_json(charts.timeline(found["orders"], found["browsing"], found["email"],
                                                          found["surveys"], found["changes"]))
    return _page(request, "customer.html", {"c": found, "figs": figs})


@router.get("/campaigns")
def campaigns(request: Request, campaign: str | None = None, run: str | None = None) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    service = _service(request)
    analysis, error = None, None
    with service.readers.cursor() as cur:
        listed = data.campaigns(cur)
        runs = data.queries.runs(cur, service)
        chosen = campaign or next((c["campaign_id"] for c in listed if c["treatment"] and c["control"]), None)
        if run and not any(r["run_id"] == run for r in runs):
            error, run = f"no segmentation run {run!r}", None
        if chosen is not None and error is None:
            try:
                analysis = data.campaign_analysis(cur, chosen, run)
            except ValueError as exc:
                error = str(exc)
    figs = {}
    if analysis is not None:
        figs["conversion"] = charts.to_json(charts.lift(
            analysis["rows"], "lift", "Conversion lift (treatment − control), percentage points", "+.1%"))
        figs["revenue"] = charts.to_json(charts.lift(
            analysis["rows"], "rpr_lift", "Revenue per recipient lift (treatment − control)", ",.2f"))
    return _page(request, "campaigns.html", {"campaigns": listed, "chosen": chosen, "runs": runs, "run": run,
                                             "analysis": analysis, "error": error, "figs": figs})


@router.get("/rules")
def rules(request: Request) -> Response:
    if (redirect := _guarded(request)) is not None:
        return redirect
    with _service(request).readers.cursor() as cur:
        columns = data.rule_columns(cur)
    from custseg.segmenters.rules.language import SCALAR_FUNCTIONS, STAT_FUNCTIONS

    return _page(request, "rules.html", {"columns": columns, "functions": list(SCALAR_FUNCTIONS),
                                         "stats": list(STAT_FUNCTIONS)})


# -- JSON --------------------------------------------------------------------------------------
def _json_guard(request: Request) -> JSONResponse | None:
    if session_key(request) is None:
        return JSONResponse({"detail": "log in to the dashboard first"}, status_code=401,
                            headers={"Cache-Control": "no-store"})
    return None


@router.post("/api/rule-check")
async def rule_check(request: Request) -> Response:
    """``{"rule": "..."}`` → whether it parses and checks, and how many customers it matches now."""
    refused = _json_guard(request)
    if refused is not None:
        return refused
    body = await request.body()
    if len(body) > 4 * data.MAX_RULE_CHARS:
        return JSONResponse({"detail": f"a rule may have at most {data.MAX_RULE_CHARS:,} characters"},
                            status_code=413)
    try:
        payload = json.loads(body or b"{}")
        text = payload.get("rule") if isinstance(payload, dict) else None
    except ValueError:
        text = None
    if not isinstance(text, str):
        return JSONResponse({"detail": 'send {"rule": "<text>"}'}, status_code=422)
    service = _service(request)

    def check() -> dict:
        with service.readers.cursor() as cur:
            return data.check_rule(cur, text)

    return JSONResponse(data.plain(await run_in_threadpool(check)), headers={"Cache-Control": "no-store"})


__all__ = ["COOKIE", "PREFIX", "STATIC_DIR", "router", "session_key"]
