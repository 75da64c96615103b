"""Live = batch: events replayed through the API give the features and segments of a batch run.

A demo store is cut at SPLIT. The part before it is loaded and the batch pipeline runs on it
(features, RFM, k-means, three templates, a rule set using ``today``, BG/NBD + Gamma-Gamma
and value × risk). Every later sign-up, order, browsing event, email event and survey answer
is then sent through ``POST /v1/events``: the first ones one by one, the rest in batches of a
few days. Afterwards every customer's live features and live segments must equal a batch
computation over the whole demo data at that customer's as-of date, with the first runs'
frozen constants: RFM cut points, cluster centres, rule statistics, CLV models and tier cuts.
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from custseg import Store, pipeline
from custseg.clv.data import purchase_summary
from custseg.clv.predict import (
    fit_model,
    load_model,
    predict,
    save_model,
    save_predictions,
)
from custseg.clv.segments import run_value_segments
from custseg.datasets import load_demo, make_store
from custseg.features import build_features
from custseg.segmenters.cluster import ClusterSegmenter, run_cluster
from custseg.segmenters.cluster.assign import assign_table
from custseg.segmenters.cluster.segmenter import fitted_from_parameters
from custseg.segmenters.rfm import RFMSegmenter
from custseg.segmenters.rules import (
    RuleSegmenter,
    check_segment_set,
    load_segment_set,
    run_rules,
)
from custseg.segmenters.rules.templates import run_template
from custseg.segmenters.runs import run_parameters
from custseg.service.app import create_app

SPLIT = dt.date(2024, 12, 1)
N_CUSTOMERS, SEED = 600, 3
ONE_BY_ONE = 25  # the first events after the split are sent alone, the rest in windows of WINDOW_DAYS
WINDOW_DAYS = 5
#: Store-wide, not per customer: the outlier cap is computed over every order in the store, so a
#: batch run over the whole data (later orders included) flags a few orders differently.
STORE_WIDE = ("outlier_orders",)
RECENT = {"name": "Recent", "segments": [
    {"name": "Visited this month", "rule": "last_visit >= today - 30 days"},
    {"name": "Big basket", "rule": "aov >= p75(aov)"}]}


def _before(demo, split: dt.date) -> dict[str, pa.Table]:
    cut = pa.scalar(dt.datetime.combine(split, dt.time()), pa.timestamp("us"))
    out = {}
    for name, t in demo.tables().items():
        if name == "orders":
            t = t.filter(pc.less(t["order_time"], cut))
        elif name == "order_items":
            kept = demo.orders.filter(pc.less(demo.orders["order_time"], cut))["order_id"]
            t = t.filter(pc.is_in(t["order_id"], kept))
        elif name in ("browsing_events", "email_events"):
            t = t.filter(pc.less(t["event_time"], cut))
        elif name == "survey_responses":
            t = t.filter(pc.less(t["response_time"], cut))
        elif name == "customers":
            t = t.filter(pc.less(t["signup_date"], pa.scalar(split, pa.date32())))
        out[name] = t
    return out


def _batch_pipeline(store) -> dict[str, str]:
    pipeline.build_and_store_features(store, SPLIT)
    runs = {"rfm": pipeline.segment_rfm(store),
            "cluster": run_cluster(store, ClusterSegmenter(k=4, seed=1, n_refits=0)),
            "lapsed": run_template(store, "lapsed"),
            "interests": run_template(store, "interests"),
            "window_shoppers": run_template(store, "window_shoppers"),
            "recent": run_rules(store, RuleSegmenter(RECENT))}
    end = SPLIT - dt.timedelta(days=1)
    bg, gg = fit_model(store, "bgnbd", calibration_end=end), fit_model(store, "gammagamma", calibration_end=end)
    save_model(store, bg)
    save_model(store, gg)
    pid = save_predictions(store, predict(store, bg, gg, horizon_days=365, as_of=SPLIT, seed=0))
    runs["value"] = run_value_segments(store, pid)
    return runs


def _plain(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _rows(table: pa.Table) -> list[dict]:
    return [{k: _plain(v) for k, v in r.items()} for r in table.to_pylist()]


def _events_after(demo, split: dt.date) -> list[dict]:
    """Every sign-up, order, browsing and email event and survey answer from ``split`` on, as API events."""
    cut = dt.datetime.combine(split, dt.time())
    events = []
    for c in _rows(demo.customers):
        if c["signup_date"] is not None and c["signup_date"] >= split.isoformat():
            fields = {k: v for k, v in c.items() if k not in ("customer_id", "attributes") and v is not None}
            events.append({"type": "profile_update", "event_id": f"signup:{c['customer_id']}",
                           "customer_id": c["customer_id"], "time": c["signup_date"] + "T00:00:00", **fields})
    # Both live paths are replayed: every other order and email event is sent with the customer
    # id (rows appended to the customer's running aggregates), the others by email only when the
    # email is the customer's (rows the cleaning attributes by email, read again from the store).
    owner: dict[str, str] = {}
    for c in _rows(demo.customers):
        if c["email"]:
            key = c["email"].strip().lower()
            owner[key] = min(owner.get(key, c["customer_id"]), c["customer_id"])

    def with_id(event: dict, i: int) -> dict:
        found = owner.get(event["email"].strip().lower()) if event.get("email") else None
        if i % 2 == 0 and "customer_id" not in event and found is not None:
            event["customer_id"] = found
        elif i % 2 == 1 and found is not None and event.get("customer_id") == found:
            del event["customer_id"]
        return event

    items: dict[str, list] = {}
    for i in _rows(demo.order_items):
        items.setdefault(i["order_id"], []).append(
            {k: i[k] for k in ("product_id", "product_name", "category", "quantity", "unit_price", "line_amount")})
    for o in _rows(demo.orders.filter(pc.greater_equal(demo.orders["order_time"], pa.scalar(cut)))):
        e = {"type": "order", "event_id": f"order:{o['order_id']}", "time": o["order_time"],
             "items": items.get(o["order_id"], [])}
        e.update({k: o[k] for k in ("order_id", "customer_id", "email", "status", "currency", "total", "discount",
                                    "channel", "items_count") if o[k] is not None})
        events.append(with_id(e, len(events)))
    for b in _rows(demo.browsing_events.filter(pc.greater_equal(demo.browsing_events["event_time"], pa.scalar(cut)))):
        events.append({"type": b["event_type"], "time": b["event_time"],
                       **{k: b[k] for k in ("event_id", "customer_id", "session_id", "anonymous_id", "product_id",
                                            "category", "search_query") if b[k] is not None}})
    for m in _rows(demo.email_events.filter(pc.greater_equal(demo.email_events["event_time"], pa.scalar(cut)))):
        events.append(with_id({"type": f"email_{m['event_type']}", "time": m["event_time"],
                               **{k: m[k] for k in ("event_id", "customer_id", "email", "campaign_id")
                                  if m[k] is not None}}, len(events)))
    for s in _rows(demo.survey_responses.filter(
            pc.greater_equal(demo.survey_responses["response_time"], pa.scalar(cut)))):
        events.append({"type": "survey_answer", "event_id": f"survey:{s['response_id']}", "time": s["response_time"],
                       **{k: s[k] for k in ("response_id", "customer_id", "email", "nps", "satisfaction", "interests")
                          if s[k] is not None}})
    return sorted(events, key=lambda e: (e["time"], e["event_id"]))


@pytest.fixture(scope="module")
def demo():
    return make_store(N_CUSTOMERS, seed=SEED)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, demo):
    """The split store after the replay: ``(path, runs, events sent, answers)``."""
    from custseg.service.auth import create_key

    path = tmp_path_factory.mktemp("replay") / "live.duckdb"
    with Store(path) as store:
        with store.transaction():
            for name, table in _before(demo, SPLIT).items():
                store.append(name, table)
        runs = _batch_pipeline(store)
        _, token = create_key(store, "write", name="replay")
    events = _events_after(demo, SPLIT)
    assert len(events) > 500 and {e["type"] for e in events} >= {"order", "product_view", "email_open",
                                                                  "profile_update"}
    for kind in ("order", "email_open"):
        assert sum(1 for e in events if e["type"] == kind and "customer_id" in e) > 20
        assert sum(1 for e in events if e["type"] == kind and "customer_id" not in e) > 20
    answers = []
    app = create_app(path)
    assert app.state.service.live.aggregates is not None  # features from the running aggregates
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for e in events[:ONE_BY_ONE]:
            answers.append(client.post("/v1/events", json=e, headers=headers))
        rest = events[ONE_BY_ONE:]
        while rest:
            end = (dt.datetime.fromisoformat(rest[0]["time"]).date() + dt.timedelta(days=WINDOW_DAYS)).isoformat()
            window = [e for e in rest[:1000] if e["time"] < end]
            rest = rest[len(window):]
            answers.append(client.post("/v1/events", json={"events": window}, headers=headers))
    assert all(a.status_code == 200 for a in answers), [a.json() for a in answers if a.status_code != 200][:1]
    return path, runs, events, [a.json() for a in answers]


@pytest.fixture(scope="module")
def full(tmp_path_factory, demo):
    """The whole demo data in a batch store."""
    path = tmp_path_factory.mktemp("full") / "full.duckdb"
    store = Store(path)
    load_demo(store, demo)
    yield store
    store.close()


@pytest.fixture(scope="module")
def live(replayed):
    """Live features, memberships and CLV after the replay, read back from the store."""
    path, runs, _, _ = replayed
    with Store(path) as store:
        con = store.con
        features = con.execute(
            "SELECT * EXCLUDE (computed_at) FROM service_features UNION ALL BY NAME SELECT * FROM customer_features "
            "WHERE customer_id NOT IN (SELECT customer_id FROM service_features)").df()
        members = con.execute("SELECT run_id, customer_id, segment FROM service_memberships").df()
        clv = con.execute("SELECT customer_id, as_of, p_alive, clv FROM service_clv").df()
        params = {k: run_parameters(store, r) for k, r in runs.items()}
        value_cuts = dict(con.execute(
            "SELECT split_part(m.segment, ' · ', 1), min(p.clv) FROM segment_memberships m JOIN clv_predictions p "
            "USING (customer_id) WHERE m.run_id = ? GROUP BY 1", [runs["value"]]).fetchall())
        models = (load_model(store, params["value"]["model_id"]), load_model(store, params["value"]["spend_model_id"]))
        changes = con.execute("SELECT * FROM segment_changes").df()
        events = con.execute("SELECT event_id, applied_at FROM service_events").df()
    features["as_of"] = pd.to_datetime(features["as_of"]).dt.date
    return {"features": features, "members": members, "clv": clv, "params": params, "value_cuts": value_cuts,
            "models": models, "changes": changes, "events": events, "runs": runs}


def _rule_segmenter(params: dict, features, as_of: dt.date) -> RuleSegmenter:
    """The run's segment set, fitted with the statistics the run recorded (``today`` = ``as_of``)."""
    definition = load_segment_set({k: v for k, v in params.items()
                                   if k in ("name", "description", "mode", "default", "segments")})
    seg = RuleSegmenter(definition, as_of=as_of)
    seg.definition_ = definition
    seg.rules_, seg.order_ = check_segment_set(definition, features.schema())
    seg.as_of_, seg.thresholds_ = as_of, params["thresholds"]
    return seg


