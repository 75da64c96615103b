"""The service's read and admin API: audiences, migration, campaigns, keys and deletions.

Every number is compared with the library function the CLI calls on the same store
(``plan_audience``, ``export_audience``, ``compare_runs``, ``analyze_campaign``), computed
before the service opens the store.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.measure import analyze_campaign
from custseg.profiles import compare_runs
from custseg.segmenters.rules.templates import run_template
from custseg.service.app import create_app
from custseg.service.auth import create_key
from custseg.service.privacy import was_deleted
from custseg.targeting import export_audience, plan_audience

AS_OF = dt.date(2025, 1, 1)
EARLIER = dt.date(2024, 7, 1)
SEGMENTS = "At Risk,Champions"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A demo store with two RFM runs (as of mid-2024 and 2025) and the `lapsed` template."""
    path = tmp_path_factory.mktemp("api") / "base.duckdb"
    with Store(path) as store:
        load_demo(store, make_store(300, seed=5))
        pipeline.build_and_store_features(store, EARLIER)
        first = pipeline.segment_rfm(store)
        pipeline.build_and_store_features(store, AS_OF)
        second = pipeline.segment_rfm(store)
        run_template(store, "lapsed")
    return {"path": path, "first": first, "second": second}


@pytest.fixture(scope="module")
def expected(base, tmp_path_factory):
    """What the library gives on the same store, computed before the service opens it."""
    with Store(base["path"]) as store:
        plan = plan_audience(store, SEGMENTS, run_id=base["second"], holdout=0.2, seed=7)
        comparison = compare_runs(store, base["first"], base["second"])
        campaign = analyze_campaign(store, "CAMP-WINBACK")
        campaign_run = analyze_campaign(store, "CAMP-WINBACK", segments=base["first"], revenue_ci="bootstrap",
                                        seed=3, alpha=0.1)
    copy = tmp_path_factory.mktemp("export") / "copy.duckdb"
    shutil.copy(base["path"], copy)
    with Store(copy) as store:
        export_audience(store, "At Risk", path=copy.parent / "out.csv", run_id=base["second"], holdout=0.1,
                        seed=3, campaign_id="EXP-1", recommendations=0)
        arms = sorted(store.con.execute("SELECT customer_id, arm FROM campaign_assignments "
                                        "WHERE campaign_id = 'EXP-1'").fetchall())
        description = store.con.execute("SELECT description FROM campaigns WHERE campaign_id = 'EXP-1'").fetchall()
    return {"plan": plan, "comparison": comparison, "campaign": campaign, "campaign_run": campaign_run,
            "arms": arms, "description": description[0][0]}


def _keys(path) -> dict[str, dict]:
    out = {}
    with Store(path) as store:
        for scope in ("read", "write", "admin"):
            key_id, token = create_key(store, scope, name=f"test {scope}")
            out[scope] = {"Authorization": f"Bearer {token}"}
            out[f"{scope}_id"] = key_id
    return out


@pytest.fixture
def service(tmp_path, base):
    """``(client, keys, app)`` of a service on a fresh copy of the store."""
    path = tmp_path / "live.duckdb"
    shutil.copy(base["path"], path)
    keys = _keys(path)
    app = create_app(path)
    with TestClient(app) as client:
        yield client, keys, app


@pytest.fixture(scope="module")
def shared(tmp_path_factory, base):
    """One service for the tests that write nothing."""
    path = tmp_path_factory.mktemp("shared_api") / "live.duckdb"
    shutil.copy(base["path"], path)
    keys = _keys(path)
    app = create_app(path)
    with TestClient(app) as client:
        yield client, keys, app


def _read(app, sql, params=()):
    with app.state.service.readers.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


