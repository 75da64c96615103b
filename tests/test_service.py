"""The live service's API: events in (validation, idempotency, group commit), reads out, errors as JSON."""

from __future__ import annotations

import datetime as dt
import shutil
import threading

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.segmenters.rules.templates import run_template
from custseg.service.app import create_app

try:
    from custseg.service.auth import create_key
except ImportError:  # pragma: no cover - before auth.py exists
    create_key = None

AS_OF = dt.date(2025, 1, 1)  # the demo trades until 2024-12-31


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    """A small demo store after a batch run: features, RFM and the 'lapsed' template."""
    path = tmp_path_factory.mktemp("service") / "base.duckdb"
    with Store(path) as store:
        load_demo(store, make_store(300, seed=5))
        pipeline.build_and_store_features(store, AS_OF)
        pipeline.segment_rfm(store)
        run_template(store, "lapsed")
    return path


def _keys(path) -> dict[str, dict]:
    if create_key is None:
        return {s: {} for s in ("read", "write", "admin")}
    with Store(path) as store:
        return {s: {"Authorization": f"Bearer {create_key(store, s, name=f'test {s}')[1]}"}
                for s in ("read", "write", "admin")}


@pytest.fixture
def db(tmp_path, base_store):
    path = tmp_path / "live.duckdb"
    shutil.copy(base_store, path)
    return path


def _running(path):
    keys = _keys(path)
    app = create_app(path, max_batch=50)
    with TestClient(app) as client:
        yield client, keys, app


@pytest.fixture
def service(db):
    """``(client, headers by scope, app)`` of a running service on a fresh copy of the store."""
    yield from _running(db)


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory, base_store):
    """One service for the tests that store nothing (refused events, documentation)."""
    path = tmp_path_factory.mktemp("shared") / "live.duckdb"
    shutil.copy(base_store, path)
    yield from _running(path)


def _order(event_id="evt-1", customer="C000001", total=120.0, **extra):
    return {"type": "order", "event_id": event_id, "customer_id": customer, "time": "2025-01-02T10:00:00",
            "total": total, "items": [{"product_id": "P0001", "category": "books", "quantity": 2,
                                       "unit_price": total / 2}], **extra}


def _read(app, sql, params=()):
    with app.state.service.readers.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