@pytest.fixture(scope="module")
def reference(full, live):
    """Batch features and segments over the whole data, per customer at their live as-of date.

    Features: ``build_features`` once per as-of date. Segments: the first runs' frozen constants
    (RFM cut points, cluster centres, rule statistics with ``today`` = the as-of date, CLV models
    and tier cuts) applied to those features.
    """
    params, feats, clv = live["params"], [], []
    bg, gg = live["models"]
    for as_of, group in live["features"].groupby("as_of"):
        ids = set(group.customer_id)
        day = full.to_pandas(build_features(full, as_of))
        feats.append(day[day.customer_id.isin(ids)])
        summary = purchase_summary(full, as_of - dt.timedelta(days=1), time_unit=bg.meta_["time_unit"])
        pred = predict(full, bg, gg, horizon_days=params["value"]["horizon_days"], as_of=as_of, intervals=False,
                       summary=summary)
        clv.append(pred[pred.customer_id.isin(ids)])
    feats = pd.concat(feats, ignore_index=True)
    feats["as_of"] = pd.to_datetime(feats["as_of"]).dt.date
    table = ibis.memtable(feats)
    segs = {}
    p = params["rfm"]
    rfm = RFMSegmenter("fixed", thresholds=p["thresholds"], segment_map=p["segment_map"]).fit(table, full.ibis)
    segs["rfm"] = full.to_pandas(rfm.assign(table).select("customer_id", "segment"))
    prep, fit, names = fitted_from_parameters(params["cluster"])
    segs["cluster"] = full.to_pandas(assign_table(prep, fit, table, names).select("customer_id", "segment"))
    for key in ("lapsed", "interests", "window_shoppers", "recent"):
        parts = []
        for as_of in sorted(set(feats.as_of)):
            day = table.filter(table.as_of == as_of)
            parts.append(full.to_pandas(_rule_segmenter(params[key], table, as_of).assign(day)
                                        .select("customer_id", "segment")))
        segs[key] = pd.concat(parts, ignore_index=True)
    pred = pd.concat(clv, ignore_index=True)
    lo, hi = params["value"]["risk_bands"]
    cuts = live["value_cuts"]
    tier = np.where(pred.clv >= cuts["High value"], "High value",
                    np.where(pred.clv >= cuts["Mid value"], "Mid value", "Low value"))
    band = np.where(pred.p_alive < lo, "likely lost", np.where(pred.p_alive < hi, "at risk", "active"))
    segs["value"] = pd.DataFrame({"customer_id": pred.customer_id, "p_alive": pred.p_alive, "clv": pred.clv,
                                  "segment": [f"{t} · {b}" for t, b in zip(tier, band)]})
    return feats, segs