# -- audiences ----------------------------------------------------------------------------------
def test_audience_equals_the_cli_plan(shared, base, expected):
    client, keys, _ = shared
    plan = expected["plan"]
    r = client.get(f"/v1/segments/{base['second']}/audience",
                   params={"segment": SEGMENTS, "control": 0.2, "seed": 7}, headers=keys["read"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["segments"] == list(plan.segments) == ["At Risk", "Champions"]
    for name, value in plan.counts().items():
        assert body[name] == value, name
    assert body["holdout"] > 0 and body["control_share"] == pytest.approx(plan.holdout / plan.eligible)
    assert body["per_segment"] == plan.per_segment.to_dict("records")
    members = {(m["customer_id"], m["arm"]) for m in body["members"]}
    assert members == {(c, "treatment") for c in plan.ids("treatment")} | {(c, "control") for c in plan.ids("control")}
    assert len(body["members"]) == plan.eligible
    by_id = plan.members.set_index("customer_id")
    assert all(m["segment"] == by_id.loc[m["customer_id"], "segment"] for m in body["members"])
    assert {m["play"] for m in body["members"] if m["segment"] == "At Risk"} == {"Win back"}


def test_audience_is_seeded_and_filters_arms(shared, base):
    client, keys, _ = shared
    url = f"/v1/segments/{base['second']}/audience"
    params = {"segment": SEGMENTS, "control": 0.2}
    a = client.get(url, params={**params, "seed": 1}, headers=keys["read"]).json()
    b = client.get(url, params={**params, "seed": 1}, headers=keys["read"]).json()
    c = client.get(url, params={**params, "seed": 2}, headers=keys["read"]).json()
    held = lambda body: {m["customer_id"] for m in body["members"] if m["arm"] == "control"}  # noqa: E731
    assert held(a) == held(b) and held(a) != held(c) and len(held(a)) == len(held(c))
    only = client.get(url, params={**params, "seed": 1, "arm": "control"}, headers=keys["read"]).json()
    assert {m["customer_id"] for m in only["members"]} == held(a) and only["holdout"] == a["holdout"]
    r = client.get(url, params={**params, "seed": 1, "format": "csv"}, headers=keys["read"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["customer_id", "segment", "arm", "email", "first_name", "last_name", "play", "offer"]
    assert [(x["customer_id"], x["arm"]) for x in rows] == [(m["customer_id"], m["arm"]) for m in a["members"]]


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"segment": "Nope"}, 404, "segment 'Nope' is not in run"),
    ({"segment": "At Rsk"}, 404, "did you mean 'At Risk'"),
    ({"segment": "At Risk", "control": 1.0}, 422, "less than 1"),
    ({"segment": "At Risk", "seed": -1}, 422, "greater than or equal to 0"),
    ({"segment": "At Risk", "format": "xml"}, 422, "'json' or 'csv'"),
    ({}, 422, "Field required"),
])
def test_audience_errors(shared, base, params, status, words):
    client, keys, _ = shared
    r = client.get(f"/v1/segments/{base['second']}/audience", params=params, headers=keys["read"])
    assert r.status_code == status and words in r.text and "Traceback" not in r.text


def test_audience_of_an_unknown_run_is_a_404(shared):
    client, keys, _ = shared
    r = client.get("/v1/segments/no-such-run/audience", params={"segment": "all"}, headers=keys["read"])
    assert r.status_code == 404 and r.json() == {"detail": "no segmentation run 'no-such-run'; see GET /v1/runs "
                                                           "for the run ids"}


def test_post_audience_records_the_campaign_as_the_cli_export(service, base, expected):
    client, keys, app = service
    body = {"segment": "At Risk", "run_id": base["second"], "control": 0.1, "seed": 3, "campaign_id": "EXP-1"}
    r = client.post("/v1/audiences", json=body, headers=keys["write"])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["campaign_id"] == "EXP-1" and not out["reused"]
    arms = sorted(_read(app, "SELECT customer_id, arm FROM campaign_assignments WHERE campaign_id = 'EXP-1'"))
    assert arms == expected["arms"]
    assert out["exported"] == sum(a == "treatment" for _, a in arms) and out["holdout"] == sum(
        a == "control" for _, a in arms)
    assert _read(app, "SELECT description FROM campaigns WHERE campaign_id = 'EXP-1'") == [(expected["description"],)]
    # the same arms again: nothing added; other arms under the same id: refused
    again = client.post("/v1/audiences", json=body, headers=keys["write"])
    assert again.status_code == 200 and again.json()["reused"]
    assert len(_read(app, "SELECT * FROM campaign_assignments WHERE campaign_id = 'EXP-1'")) == len(arms)
    other = client.post("/v1/audiences", json={**body, "seed": 4}, headers=keys["write"])
    assert other.status_code == 409 and "already has" in other.json()["detail"]
    # the recorded campaign is listed and can be measured
    listed = {c["campaign_id"]: c for c in client.get("/v1/campaigns", headers=keys["read"]).json()["items"]}
    assert listed["EXP-1"]["treatment"] == out["exported"] and listed["EXP-1"]["control"] == out["holdout"]
    measured = client.get("/v1/campaigns/EXP-1", headers=keys["read"]).json()
    assert measured["segments_from"] == f"run {base['second']}"
    # a generated id when none is given
    fresh = client.post("/v1/audiences", json={"segment": "all"}, headers=keys["write"])
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["campaign_id"].startswith("AUD-") and fresh.json()["method"] == "template:lapsed"