# -- events in ----------------------------------------------------------------------------------
def test_an_order_lands_in_the_canonical_tables_with_provenance(service):
    client, keys, app = service
    r = client.post("/v1/events", json=_order(), headers=keys["write"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == 1 and body["events"] == [{"event_id": "evt-1", "status": "applied"}]
    assert body["as_of"] == "2025-01-03"  # the day after the event's day
    (customer,) = body["customers"]
    assert customer["customer_id"] == "C000001" and customer["evaluated"]
    assert {s["method"] for s in customer["segments"]} == {"rfm", "template:lapsed"}
    order = _read(app, "SELECT o.total, o.status, o.source_row, l.file, l.rows_accepted FROM orders o "
                       "JOIN ingest_log l USING (ingest_id) WHERE order_id = 'evt-1'")
    assert order == [(120.0, "completed", 1, "service:POST /v1/events", 1)]
    assert _read(app, "SELECT line_number, quantity, line_amount FROM order_items WHERE order_id = 'evt-1'") == \
        [(1, 2.0, 120.0)]
    (event,) = _read(app, "SELECT customer_id, event_type, payload, applied_at FROM service_events")
    assert event[:2] == ("C000001", "order") and '"total":120.0' in event[2] and event[3] is not None
    features = _read(app, "SELECT as_of, recency_days FROM service_features WHERE customer_id = 'C000001'")
    assert features == [(dt.date(2025, 1, 3), 1)]


def test_a_retried_event_is_not_counted_twice(service):
    client, keys, app = service
    first = client.post("/v1/events", json=_order(), headers=keys["write"]).json()
    again = client.post("/v1/events", json=_order(), headers=keys["write"]).json()
    assert first["applied"] == 1
    assert again["applied"] == 0 and again["duplicate"] == 1
    assert again["events"] == [{"event_id": "evt-1", "status": "duplicate"}]
    # The retry still answers the customer's current segments, unchanged.
    assert again["customers"][0]["segments"] == [
        {**s, "previous": s["segments"], "changed": False} for s in first["customers"][0]["segments"]]
    assert _read(app, "SELECT count(*) FROM orders WHERE order_id = 'evt-1'") == [(1,)]
    assert _read(app, "SELECT count(*) FROM service_events") == [(1,)]


def test_a_new_event_id_for_a_stored_order_is_kept_but_not_applied(service):
    client, keys, app = service
    stored = _read(app, "SELECT order_id, customer_id FROM orders WHERE customer_id IS NOT NULL LIMIT 1")[0]
    r = client.post("/v1/events", json=_order("evt-9", stored[1], order_id=stored[0]), headers=keys["write"]).json()
    assert r["events"] == [{"event_id": "evt-9", "status": "already_stored"}]
    assert _read(app, "SELECT count(*) FROM orders WHERE order_id = ?", [stored[0]]) == [(1,)]
    assert _read(app, "SELECT applied_at FROM service_events WHERE event_id = 'evt-9'") == [(None,)]
    assert _read(app, "SELECT rows_read, rows_accepted, rows_duplicate FROM ingest_log WHERE table_name = 'orders' "
                      "AND file LIKE 'service:%'") == [(1, 0, 1)]


def test_a_batch_of_every_event_type(service):
    client, keys, app = service
    t = "2025-01-02T09:00:00+01:00"  # stored in UTC: 08:00
    events = [
        _order("e-order"),
        {"type": "product_view", "event_id": "e-view", "customer_id": "C000002", "time": t, "session_id": "s1",
         "product_id": "P0002", "category": "Toys"},
        {"type": "add_to_cart", "event_id": "e-cart", "anonymous_id": "dev-1", "time": t},
        {"type": "email_open", "event_id": "e-open", "customer_id": "C000003", "time": t, "campaign_id": "NL-1"},
        {"type": "email_unsubscribe", "event_id": "e-unsub", "customer_id": "C000003", "time": t},
        {"type": "profile_update", "event_id": "e-move", "customer_id": "C000004", "time": t, "city": "  Lyon ",
         "email_consent": False},
        {"type": "profile_update", "event_id": "e-new", "customer_id": "NEW-1", "time": t,
         "email": " New.Person@Example.com ", "signup_date": "2025-01-02", "country": "fr"},
        {"type": "survey_answer", "event_id": "e-survey", "customer_id": "C000005", "time": t, "nps": 9,
         "interests": ["books", "garden"]},
    ]
    r = client.post("/v1/events", json={"events": events}, headers=keys["write"])
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == len(events)
    assert _read(app, "SELECT event_type, event_time FROM browsing_events WHERE event_id IN ('e-view', 'e-cart') "
                      "ORDER BY event_id") == [("add_to_cart", dt.datetime(2025, 1, 2, 8)),
                                               ("product_view", dt.datetime(2025, 1, 2, 8))]
    assert _read(app, "SELECT event_type FROM email_events WHERE customer_id = 'C000003' ORDER BY 1") == \
        [("open",), ("unsubscribe",)]
    assert _read(app, "SELECT city, email_consent FROM customers WHERE customer_id = 'C000004'") == [("Lyon", False)]
    assert _read(app, "SELECT email, signup_date, country FROM customers WHERE customer_id = 'NEW-1'") == \
        [("new.person@example.com", dt.date(2025, 1, 2), "fr")]
    assert _read(app, "SELECT nps, interests FROM survey_responses WHERE response_id = 'e-survey'") == \
        [(9, "books,garden")]
    # Every named customer was re-evaluated; the new one has features (no orders: no RFM segment).
    answered = {c["customer_id"]: c for c in r.json()["customers"]}
    assert set(answered) >= {"C000001", "C000002", "C000003", "C000004", "C000005", "NEW-1"}
    new = {s["method"]: s["segments"] for s in answered["NEW-1"]["segments"]}
    assert new == {"rfm": [], "template:lapsed": ["No orders"]}
    assert _read(app, "SELECT email_unsubscribed FROM service_features WHERE customer_id = 'C000003'") == [(True,)]


def test_segment_changes_are_recorded_with_their_cause(service):
    client, keys, app = service
    # A customer who has not ordered for a long time orders again: RFM recency moves to 5.
    cid = _read(app, "SELECT customer_id FROM customer_features WHERE orders_count > 0 "
                     "ORDER BY recency_days DESC, customer_id LIMIT 1")[0][0]
    body = client.post("/v1/events", json=_order("comeback", cid, total=300.0), headers=keys["write"]).json()
    changed = [s for s in body["customers"][0]["segments"] if s["changed"]]
    assert changed, body
    feed = client.get("/v1/changes", params={"customer_id": cid}, headers=keys["read"]).json()
    assert {(c["run_id"], c["from_segment"], c["to_segment"]) for c in feed["items"]} == \
        {(s["run_id"], s["previous"][0] if s["previous"] else None, s["segments"][0]) for s in changed}
    assert {c["cause"] for c in feed["items"]} == {"comeback"}
    after = client.get("/v1/changes", params={"since": feed["next_since"]}, headers=keys["read"]).json()
    assert after["items"] == [] and after["next_since"] == feed["next_since"]


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body, loc, words", [
    ({"type": "order", "event_id": "x", "customer_id": "C1", "time": "2025-01-02"}, ["body", "event", "order"],
     "needs total or items"),
    ({**_order(), "total": "lots"}, ["body", "event", "order", "total"], "valid number"),
    ({**_order(), "status": "lost"}, ["body", "event", "order", "status"], "'completed', 'cancelled' or 'returned'"),
    ({**_order(), "colour": "red"}, ["body", "event", "order", "colour"], "Extra inputs"),
    ({**_order(), "time": "yesterday"}, ["body", "event", "order", "time"], "datetime"),
    ({**_order(), "event_id": "  "}, ["body", "event", "order", "event_id"], "must not be empty"),
    ({"type": "teleport", "event_id": "x", "time": "2025-01-02"}, ["body", "event"], "does not match"),
    ({"type": "page_view", "event_id": "x", "time": "2025-01-02"}, ["body", "event", "page_view"],
     "customer_id or anonymous_id"),
    ({"events": []}, ["body", "batch", "events"], "at least 1 item"),
    ({"events": [_order("a"), _order("a")]}, ["body", "events", 1, "event_id"], "appears twice"),
    ({"events": [_order(str(i)) for i in range(51)]}, ["body", "events"], "at most 50 events"),
    ({**_order(), "time": "2999-01-01T00:00:00"}, ["body", "time"], "in the future"),
])
def test_bad_events_get_a_clear_422(shared_service, body, loc, words):
    client, keys, app = shared_service
    r = client.post("/v1/events", json=body, headers=keys["write"])
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][:len(loc)] == loc and words in e["msg"] for e in errors), errors
    assert _read(app, "SELECT count(*) FROM service_events") == [(0,)]