def test_the_replay_reevaluated_customers_day_by_day(replayed, live):
    _, _, events, answers = replayed
    days = sorted(set(live["features"].as_of))
    assert len(days) >= 5 and days[0] == SPLIT  # customers without later events keep the batch as-of date
    assert sum(a["applied"] for a in answers) == len(events)
    assert live["events"].applied_at.notna().all() and len(live["events"]) == len(events)
    assert len(live["changes"]) > 50
    # Every change was caused by a replayed event (no batch switch happened).
    assert set(live["changes"].cause) <= set(live["events"].event_id)


def test_live_features_equal_batch_features(live, reference):
    ref_features, _ = reference
    got = live["features"].set_index("customer_id").sort_index()
    want = ref_features.set_index("customer_id").sort_index()
    assert list(got.index) == list(want.index)
    assert set(want.columns) == set(got.columns)
    mismatches = []
    for col in want.columns:
        if col in STORE_WIDE:
            continue
        a, b = got[col], want[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            x, y = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            bad = ~(np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y)))
        else:
            bad = ~((a.astype(object) == b.astype(object)) | (a.isna() & b.isna())).to_numpy()
        if bad.any():
            mismatches.append(f"{col}: {int(bad.sum())} customers, e.g. {got.index[bad][0]} "
                              f"live={a[bad].iloc[0]!r} batch={b[bad].iloc[0]!r}")
    assert not mismatches, mismatches


@pytest.mark.parametrize("key", ["rfm", "cluster", "lapsed", "interests", "window_shoppers", "recent", "value"])
def test_live_segments_equal_batch_segments(live, reference, key):
    _, ref = reference
    run_id = live["runs"][key]
    got = live["members"][live["members"].run_id == run_id]
    want = ref[key]
    got_pairs = sorted(zip(got.customer_id, got.segment))
    want_pairs = sorted(zip(want.customer_id, want.segment))
    diff = sorted(set(got_pairs) ^ set(want_pairs))
    assert not diff, [(c, s, "live" if (c, s) in set(got_pairs) else "batch") for c, s in diff[:10]]
    assert len(got_pairs) == len(want_pairs)


def test_live_clv_equals_batch_clv(live, reference):
    _, ref = reference
    got = live["clv"].set_index("customer_id").sort_index()
    want = ref["value"].set_index("customer_id").loc[got.index]
    assert len(got) > 50
    np.testing.assert_allclose(got.p_alive, want.p_alive, rtol=1e-9)
    np.testing.assert_allclose(got.clv, want.clv, rtol=1e-9)