def test_post_audience_errors(shared, base):
    client, keys, _ = shared
    post = lambda body: client.post("/v1/audiences", json=body, headers=keys["write"])  # noqa: E731
    assert post({"segment": "Nope", "run_id": base["second"]}).status_code == 404
    assert post({"segment": "At Risk", "run_id": "nope"}).json()["detail"].startswith("no segmentation run 'nope'")
    assert post({"segment": "At Risk", "control": 2}).status_code == 422
    assert post({"segment": "At Risk", "colour": "red"}).status_code == 422
    assert client.post("/v1/audiences", json={"segment": "At Risk"}, headers=keys["read"]).status_code == 403


# -- migration ----------------------------------------------------------------------------------
def test_migration_equals_compare_runs(shared, base, expected):
    client, keys, _ = shared
    c = expected["comparison"]
    r = client.get(f"/v1/runs/{base['second']}/migration", params={"from_run": base["first"]}, headers=keys["read"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == list(c.counts.index) and body["columns"] == list(c.counts.columns)
    assert body["counts"] == c.counts.to_numpy().tolist()
    assert sum(map(sum, body["counts"])) > 0 and body["same_segment"] == c.same_segment < c.customers_in_both
    assert body["customers_in_both"] == c.customers_in_both
    long = c.long()
    assert [(x["from_segment"], x["to_segment"], x["customers"]) for x in body["cells"]] == list(
        zip(long["from_segment"], long["to_segment"], long["customers"]))
    assert [x["share"] for x in body["cells"]] == pytest.approx(long["share"].tolist())
    assert [(g["segment"], g["customers_from"], g["customers_to"]) for g in body["growth"]] == list(
        zip(c.growth["segment"], c.growth["customers_a"], c.growth["customers_b"]))
    # default from_run: the previous run of the same method
    assert client.get(f"/v1/runs/{base['second']}/migration", headers=keys["read"]).json() == body


def test_migration_errors(shared, base):
    client, keys, _ = shared
    r = client.get(f"/v1/runs/{base['first']}/migration", headers=keys["read"])
    assert r.status_code == 404 and "first run of its method" in r.json()["detail"]
    r = client.get(f"/v1/runs/{base['second']}/migration", params={"from_run": "x"}, headers=keys["read"])
    assert r.status_code == 404 and "'x' (from_run)" in r.json()["detail"]
    assert client.get("/v1/runs/x/migration", headers=keys["read"]).status_code == 404


# -- campaigns ----------------------------------------------------------------------------------
def _close(api: list[dict], frame, columns):
    assert [row["segment"] for row in api] == frame["segment"].tolist()
    for col in columns:
        got = [row[col] for row in api]
        want = [None if v != v else v for v in frame[col].tolist()]  # NaN -> None
        assert got == pytest.approx(want, nan_ok=True), col


def test_campaign_lift_equals_measure(shared, expected):
    client, keys, _ = shared
    a = expected["campaign"]
    r = client.get("/v1/campaigns/CAMP-WINBACK", headers=keys["read"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["campaign"]["campaign_id"] == "CAMP-WINBACK" and body["segments_from"] == a.segments_from
    assert body["window"]["start"] == str(a.window.start) and body["notes"] == a.notes
    _close(body["conversion"], a.conversion, ["n_treatment", "n_control", "rate_treatment", "rate_control", "lift",
                                              "lift_low", "lift_high", "p_value", "p_holm"])
    _close(body["revenue"], a.revenue, ["revenue_per_recipient_treatment", "lift", "lift_low", "lift_high",
                                        "incremental_revenue"])
    _close(body["summary"], a.table, ["conversion_lift", "revenue_per_recipient_lift", "did"])
    assert [row["verdict"] for row in body["conversion"]] == a.conversion["verdict"].tolist()


def test_campaign_options_are_passed_through(shared, base, expected):
    client, keys, _ = shared
    a = expected["campaign_run"]
    r = client.get("/v1/campaigns/CAMP-WINBACK", params={"run_id": base["first"], "revenue_ci": "bootstrap",
                                                          "seed": 3, "alpha": 0.1}, headers=keys["read"])
    body = r.json()
    assert body["alpha"] == 0.1 and body["revenue_ci"] == "bootstrap"
    _close(body["revenue"], a.revenue, ["lift", "lift_low", "lift_high", "p_value"])
    _close(body["conversion"], a.conversion, ["lift_low", "lift_high"])


def test_campaign_list_and_errors(shared):
    client, keys, _ = shared
    body = client.get("/v1/campaigns", headers=keys["read"]).json()
    ids = [c["campaign_id"] for c in body["items"]]
    assert "CAMP-WINBACK" in ids and body["total"] == len(ids)
    winback = body["items"][ids.index("CAMP-WINBACK")]
    assert winback["measurable"] and winback["treatment"] > winback["control"] > 0
    starts = [c["start_time"] for c in body["items"] if c["start_time"]]
    assert starts == sorted(starts, reverse=True)
    page = client.get("/v1/campaigns", params={"size": 2, "page": 2}, headers=keys["read"]).json()
    assert [c["campaign_id"] for c in page["items"]] == ids[2:4]
    r = client.get("/v1/campaigns/NOPE", headers=keys["read"])
    assert r.status_code == 404 and "no campaign 'NOPE'" in r.json()["detail"]
    r = client.get("/v1/campaigns/NL-2024-SPRING", headers=keys["read"])  # no assignments: cannot be measured
    assert r.status_code == 422 and "no customers in a treatment or control arm" in r.text
    assert client.get("/v1/campaigns/CAMP-WINBACK", params={"run_id": "x"}, headers=keys["read"]).status_code == 404
    assert client.get("/v1/campaigns/CAMP-WINBACK", params={"alpha": 0}, headers=keys["read"]).status_code == 422


# -- admin ----------------------------------------------------------------------------------------
def test_key_create_use_revoke(service):
    client, keys, app = service
    listed = client.get("/v1/keys", headers=keys["admin"]).json()
    assert {k["key_id"] for k in listed} == {keys["read_id"], keys["write_id"], keys["admin_id"]}
    assert all("hash" not in json.dumps(k) and "token" not in k for k in listed)
    r = client.post("/v1/keys", json={"scope": "write", "name": "crm"}, headers=keys["admin"])
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith(f"csk_{new['key_id']}_") and new["scope"] == "write" and new["name"] == "crm"
    token = {"Authorization": f"Bearer {new['token']}"}
    assert client.get("/v1/runs", headers=token).status_code == 200
    assert client.get("/v1/keys", headers=token).status_code == 403
    stored = _read(app, "SELECT key_hash FROM api_keys WHERE key_id = ?", [new["key_id"]])[0][0]
    assert new["token"].split("_", 2)[2] not in stored
    r = client.delete(f"/v1/keys/{new['key_id']}", headers=keys["admin"])
    assert r.status_code == 200 and r.json()["revoked_now"] and r.json()["revoked_at"]
    assert client.get("/v1/runs", headers=token).status_code == 401
    again = client.delete(f"/v1/keys/{new['key_id']}", headers=keys["admin"]).json()
    assert again["revoked_now"] is False and again["revoked_at"] == r.json()["revoked_at"]
    status = {k["key_id"]: k["status"] for k in client.get("/v1/keys", headers=keys["admin"]).json()}
    assert status[new["key_id"]] == "revoked" and status[keys["admin_id"]] == "active"
    assert client.delete("/v1/keys/0000000000000000", headers=keys["admin"]).status_code == 404
    assert client.post("/v1/keys", json={"scope": "root"}, headers=keys["admin"]).status_code == 422


def test_delete_customer_removes_every_row_and_logs(service):
    client, keys, app = service
    cid = "C000007"
    tables = [r[0] for r in _read(app, "SELECT DISTINCT table_name FROM information_schema.columns "
                                       "WHERE column_name = 'customer_id' AND table_schema = 'main'")]
    before = {t: _read(app, f'SELECT count(*) FROM "{t}" WHERE customer_id = ?', [cid])[0][0] for t in tables}
    assert before["customers"] == 1 and before["orders"] > 0
    # the customer's live state exists too
    assert client.post("/v1/events", json={"type": "page_view", "event_id": "ev-1", "customer_id": cid,
                                           "time": "2025-01-02T10:00:00"}, headers=keys["write"]).status_code == 200
    assert client.delete(f"/v1/customers/{cid}", headers=keys["write"]).status_code == 403
    r = client.delete(f"/v1/customers/{cid}", headers=keys["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requested_by"] == keys["admin_id"] and body["total"] == sum(body["rows_deleted"].values())
    assert body["rows_deleted"]["customers"] == 1 and body["rows_deleted"]["service_events"] == 1
    assert {t: _read(app, f'SELECT count(*) FROM "{t}" WHERE customer_id = ?', [cid])[0][0] for t in tables} == \
        dict.fromkeys(tables, 0)
    log = _read(app, "SELECT deletion_id, customer_hash, requested_by, rows_deleted FROM deletion_log")
    assert [(x[0], x[2], json.loads(x[3])) for x in log] == [(body["deletion_id"], keys["admin_id"],
                                                              body["rows_deleted"])]
    assert cid not in log[0][1] and was_deleted(app.state.store, cid) == [body["deletion_id"]]
    assert client.get(f"/v1/customers/{cid}", headers=keys["read"]).status_code == 404
    again = client.delete(f"/v1/customers/{cid}", headers=keys["admin"])
    assert again.status_code == 404 and "nothing was deleted" in again.json()["detail"]
    assert len(_read(app, "SELECT * FROM deletion_log")) == 1
    # the service goes on: events for another customer are applied
    r = client.post("/v1/events", json={"type": "page_view", "event_id": "ev-2", "customer_id": "C000008",
                                        "time": "2025-01-02T11:00:00"}, headers=keys["write"])
    assert r.status_code == 200 and r.json()["applied"] == 1
    # nothing of the deleted customer comes back from the live state's memory: a new order of the same
    # id is their only one
    r = client.post("/v1/events", json={"type": "order", "event_id": "ev-3", "customer_id": cid, "total": 20.0,
                                        "time": "2025-01-02T12:00:00"}, headers=keys["write"])
    assert r.status_code == 200 and r.json()["applied"] == 1
    features = _read(app, "SELECT orders_count, orders_all, net_revenue, emails_sent FROM service_features "
                          "WHERE customer_id = ?", [cid])
    assert features == [(1, 1, 20.0, 0)]


# -- scopes ---------------------------------------------------------------------------------------
ENDPOINTS = [  # (method, path, json, lowest scope)
    ("GET", "/v1/segments/{second}/audience?segment=all", None, "read"),
    ("POST", "/v1/audiences", {"segment": "all"}, "write"),
    ("GET", "/v1/runs/{second}/migration", None, "read"),
    ("GET", "/v1/campaigns", None, "read"),
    ("GET", "/v1/campaigns/CAMP-WINBACK", None, "read"),
    ("GET", "/v1/keys", None, "admin"),
    ("POST", "/v1/keys", {"scope": "read"}, "admin"),
    ("DELETE", "/v1/keys/0000000000000000", None, "admin"),
    ("DELETE", "/v1/customers/NOBODY", None, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needed"), ENDPOINTS)
def test_scopes(shared, base, method, path, body, needed):
    client, keys, _ = shared
    url = path.format(second=base["second"])
    call = lambda headers: client.request(method, url, json=body, headers=headers)  # noqa: E731
    assert call({}).status_code == 401
    assert call({"Authorization": "Bearer csk_0000000000000000_nope"}).status_code == 401
    order = ("read", "write", "admin")
    for scope in order:
        if order.index(scope) < order.index(needed):
            r = call(keys[scope])
            assert r.status_code == 403 and f"this needs '{needed}'" in r.json()["detail"]
    if method == "GET":
        assert call(keys[needed]).status_code == 200


def test_openapi_lists_the_new_endpoints(shared):
    client, _, _ = shared
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [("/v1/segments/{run_id}/audience", "get"), ("/v1/audiences", "post"),
                         ("/v1/runs/{run_id}/migration", "get"), ("/v1/campaigns", "get"),
                         ("/v1/campaigns/{campaign_id}", "get"), ("/v1/keys", "get"), ("/v1/keys", "post"),
                         ("/v1/keys/{key_id}", "delete"), ("/v1/customers/{customer_id}", "delete")]:
        assert method in paths[path], (path, method)
        assert paths[path][method].get("security"), (path, method)