def test_malformed_json_is_a_422_not_a_stack_trace(shared_service):
    client, keys, _ = shared_service
    r = client.post("/v1/events", content=b'{"type": "order",', headers={**keys["write"],
                                                                         "content-type": "application/json"})
    assert r.status_code == 422 and "json" in r.text.lower() and "Traceback" not in r.text


@pytest.mark.skipif(create_key is None, reason="custseg.service.auth is not there yet")
def test_keys_and_scopes(shared_service):
    client, keys, _ = shared_service
    assert client.post("/v1/events", json=_order()).status_code == 401
    assert client.post("/v1/events", json=_order(), headers=keys["read"]).status_code == 403
    assert client.get("/v1/segments").status_code == 401
    assert client.get("/v1/segments", headers=keys["read"]).status_code == 200
    assert client.get("/v1/health").status_code == 200  # no key needed


# -- group commit -------------------------------------------------------------------------------
def test_requests_waiting_for_the_writer_commit_together(service):
    from custseg.service.events import EventBatch

    _, _, app = service
    writer = app.state.service.writer
    batches = [EventBatch.model_validate({"events": [_order(f"g{i}", f"C{i + 1:06d}")]}).events for i in range(12)]
    with writer.paused():
        futures = [writer.submit(b) for b in batches]
        assert not any(f.done() for f in futures)  # nothing is answered before the commit
    results = [f.result(timeout=60) for f in futures]
    assert all(r["applied"] == 1 for r in results)
    last = writer.groups[-1]
    assert (last.requests, last.events, last.applied) == (12, 12, 12)
    # One transaction: one applied_at for all of them.
    assert _read(app, "SELECT count(DISTINCT applied_at), count(*) FROM service_events") == [(1, 12)]


def test_a_failing_request_does_not_fail_its_group(service, monkeypatch):
    import custseg.service.writer as writer_module
    from custseg.service.events import EventBatch

    _, keys, app = service
    real = writer_module.write_events

    def failing(store, events, *args, **kwargs):
        if any(e.event_id == "boom" for e in events):
            raise RuntimeError("simulated failure")
        return real(store, events, *args, **kwargs)

    monkeypatch.setattr(writer_module, "write_events", failing)
    writer = app.state.service.writer
    with writer.paused():
        futures = [writer.submit(EventBatch.model_validate({"events": [_order(i)]}).events)
                   for i in ("ok-1", "boom", "ok-2")]
    assert futures[0].result(60)["applied"] == 1 and futures[2].result(60)["applied"] == 1
    with pytest.raises(RuntimeError, match="simulated"):
        futures[1].result(60)
    assert _read(app, "SELECT event_id FROM service_events ORDER BY 1") == [("ok-1",), ("ok-2",)]
    quiet = TestClient(app, raise_server_exceptions=False)  # answers as a real server would
    r = quiet.post("/v1/events", json=_order("boom"), headers=keys["write"])
    assert r.status_code == 500 and r.json()["detail"].startswith("internal error") and "simulated" not in r.text


