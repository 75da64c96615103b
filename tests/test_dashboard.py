"""The web dashboard of the live service: login, pages and their numbers (fast), and the pages in
headless Chromium (slow: charts drawn, search, paging, export, rule editor, screenshots)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jinja2")

from fastapi.testclient import TestClient

from custseg import Store, pipeline
from custseg.clv.predict import fit_model, predict, save_model, save_predictions
from custseg.clv.segments import run_value_segments
from custseg.datasets import load_demo, make_store
from custseg.measure import analyze_campaign
from custseg.segmenters.cluster import ClusterSegmenter, run_cluster
from custseg.segmenters.rules.templates import run_template
from custseg.service import queries
from custseg.service.app import create_app
from custseg.service.dashboard import data as dashboard_data
from custseg.service.auth import create_key, revoke_key
from custseg.service.dashboard import data
from custseg.service.dashboard.routes import COOKIE, plotly_js_path

AS_OF = dt.date(2025, 1, 1)  # the demo trades until 2024-12-31
EARLIER = dt.date(2024, 7, 1)
CAMPAIGN = "CAMP-WINBACK"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small demo store after two RFM runs (mid-year and year end), the 'lapsed' template, a
    cluster run, CLV with value segments and recommendations; keys of each scope (one revoked)."""
    path = tmp_path_factory.mktemp("dashboard") / "base.duckdb"
    with Store(path) as store:
        load_demo(store, make_store(300, seed=5))
        pipeline.build_and_store_features(store, EARLIER)
        rfm_before = pipeline.segment_rfm(store)
        pipeline.build_and_store_features(store, AS_OF)
        rfm = pipeline.segment_rfm(store)
        lapsed = run_template(store, "lapsed")
        cluster = run_cluster(store, ClusterSegmenter(k=4, seed=1, n_refits=0))
        bg, gg = fit_model(store, "bgnbd"), fit_model(store, "gammagamma")
        save_model(store, bg)
        save_model(store, gg)
        value = run_value_segments(store, save_predictions(store, predict(store, bg, gg, n_draws=20)))
        from custseg.recommend import recommend, save_recommendations

        save_recommendations(store, recommend(store))
        campaign = analyze_campaign(store, CAMPAIGN, segments=rfm)
        tokens = {s: create_key(store, s, name=f"test {s}")[1] for s in ("read", "write", "admin")}
        revoked_id, tokens["revoked"] = create_key(store, "read", name="revoked")
        revoke_key(store, revoked_id)
    runs = {"rfm_before": rfm_before, "rfm": rfm, "lapsed": lapsed, "cluster": cluster, "value": value}
    return {"path": path, "runs": runs, "tokens": tokens, "campaign": campaign}


def _start(base, path):
    shutil.copy(base["path"], path)
    return create_app(path)


@pytest.fixture(scope="module")
def dash(base, tmp_path_factory):
    """The running service: ``client`` (logged in), ``anon`` (no cookie), ``app``, ``base`` (with ``moved``,
    the customer whom one live order moved between RFM segments)."""
    app = _start(base, tmp_path_factory.mktemp("dash-live") / "live.duckdb")
    with TestClient(app) as client:
        cid = _read(app, "SELECT customer_id FROM customer_features WHERE orders_count > 0 "
                         "ORDER BY recency_days DESC, customer_id LIMIT 1")[0][0]
        order = {"type": "order", "event_id": "dash-1", "customer_id": cid, "time": "2025-01-02T10:00:00",
                 "total": 250.0, "items": [{"product_id": "P0001", "category": "books", "quantity": 1,
                                            "unit_price": 250.0}]}
        r = client.post("/v1/events", json=order, headers={"Authorization": f"Bearer {base['tokens']['write']}"})
        assert r.status_code == 200, r.text
        anon = TestClient(app)  # no lifespan: shares the running service, keeps no cookie
        r = client.post("/dashboard/login", data={"key": base["tokens"]["read"]}, follow_redirects=False)
        assert r.status_code == 303
        yield SimpleNamespace(client=client, anon=anon, app=app, base={**base, "moved": cid})