def test_reads_do_not_wait_for_the_writer(service, monkeypatch):
    client, keys, app = service
    live = app.state.service.live
    inside, release = threading.Event(), threading.Event()
    real = live.evaluate

    def slow(*args, **kwargs):
        inside.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(live, "evaluate", slow)
    sender = threading.Thread(target=lambda: client.post("/v1/events", json=_order(), headers=keys["write"]))
    sender.start()
    try:
        assert inside.wait(30)  # the writer is inside its transaction, events written but not committed
        r = client.get("/v1/customers/C000001", headers=keys["read"])
        assert r.status_code == 200 and r.json()["features_source"] == "batch"  # the last committed state
        assert _read(app, "SELECT count(*) FROM service_events") == [(0,)]
    finally:
        release.set()
        sender.join(60)
    assert _read(app, "SELECT count(*) FROM service_events") == [(1,)]


# -- reads ----------------------------------------------------------------------------------------
def test_customer_view(service):
    client, keys, _ = service
    before = client.get("/v1/customers/C000001", headers=keys["read"]).json()
    assert before["features_source"] == "batch" and before["features_as_of"] == AS_OF.isoformat()
    client.post("/v1/events", json=_order(), headers=keys["write"])
    after = client.get("/v1/customers/C000001", headers=keys["read"]).json()
    assert after["features_source"] == "live" and after["features_as_of"] == "2025-01-03"
    assert after["features"]["orders_count"] == before["features"]["orders_count"] + 1
    assert after["profile"]["customer_id"] == "C000001" and "ingest_id" not in after["profile"]
    rfm = next(s for s in after["segments"] if s["method"] == "rfm")
    assert rfm["segments"] and rfm["cause"] == "evt-1"
    assert rfm["plays"][0]["segment"] == rfm["segments"][0] and rfm["plays"][0]["play"]
    assert after["clv"] is None and after["recommendations"] == []  # no CLV or recommendation run in this store
    r = client.get("/v1/customers/nobody", headers=keys["read"])
    assert r.status_code == 404 and r.json() == {"detail": "no customer 'nobody' in the store"}


def test_segments_profiles_members_and_runs(service):
    client, keys, _ = service
    listing = client.get("/v1/segments", headers=keys["read"]).json()
    assert [s["method"] for s in listing["segmentations"]] == ["rfm", "template:lapsed"]
    assert listing["not_live"] == [] and listing["clock"] == AS_OF.isoformat()
    rfm = listing["segmentations"][0]
    assert sum(s["customers"] for s in rfm["segments"]) == rfm["customers"] > 0
    profile = client.get(f"/v1/segments/{rfm['run_id']}", headers=keys["read"]).json()
    assert profile["live"] and {s["segment"] for s in profile["segments"]} == {s["segment"] for s in rfm["segments"]}
    assert sum(s["share"] for s in profile["segments"]) == pytest.approx(1.0)
    seg = rfm["segments"][0]
    page = client.get(f"/v1/segments/{rfm['run_id']}/members",
                      params={"segment": seg["segment"], "page": 2, "size": 3}, headers=keys["read"]).json()
    assert page["total"] == seg["customers"] and page["page"] == 2
    assert len(page["items"]) == min(3, seg["customers"] - 3)
    everyone = client.get(f"/v1/segments/{rfm['run_id']}/members", params={"size": 1000}, headers=keys["read"]).json()
    ids = [m["customer_id"] for m in everyone["items"]]
    assert ids == sorted(ids) and len(ids) == rfm["customers"]
    assert client.get(f"/v1/segments/{rfm['run_id']}/members", params={"size": 0},
                      headers=keys["read"]).status_code == 422
    assert client.get("/v1/segments/no-such-run", headers=keys["read"]).status_code == 404
    runs = client.get("/v1/runs", headers=keys["read"]).json()
    assert {r["method"]: r["live"] for r in runs} == {"rfm": True, "template:lapsed": True}


def test_openapi_documents_the_api(shared_service):
    client, _, _ = shared_service
    spec = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/customers/{customer_id}", "/v1/segments", "/v1/segments/{run_id}",
            "/v1/segments/{run_id}/members", "/v1/runs", "/v1/changes", "/v1/health"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_pinned_runs_and_restart_keep_live_state(db):
    keys = _keys(db)
    with Store(db) as store:
        rfm = store.con.execute("SELECT run_id FROM segment_runs WHERE method = 'rfm'").fetchall()[0][0]
    with TestClient(create_app(db, runs=[rfm])) as client:
        assert [s["run_id"] for s in client.get("/v1/segments", headers=keys["read"]).json()["segmentations"]] == [rfm]
        client.post("/v1/events", json=_order(), headers=keys["write"])
        segs = client.get("/v1/customers/C000001", headers=keys["read"]).json()["segments"]
    with TestClient(create_app(db)) as client:  # restart: the clock and live state are kept
        assert client.get("/v1/health").json()["clock"] == "2025-01-03"
        again = client.get("/v1/customers/C000001", headers=keys["read"]).json()
        assert [s for s in again["segments"] if s["method"] == "rfm"] == segs
    with pytest.raises(ValueError, match="no segmentation run 'nope'"):
        create_app(db, runs=["nope"])


def test_serve_command_is_registered_and_checks_its_options(db):
    import typer
    from typer.testing import CliRunner

    from custseg.cli import serve_cmd

    app = typer.Typer()
    app.command("other")(lambda: None)
    serve_cmd.register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--db", "--host", "--port", "--playbook", "--run", "--max-batch", "--log-level"):
        assert option in result.output
    result = runner.invoke(app, ["serve", "--db", str(db), "--log-level", "loud"])
    assert result.exit_code == 1 and "--log-level" in result.output


def test_a_new_batch_run_takes_over_with_its_changes_recorded(db):
    keys = _keys(db)
    with TestClient(create_app(db)) as client:
        cid = _read(client.app, "SELECT customer_id FROM customer_features WHERE orders_count > 0 "
                                "ORDER BY recency_days DESC, customer_id LIMIT 1")[0][0]
        body = client.post("/v1/events", json=_order("comeback", cid, total=300.0), headers=keys["write"]).json()
        live_rfm = next(s for s in body["customers"][0]["segments"] if s["method"] == "rfm")
        assert live_rfm["changed"]
    with Store(db) as store:  # a batch job while the service is stopped: a new RFM run on the batch features
        new_run = pipeline.segment_rfm(store)
    with TestClient(create_app(db)) as client:
        listing = client.get("/v1/segments", headers=keys["read"]).json()
        assert new_run in [s["run_id"] for s in listing["segmentations"]]
        assert live_rfm["run_id"] not in [s["run_id"] for s in listing["segmentations"]]
        # The customer's live features are newer than the batch ones: the new run assigns them from those.
        now = client.get(f"/v1/customers/{cid}", headers=keys["read"]).json()
        assert next(s for s in now["segments"] if s["method"] == "rfm")["segments"] == live_rfm["segments"]
        feed = client.get("/v1/changes", params={"run_id": new_run, "limit": 1000}, headers=keys["read"]).json()
        assert feed["items"] == []  # same thresholds, same features: nobody moved between the two runs
        before = {m["customer_id"]: m["segment"] for m in client.get(
            f"/v1/segments/{new_run}/members", params={"size": 1000}, headers=keys["read"]).json()["items"]}
    with Store(db) as store:  # other cut points: customers move
        strict = pipeline.segment_rfm(store, method="fixed", thresholds={
            "recency": [400, 200, 100, 30], "frequency": [2, 4, 8, 16], "monetary": [100, 300, 1000, 3000]})
    with TestClient(create_app(db)) as client:
        after = {m["customer_id"]: m["segment"] for m in client.get(
            f"/v1/segments/{strict}/members", params={"size": 1000}, headers=keys["read"]).json()["items"]}
        feed = client.get("/v1/changes", params={"run_id": strict, "limit": 1000}, headers=keys["read"]).json()
    moved = {c for c in before.keys() | after.keys() if before.get(c) != after.get(c)}
    assert moved and {c["customer_id"] for c in feed["items"]} == moved
    assert {c["cause"] for c in feed["items"]} == {f"batch:{strict}"}
    assert all(c["from_segment"] == before.get(c["customer_id"]) and c["to_segment"] == after.get(c["customer_id"])
               for c in feed["items"])


def test_a_body_over_the_limit_is_refused_with_413(db):
    keys = _keys(db)
    with TestClient(create_app(db, max_body_bytes=2_000)) as client:
        r = client.post("/v1/events", json={"events": [_order(str(i)) for i in range(30)]}, headers=keys["write"])
        assert r.status_code == 413 and "bytes" in r.json()["detail"]