def _browser(app, token: str | None = None) -> TestClient:
    """Another client of the running app (no lifespan of its own), with the dashboard cookie if given."""
    return TestClient(app, cookies={COOKIE: token} if token is not None else None)


def _read(app, sql, params=None):
    with app.state.service.readers.cursor() as cur:
        return cur.execute(sql, params if params is not None else []).fetchall()


def _text(html: str) -> str:
    """The page's text, tags removed and spaces collapsed (for number checks)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").replace("&#39;", "'")


def _member_ids(html: str) -> list[str]:
    table = html.split('id="members"')[1].split("</table>")[0]
    return re.findall(r'<td><a href="/dashboard/customers/([^"]+)">', table)


def _seg_url(run_id, segment, **extra):
    q = urllib.parse.urlencode({"segment": segment, **extra})
    return f"/dashboard/segmentations/{urllib.parse.quote(run_id, safe='')}/segment?{q}"


# -- login -------------------------------------------------------------------------------------
PAGES = ["/dashboard/", "/dashboard/campaigns", "/dashboard/rules", "/dashboard/customers/C000001"]


def test_pages_redirect_to_the_login_without_a_valid_key(dash):
    rfm = dash.base["runs"]["rfm"]
    for url in [*PAGES, f"/dashboard/segmentations/{rfm}", _seg_url(rfm, "Champions"),
                f"/dashboard/segmentations/{rfm}/export.csv?segment=Champions"]:
        r = dash.anon.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/dashboard/login?next=")
        assert urllib.parse.unquote(r.headers["location"].split("next=", 1)[1]).startswith(url.split("?")[0])
        for bad in ("nonsense", dash.base["tokens"]["revoked"], dash.base["tokens"]["read"][:-2] + "xx"):
            r = _browser(dash.app, bad).get(url, follow_redirects=False)
            assert r.status_code == 303, (url, bad)
    r = dash.anon.post("/dashboard/api/rule-check", json={"rule": "orders_count > 1"})
    assert r.status_code == 401 and r.json() == {"detail": "log in to the dashboard first"}
    r = dash.anon.get("/dashboard/login")
    assert r.status_code == 200 and 'name="key"' in r.text and 'type="password"' in r.text


def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(dash):
    r = dash.anon.post("/dashboard/login", data={"key": dash.base["tokens"]["read"], "next": "/dashboard/rules"},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/rules"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={dash.base['tokens']['read']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    token = dash.base["tokens"]["read"]
    assert _browser(dash.app, token).get("/dashboard/rules").status_code == 200
    r = _browser(dash.app, token).get("/dashboard/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert re.search(rf'{COOKIE}=""?;.*Max-Age=0', r.headers["set-cookie"])
    # Higher scopes include read; a bad or revoked key is refused with the form again, no cookie.
    assert dash.anon.post("/dashboard/login", data={"key": dash.base["tokens"]["admin"]},
                     follow_redirects=False).status_code == 303
    for bad in ("", "csk_nope", dash.base["tokens"]["revoked"]):
        r = dash.anon.post("/dashboard/login", data={"key": bad}, follow_redirects=False)
        assert r.status_code == 401 and "set-cookie" not in r.headers and "not valid" in r.text


def test_login_only_redirects_inside_the_dashboard(dash):
    for target in ("https://evil.example/", "//evil.example/dashboard/", "/v1/segments", "/dashboard/\\evil"):
        r = dash.anon.post("/dashboard/login", data={"key": dash.base["tokens"]["read"], "next": target},
                      follow_redirects=False)
        assert r.headers["location"] == "/dashboard/", target


def test_the_cookie_does_not_open_the_api(dash):
    r = _browser(dash.app, dash.base["tokens"]["read"]).get("/v1/segments")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert dash.client.get("/v1/segments").status_code == 401  # the logged-in browser has no bearer key either
    ok = dash.client.get("/v1/segments", headers={"Authorization": f"Bearer {dash.base['tokens']['read']}"})
    assert ok.status_code == 200
    assert not any(p.startswith("/dashboard") for p in dash.client.get("/openapi.json").json()["paths"])


# -- pages -------------------------------------------------------------------------------------
def test_every_page_answers_with_security_headers_and_local_scripts_only(dash):
    rfm = dash.base["runs"]["rfm"]
    for url in [*PAGES, f"/dashboard/segmentations/{rfm}", _seg_url(rfm, "Champions")]:
        r = dash.client.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", r.text), url
        assert not re.search(r"<script(?![^>]*(src=|type=\"application/json\"))[^>]*>", r.text), url  # no inline JS
    js = dash.client.get("/dashboard/vendor/plotly.min.js")
    assert js.status_code == 200 and js.content == plotly_js_path().read_bytes()
    assert js.headers["content-type"].startswith("text/javascript")
    assert dash.client.get("/dashboard/static/dashboard.css").status_code == 200
    assert dash.client.get("/dashboard/static/dashboard.js").status_code == 200


def test_overview_shows_customers_revenue_active_share_and_segments(dash):
    html = dash.client.get("/dashboard/").text
    f = queries._features_sql
    with dash.app.state.service.readers.cursor() as cur:
        n, revenue, active = cur.execute(
            f"SELECT count(*), sum(net_revenue), count_if(orders_count > 0 AND recency_days <= 90) "
            f"FROM ({f(cur)})").fetchall()[0]
        segs = queries.segmentations(cur, dash.app.state.service)["segmentations"]
    assert n == 300  # the demo's customers; the live order is from a known customer
    assert f'id="kpi-customers">{n:,}<' in html
    assert f'id="kpi-revenue">{revenue:,.2f}<' in html
    assert f'id="kpi-active">{100 * active / n:.1f}%<' in html
    text = _text(html)
    assert {s["method"] for s in segs} == {"rfm", "template:lapsed", "cluster:kmeans", "value"}
    for s in segs:
        assert s["label"] in text
        assert html.count(f'data-chart="chart-{s["run_id"]}"') == 1
        for seg in s["segments"]:
            assert f"{seg['segment']} {seg['customers']:,} {100 * seg['share']:.1f}%" in text
    assert dash.base["runs"]["rfm_before"] in html  # every run is listed


def test_segmentation_page_profile_heatmap_plays_and_products(dash):
    rfm = dash.base["runs"]["rfm"]
    html = dash.client.get(f"/dashboard/segmentations/{urllib.parse.quote(rfm, safe='')}").text
    text = _text(html)
    bearer = {"Authorization": f"Bearer {dash.base['tokens']['read']}"}
    api = dash.client.get(f"/v1/segments/{rfm}", headers=bearer).json()
    for s in api["segments"]:
        assert f"{s['segment']} {s['customers']:,} {100 * s['share']:.1f}%" in text
        assert dash.app.state.service.playbook.for_segment(s["segment"], "rfm").play in text
    assert 'data-chart="chart-heatmap"' in html and 'data-chart="chart-shares"' in html
    with dash.app.state.service.readers.cursor() as cur:
        h = data.heatmap(cur, dash.app.state.service, rfm)
        products = data.top_products(cur, dash.app.state.service, rfm)
        # The heat map's z-score of one cell, recomputed from scratch.
        j, i = h["features"].index("recency_days"), h["segments"].index("Champions")
        mean, sd = cur.execute(
            f"SELECT avg(recency_days), stddev_pop(recency_days) FROM ({data.features_sql(cur)}) "
            "WHERE customer_id IN (SELECT customer_id FROM service_memberships WHERE run_id = ?)", [rfm]).fetchall()[0]
        seg_mean = cur.execute(
            f"SELECT avg(recency_days) FROM ({data.features_sql(cur)}) WHERE customer_id IN "
            "(SELECT customer_id FROM service_memberships WHERE run_id = ? AND segment = 'Champions')",
            [rfm]).fetchall()[0][0]
        top = products["Champions"][0]
        buyers = cur.execute(
            "SELECT count(DISTINCT o.customer_id) FROM orders o JOIN order_items i USING (order_id) "
            "WHERE o.status = 'completed' AND i.product_id = ? AND o.customer_id IN "
            "(SELECT customer_id FROM service_memberships WHERE run_id = ? AND segment = 'Champions')",
            [top["product_id"], rfm]).fetchall()[0][0]
    assert h["z"][i][j] == pytest.approx((seg_mean - mean) / sd)
    assert h["z"][i][j] < 0  # champions ordered recently
    assert top["buyers"] == buyers and top["rank"] == 1
    assert (top["product_name"] or top["product_id"]) in text
    assert dash.client.get("/dashboard/segmentations/nope").status_code == 404


def test_segment_page_members_search_and_paging(dash):
    rfm = dash.base["runs"]["rfm"]
    with dash.app.state.service.readers.cursor() as cur:
        everyone = queries.members(cur, dash.app.state.service, rfm, "Champions", 1, 1000)
    ids = [m["customer_id"] for m in everyone["items"]]
    html = dash.client.get(_seg_url(rfm, "Champions", size=5)).text
    assert f'id="kpi-members">{everyone["total"]:,}<' in html
    assert _member_ids(html) == ids[:5]
    page2 = dash.client.get(_seg_url(rfm, "Champions", size=5, page=2)).text
    assert _member_ids(page2) == ids[5:10]
    assert f"page 2 of {-(-len(ids) // 5)}" in page2
    needle = ids[3][-2:]
    found = dash.client.get(_seg_url(rfm, "Champions", q=needle)).text
    listed = _member_ids(found)
    assert listed == [c for c in ids if needle in c.lower()]
    assert f"{len(listed):,} member" in found
    assert "No members match" in dash.client.get(_seg_url(rfm, "Champions", q="no-such-id")).text
    assert dash.client.get(_seg_url(rfm, "No such segment")).status_code == 404


def test_export_downloads_the_members_query_as_csv(dash):
    for key, segment in (("rfm", "Champions"), ("value", None), ("rfm_before", "Lost")):
        run = dash.base["runs"][key]
        with dash.app.state.service.readers.cursor() as cur:
            segment = segment or queries.profile(cur, dash.app.state.service, run)["segments"][0]["segment"]
            expected = queries.members(cur, dash.app.state.service, run, segment, 1, 1000)["items"]
        r = dash.client.get(f"/dashboard/segmentations/{urllib.parse.quote(run, safe='')}/export.csv",
                       params={"segment": segment})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"].startswith('attachment; filename="') and ".csv" in \
            r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [(x["customer_id"], x["segment"]) for x in rows] == [(m["customer_id"], m["segment"]) for m in expected]
        assert [x["since"] for x in rows] == [m["since"].isoformat(sep=" ") if m["since"] else "" for m in expected]


def test_segment_migration_against_the_previous_run_and_live_moves(dash):
    rfm, before = dash.base["runs"]["rfm"], dash.base["runs"]["rfm_before"]
    svc = dash.app.state.service
    with svc.readers.cursor() as cur:
        assert data.previous_run(cur, rfm)["run_id"] == before
        assert data.previous_run(cur, before) is None
        assert data.previous_run(cur, dash.base["runs"]["lapsed"]) is None
        mig = data.migration(cur, svc, rfm, "Champions")
        size = cur.execute("SELECT count(*) FROM service_memberships WHERE run_id = ? AND segment = 'Champions'",
                           [rfm]).fetchall()[0][0]
        stayed = cur.execute(
            "SELECT count(*) FROM service_memberships n JOIN segment_memberships p USING (customer_id) "
            "WHERE n.run_id = ? AND p.run_id = ? AND n.segment = 'Champions' AND p.segment = 'Champions'",
            [rfm, before]).fetchall()[0][0]
        before_size = cur.execute("SELECT count(*) FROM segment_memberships WHERE run_id = ? AND segment = 'Champions'",
                                  [before]).fetchall()[0][0]
        moved = cur.execute("SELECT from_segment, to_segment FROM segment_changes WHERE run_id = ? "
                            "AND customer_id = ?", [rfm, dash.base["moved"]]).fetchall()
    assert sum(r["customers"] for r in mig["came_from"]) == size
    assert sum(r["customers"] for r in mig["went_to"]) == before_size
    assert {r["segment"]: r["customers"] for r in mig["came_from"]}["Champions"] == stayed
    assert {r["segment"]: r["customers"] for r in mig["went_to"]}["Champions"] == stayed
    (old, new), = moved  # the live order moved one customer
    html = dash.client.get(_seg_url(rfm, new)).text
    assert 'data-chart="chart-migration"' in html and 'data-chart="chart-live"' in html
    assert dash.base["moved"] in html.split('id="recent-changes"')[1]
    with svc.readers.cursor() as cur:
        live_in = data.migration(cur, svc, rfm, new)["live_in"]
        live_out = data.migration(cur, svc, rfm, old)["live_out"]
    assert {"segment": old, "changes": 1} in live_in and {"segment": new, "changes": 1} in live_out


def test_customer_page_timeline_segments_clv_and_recommendations(dash):
    cid = dash.base["moved"]
    html = dash.client.get(f"/dashboard/customers/{cid}").text
    text = _text(html)
    with dash.app.state.service.readers.cursor() as cur:
        found = queries.customer(cur, dash.app.state.service, cid)
        orders = cur.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [cid]).fetchall()[0][0]
        browsing = cur.execute("SELECT count(*) FROM browsing_events WHERE customer_id = ?", [cid]).fetchall()[0][0]
        email = cur.execute("SELECT count(*) FROM email_events WHERE customer_id = ?", [cid]).fetchall()[0][0]
    assert f"{orders} orders, {browsing} browsing events, {email} email events" in text
    assert 'data-chart="chart-timeline"' in html
    assert "dash-1" in text  # the live order is on the timeline
    assert f'id="kpi-orders">{found["features"]["orders_count"]:,}<' in html
    assert f'id="kpi-clv">{found["clv"]["clv"]:,.2f}<' in html
    for s in found["segments"]:
        for name in s["segments"]:
            assert name in text
    assert found["recommendations"] and found["recommendations"][0]["product_id"]
    recs = html.split('id="recommendations"')[1].split("</table>")[0]
    assert (found["recommendations"][0]["product_name"] or found["recommendations"][0]["product_id"]) in recs
    r = dash.client.get("/dashboard/customers", params={"customer_id": " C000002 "}, follow_redirects=False)
    assert r.headers["location"] == "/dashboard/customers/C000002"
    assert dash.client.get("/dashboard/customers/NOBODY").status_code == 404


def test_campaign_lift_per_segment_with_intervals(dash):
    rfm = dash.base["runs"]["rfm"]
    expected = dash.base["campaign"].conversion
    html = dash.client.get("/dashboard/campaigns", params={"campaign": CAMPAIGN, "run": rfm}).text
    assert 'data-chart="chart-conversion"' in html and 'data-chart="chart-revenue"' in html
    table = _text(html.split('id="lift"')[1].split("</table>")[0])
    for row in expected.to_dict("records"):
        if row["n_treatment"] and row["n_control"]:
            assert (f"{row['segment']} {row['n_treatment']:,} {row['n_control']:,} "
                    f"{100 * row['rate_treatment']:.1f}% {100 * row['rate_control']:.1f}% "
                    f"{100 * row['lift']:+.1f} {100 * row['lift_low']:+.1f} to {100 * row['lift_high']:+.1f}") in table
    # Default: the first campaign with both arms, segments of the default run.
    default = dash.client.get("/dashboard/campaigns").text
    assert f'value="{CAMPAIGN}" selected' in default and 'id="lift"' in default
    assert "has no customers in a treatment or control arm" in dash.client.get(
        "/dashboard/campaigns", params={"campaign": "BF-2024"}).text
    assert "no segmentation run" in dash.client.get("/dashboard/campaigns", params={"run": "nope"}).text


@pytest.mark.parametrize("rule, where", [
    ("orders_count >= 2", "orders_count >= 2"),
    ("recency_days <= 30 and net_revenue > 100", "recency_days <= 30 AND net_revenue > 100"),
    ("aov >= p80(aov) or top_category contains 'BOOK'",
     "aov >= (SELECT quantile_cont(aov, 0.8) FROM f) OR contains(lower(top_category), 'book')"),
    ("last_order_date >= today - 90 days", "last_order_date >= (SELECT max(as_of) FROM f) - INTERVAL 90 DAY"),
    ("loyalty_member and country in ('DE', 'FR')", "loyalty_member AND country IN ('DE', 'FR')"),
])
def test_rule_check_counts_equal_a_direct_duckdb_count(dash, rule, where):
    r = dash.client.post("/dashboard/api/rule-check", json={"rule": rule})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["valid"], body
    with dash.app.state.service.readers.cursor() as cur:
        union = ("SELECT * EXCLUDE (computed_at) FROM service_features UNION ALL BY NAME SELECT * FROM "
                 "customer_features WHERE customer_id NOT IN (SELECT customer_id FROM service_features)")
        count, total = cur.execute(f"WITH f AS ({union}) SELECT count_if({where}), count(*) FROM f").fetchall()[0]
        live = cur.execute("SELECT count(*) FROM service_features").fetchall()[0][0]
    assert live >= 1  # the live row overrides the batch one
    assert (body["count"], body["total"]) == (count, total)
    assert body["share"] == pytest.approx(count / total)


@pytest.mark.parametrize("rule, reason, col", [
    ("ordrs_count > 1", "unknown column 'ordrs_count'", 1),
    ("orders_count > 1 and", "incomplete rule", 18),
    ("recency_days > 'abc'", None, None),
    ("orders_count; DROP TABLE orders", None, None),
    ("", "empty rule", None),
])
def test_rule_check_reports_the_error_with_its_position(dash, rule, reason, col):
    body = dash.client.post("/dashboard/api/rule-check", json={"rule": rule}).json()
    assert body["valid"] is False
    if reason:
        assert body["error"]["reason"].startswith(reason)
    if col:
        assert body["error"]["col"] == col and body["error"]["line"] == 1
        assert f"at 1:{col}" in body["error"]["message"]
    assert _read(dash.app, "SELECT count(*) FROM orders")[0][0] > 0
    assert dash.client.post("/dashboard/api/rule-check", json={"nope": 1}).status_code == 422
    assert dash.client.post("/dashboard/api/rule-check", content=b"{not json").status_code == 422
    assert dash.client.post("/dashboard/api/rule-check", json={"rule": "x" * 30_000}).status_code == 413


def test_rule_editor_page_lists_the_columns(dash):
    html = dash.client.get("/dashboard/rules").text
    assert 'id="rule"' in html and 'data-endpoint="/dashboard/api/rule-check"' in html
    for name in ("orders_count", "recency_days", "top_category", "p80"):
        assert name in html


def test_pages_work_on_an_empty_store(tmp_path):
    path = tmp_path / "empty.duckdb"
    with Store(path) as store:
        token = create_key(store, "read")[1]
    app = create_app(path)
    with TestClient(app, cookies={COOKIE: token}) as client:
        for url in ("/dashboard/", "/dashboard/campaigns", "/dashboard/rules"):
            assert client.get(url).status_code == 200, url
        assert "The store has no campaigns" in client.get("/dashboard/campaigns").text
        assert "No live segmentation" in client.get("/dashboard/").text
        for url in ("/dashboard/customers/C1", "/dashboard/segmentations/r1", _seg_url("r1", "a"),
                    "/dashboard/segmentations/r1/export.csv?segment=a"):
            assert client.get(url).status_code == 404, url
        body = client.post("/dashboard/api/rule-check", json={"rule": "orders_count > 1"}).json()
        assert body["valid"] and body["count"] == body["total"] == 0


# -- in a browser ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(base, tmp_path):
    """The app under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    app = _start(base, tmp_path / "e2e.duckdb")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    import httpx

    cid = _read(app, "SELECT customer_id FROM customer_features WHERE orders_count > 0 "
                     "ORDER BY recency_days DESC, customer_id LIMIT 1")[0][0]
    r = httpx.post(f"{url}/v1/events", headers={"Authorization": f"Bearer {base['tokens']['write']}"},
                   json={"type": "order", "event_id": "e2e-1", "customer_id": cid, "time": "2025-01-02T10:00:00",
                         "total": 250.0})
    assert r.status_code == 200, r.text
    yield url, app
    srv.should_exit = True
    thread.join(timeout=20)


@pytest.mark.slow
def test_dashboard_in_chromium(server, base, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    url, app = server
    shots = Path(os.environ.get("CUSTSEG_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    rfm = base["runs"]["rfm"]
    with app.state.service.readers.cursor() as cur:
        champions = queries.members(cur, app.state.service, rfm, "Champions", 1, 1000)["items"]
        features = data.features_sql(cur)
        orders2 = cur.execute(f"SELECT count(*) FROM ({features}) WHERE orders_count >= 2").fetchall()[0][0]
    ids = [m["customer_id"] for m in champions]
    customer = ids[0]
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))

        def charts_drawn(name: str) -> int:
            page.wait_for_load_state("load")
            expected = page.locator("[data-chart-target]").count()
            if expected:
                page.wait_for_function(
                    "n => document.querySelectorAll('[data-chart-target] .main-svg').length >= n && "
                    "Array.from(document.querySelectorAll('[data-chart-target]'))"
                    ".every(d => d.querySelectorAll('path, rect').length > 3)", arg=expected, timeout=30_000)
            drawn = page.evaluate("Array.from(document.querySelectorAll('[data-chart-target]'))"
                                  ".filter(d => d.querySelector('svg.main-svg') && "
                                  "d.getBoundingClientRect().height > 100).length")
            assert drawn == expected, name
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            return drawn

        # Login.
        page.goto(f"{url}/dashboard/")
        assert "/dashboard/login" in page.url
        charts_drawn("login")
        page.fill("#key", "csk_0000000000000000_wrong")
        page.click("button[type=submit]")
        assert page.locator(".error").is_visible()
        page.fill("#key", base["tokens"]["read"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/dashboard/")
        cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # not readable by scripts

        assert charts_drawn("overview") == 4
        page.goto(f"{url}/dashboard/segmentations/{urllib.parse.quote(rfm, safe='')}")
        assert charts_drawn("segmentation") == 2
        assert page.locator("#profile tbody tr").count() >= 5

        # A segment: search, paging, export.
        page.goto(f"{url}{_seg_url(rfm, 'Champions', size=5)}")
        assert charts_drawn("segment") >= 1
        rows = page.locator("#members tbody tr td:first-child").all_inner_texts()
        assert rows == ids[:5]
        page.click("#next-page")
        page.wait_for_load_state("load")
        assert page.locator("#members tbody tr td:first-child").all_inner_texts() == ids[5:10]
        needle = ids[2][-3:]
        page.fill("#member-search", needle)
        page.click(".toolbar button[type=submit]")
        page.wait_for_load_state("load")
        assert page.locator("#members tbody tr td:first-child").all_inner_texts() == \
            [c for c in ids if needle in c.lower()][:5]
        with page.expect_download() as info:
            page.click("#export")
        download = info.value
        assert download.suggested_filename.endswith(".csv")
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        exported = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert [r["customer_id"] for r in exported] == ids

        # The segment a live order moved a customer into: migration and live moves.
        (moved_to,), = _read(app, "SELECT to_segment FROM segment_changes WHERE run_id = ? AND cause = 'e2e-1'",
                             [rfm])
        page.goto(f"{url}{_seg_url(rfm, moved_to)}")
        assert charts_drawn("segment-live") == 2
        assert page.locator("#recent-changes tbody tr").count() == 1

        page.goto(f"{url}/dashboard/customers/{customer}")
        assert charts_drawn("customer") == 1
        page.goto(f"{url}/dashboard/campaigns?campaign={CAMPAIGN}&run={urllib.parse.quote(rfm)}")
        assert charts_drawn("campaigns") == 2
        page.wait_for_function("document.querySelectorAll('#chart-conversion .errorbar').length > 0")

        # The rule editor: a count as you type, then the error of a bad rule.
        page.goto(f"{url}/dashboard/rules")
        page.locator("#rule").press_sequentially("orders_count >= 2", delay=20)
        page.wait_for_selector(".rule-result.ok .count")
        assert page.inner_text(".rule-result .count") == f"{orders2:,} customers match"
        charts_drawn("rules")
        page.fill("#rule", "")
        page.locator("#rule").press_sequentially("ordrs_count >= 2", delay=20)
        page.wait_for_selector(".rule-result.bad .rule-error")
        assert "unknown column 'ordrs_count' at 1:1" in page.inner_text(".rule-error")
        assert "^" in page.inner_text(".rule-result pre")
        page.screenshot(path=str(shots / "rules-error.png"), full_page=True)

        # Logout: the pages ask for the key again.
        page.click("a.logout")
        page.wait_for_url(re.compile(r".*/dashboard/login$"))
        page.goto(f"{url}/dashboard/campaigns")
        assert "/dashboard/login" in page.url
        browser.close()
    # The one error is the deliberately wrong key: the login page answers it with 401.
    refused = [e for e in errors if "/dashboard/login" in e and "status of 401" in e]
    assert len(refused) == 1 and [e for e in errors if e not in refused] == []
    for name in ("overview", "segmentation", "segment", "customer", "campaigns", "rules"):
        assert (shots / f"{name}.png").stat().st_size > 20_000, name


def test_customer_timeline_holds_the_rows_the_cleaning_attributes_by_email(base, tmp_path):
    """An order known only by the customer's email (as in exports without ids) is on their timeline."""
    app = _start(base, tmp_path / "email.duckdb")
    with TestClient(app) as client:
        cid, mail = _read(app, "SELECT customer_id, email FROM customers WHERE email IS NOT NULL "
                               "ORDER BY customer_id LIMIT 1")[0]
        order = {"type": "order", "event_id": "by-email-1", "order_id": "BY-EMAIL-1", "email": f" {mail.upper()} ",
                 "time": "2025-01-02T10:00:00", "total": 42.0}
        r = client.post("/v1/events", json=order, headers={"Authorization": f"Bearer {base['tokens']['write']}"})
        assert r.status_code == 200, r.text
        with app.state.service.readers.cursor() as cur:
            found = dashboard_data.customer(cur, app.state.service, cid)
        assert "BY-EMAIL-1" in [o["order_id"] for o in found["orders"]]
        assert len(found["orders"]) == found["features"]["orders_all"]
