"""Audience exports on a small demo store: consent, holdouts, recorded arms, styles, formats."""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.targeting import draw_holdout, export_audience, holdout_size, plan_audience
from custseg.targeting.audience import CONTROL, TREATMENT, _choose

SEGMENTS = "Champions,At Risk,Lost"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 1,500-customer demo store with an RFM run; three consenting buyers lose a usable email and
    two share one address."""
    db = tmp_path_factory.mktemp("audience") / "demo.duckdb"
    with Store(db) as store:
        load_demo(store, make_store(1500, seed=2))
        pipeline.build_and_store_features(store)
        run = pipeline.segment_rfm(store)
        ids = [r[0] for r in store.con.execute(
            "SELECT m.customer_id FROM segment_memberships m JOIN customers c USING (customer_id) "
            "WHERE m.run_id = ? AND m.segment = 'Champions' AND c.email_consent ORDER BY 1 LIMIT 5",
            [run]).fetchall()]
        store.con.execute("UPDATE customers SET email = NULL WHERE customer_id = ?", [ids[0]])
        store.con.execute("UPDATE customers SET email = 'no-at-sign.example.com' WHERE customer_id = ?", [ids[1]])
        store.con.execute("UPDATE customers SET email = '   ' WHERE customer_id = ?", [ids[2]])
        store.con.execute("UPDATE customers SET email = (SELECT email FROM customers WHERE customer_id = ?) "
                          "WHERE customer_id = ?", [ids[3], ids[4]])
    return {"db": db, "run": run, "broken": ids[:3], "dup": ids[3:5]}


@pytest.fixture
def store(demo):
    with Store(demo["db"]) as s:
        yield s


def _customers(store) -> pd.DataFrame:
    return store.con.execute("SELECT customer_id, email, email_consent FROM customers").df()


def _unsubscribed(store) -> set[str]:
    return {r[0] for r in store.con.execute(
        "SELECT DISTINCT customer_id FROM email_events WHERE event_type = 'unsubscribe' "
        "AND customer_id IS NOT NULL").fetchall()}


def _arms(store, campaign_id) -> dict[str, set[str]]:
    df = store.con.execute("SELECT customer_id, arm FROM campaign_assignments WHERE campaign_id = ?",
                           [campaign_id]).df()
    return {arm: set(df.loc[df["arm"] == arm, "customer_id"]) for arm in ("treatment", "control")}


def test_holdout_size_rounds_halves_up():
    assert [holdout_size(n, 0.1) for n in (0, 4, 5, 14, 15, 25, 35, 389)] == [0, 0, 1, 1, 2, 3, 4, 39]
    assert holdout_size(3, 0.5) == 2 and holdout_size(1, 0.6) == 1 and holdout_size(10, 0) == 0


def test_draw_holdout_is_exact_per_segment_and_seeded():
    df = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(300)],
                       "segment": ["A"] * 155 + ["B"] * 120 + ["C"] * 25})
    held = draw_holdout(df, 0.1, seed=7)
    assert held.groupby(df["segment"]).sum().to_dict() == {"A": 16, "B": 12, "C": 3}
    assert held.equals(draw_holdout(df.sample(frac=1, random_state=1), 0.1, seed=7).sort_index())  # row order
    assert not held.equals(draw_holdout(df, 0.1, seed=8))
    # a segment's holdout does not depend on the other segments
    only_a = draw_holdout(df[df["segment"] == "A"], 0.1, seed=7)
    assert only_a.equals(held[df["segment"] == "A"])


def test_export_has_only_consenting_customers_with_usable_emails(store, demo, tmp_path):
    res = export_audience(store, "all", run_id=demo["run"], path=tmp_path / "all.csv", recommendations=0)
    out = pd.read_csv(tmp_path / "all.csv", dtype=str)
    cust = _customers(store).set_index("customer_id")
    assert len(out) == res.exported > 0
    assert cust.loc[out["customer_id"], "email_consent"].all()  # no customer without consent
    assert set(out["email"]) <= set(cust.loc[cust["email_consent"].fillna(False).astype(bool), "email"])
    assert not set(out["customer_id"]) & _unsubscribed(store)
    assert not set(out["customer_id"]) & set(demo["broken"])
    assert out["email"].str.contains("@").all() and not out["email"].duplicated().any()
    assert len(set(out["customer_id"]) & set(demo["dup"])) <= 1

    members = store.con.execute("SELECT customer_id FROM segment_memberships WHERE run_id = ?",
                                [demo["run"]]).df()["customer_id"]
    no_consent = int((~cust.reindex(members)["email_consent"].fillna(False).astype(bool)).sum())
    unsub = cust.reindex(members).index.isin(_unsubscribed(store)) & cust.reindex(members)["email_consent"].fillna(
        False).astype(bool).to_numpy()
    assert res.in_segment == len(members)
    assert res.no_consent == no_consent
    assert res.unsubscribed == int(unsub.sum())
    assert res.no_email >= 3 and res.duplicate_email == 1
    assert res.excluded == res.no_consent + res.unsubscribed + res.no_email + res.duplicate_email
    assert res.in_segment == res.excluded + res.holdout + res.exported


def test_holdout_is_exact_per_segment_recorded_and_never_exported(store, demo, tmp_path):
    res = export_audience(store, SEGMENTS, run_id=demo["run"], path=tmp_path / "a.csv", holdout=0.1, seed=3,
                          recommendations=0)
    out = pd.read_csv(tmp_path / "a.csv", dtype=str)
    per = res.per_segment.set_index("segment")
    assert list(per.index) == ["Champions", "At Risk", "Lost"]
    for seg, row in per.iterrows():
        assert row["holdout"] == math.floor(0.1 * row["eligible"] + 0.5), seg
        assert row["exported"] == (out["segment"] == seg).sum()
    arms = _arms(store, res.campaign_id)
    assert arms["treatment"] == set(out["customer_id"])  # treatment = the file's rows
    assert arms["control"] == set(res.plan.ids(CONTROL)) and len(arms["control"]) == res.holdout > 0
    assert not arms["treatment"] & arms["control"]  # holdout members never in the export
    campaign = store.con.execute("SELECT name, channel, start_time, description FROM campaigns WHERE campaign_id = ?",
                                 [res.campaign_id]).fetchall()
    assert len(campaign) == 1
    name, channel, start, description = campaign[0]
    assert channel == "email" and start is not None and "Champions" in name
    assert demo["run"] in description and "10%" in description and "seed 3" in description
    assert res.campaign_id.startswith("AUD-") and len(res.campaign_id) == len("AUD-20250101-120000-abcd")


def test_same_seed_same_holdout_different_seed_different(store, demo):
    a = plan_audience(store, SEGMENTS, run_id=demo["run"], seed=1)
    b = plan_audience(store, SEGMENTS, run_id=demo["run"], seed=1)
    c = plan_audience(store, SEGMENTS, run_id=demo["run"], seed=2)
    assert a.ids(CONTROL) == b.ids(CONTROL) and a.ids(TREATMENT) == b.ids(TREATMENT)
    assert a.ids(CONTROL) != c.ids(CONTROL) and len(a.ids(CONTROL)) == len(c.ids(CONTROL))
    # the holdout of one segment is the same whether exported alone or with others
    champions = plan_audience(store, "Champions", run_id=demo["run"], seed=1)
    in_a = set(a.members.loc[a.members["segment"] == "Champions", "customer_id"]) & set(a.ids(CONTROL))
    assert set(champions.ids(CONTROL)) == in_a


def test_reexport_with_the_same_campaign_id_adds_nothing_and_a_different_one_is_refused(store, demo, tmp_path):
    kw = {"run_id": demo["run"], "holdout": 0.2, "seed": 5, "recommendations": 0, "campaign_id": "TEST-REEXPORT"}
    first = export_audience(store, "At Risk", path=tmp_path / "1.csv", **kw)
    count = store.con.execute("SELECT count(*) FROM campaign_assignments WHERE campaign_id = 'TEST-REEXPORT'"
                              ).fetchall()[0][0]
    assert not first.reused and count == first.exported + first.holdout
    again = export_audience(store, "At Risk", path=tmp_path / "2.csv", **kw)
    assert again.reused and pd.read_csv(tmp_path / "2.csv").equals(pd.read_csv(tmp_path / "1.csv"))
    assert store.con.execute("SELECT count(*) FROM campaign_assignments WHERE campaign_id = 'TEST-REEXPORT'"
                             ).fetchall()[0][0] == count
    assert store.con.execute("SELECT count(*) FROM campaigns WHERE campaign_id = 'TEST-REEXPORT'").fetchall()[0][0] == 1
    with pytest.raises(ValueError, match="already has .* assignments and this audience differs"):
        export_audience(store, "At Risk", path=tmp_path / "3.csv", **{**kw, "seed": 6})
    assert not (tmp_path / "3.csv").exists()
    assert store.con.execute("SELECT count(*) FROM campaign_assignments WHERE campaign_id = 'TEST-REEXPORT'"
                             ).fetchall()[0][0] == count
    # another campaign may hold the same customers (in either arm)
    other = export_audience(store, "At Risk", path=tmp_path / "4.csv", **{**kw, "campaign_id": "TEST-OTHER"})
    assert _arms(store, "TEST-OTHER") == _arms(store, "TEST-REEXPORT") and not other.reused


STYLE_COLUMNS = {
    "generic": ["email", "first_name", "last_name", "segment", "play", "offer", "customer_id", "campaign_id"],
    "mailchimp": ["Email Address", "First Name", "Last Name", "TAGS", "Segment", "Play", "Offer", "Customer ID",
                  "Campaign ID"],
    "klaviyo": ["Email", "First Name", "Last Name", "Segment", "Play", "Offer", "Customer ID", "Campaign ID"],
}


@pytest.mark.parametrize("style", list(STYLE_COLUMNS))
def test_style_column_names(store, demo, tmp_path, style):
    path = tmp_path / f"{style}.csv"
    res = export_audience(store, "Champions", run_id=demo["run"], path=path, style=style, recommendations=0)
    out = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(out.columns) == STYLE_COLUMNS[style] == list(res.columns)
    first = out.iloc[0]
    assert first[STYLE_COLUMNS[style][0]].count("@") == 1
    assert set(out[STYLE_COLUMNS[style][4 if style == "mailchimp" else 3]]) == {"Champions"}
    assert set(out[STYLE_COLUMNS[style][-3]]) == {"none"}  # Champions: no discount
    if style == "mailchimp":
        assert set(out["TAGS"]) == {f"Champions,{res.campaign_id}"}


def test_parquet_round_trip(store, demo, tmp_path):
    kw = {"run_id": demo["run"], "seed": 4, "recommendations": 0}
    export_audience(store, "Lost,Champions", path=tmp_path / "a.csv", **kw)
    res = export_audience(store, "Lost,Champions", path=tmp_path / "a.parquet", **kw)
    assert res.fmt == "parquet"
    pq = pd.read_parquet(tmp_path / "a.parquet")
    csv = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    assert list(pq.columns) == list(csv.columns)
    assert pq.drop(columns="campaign_id").equals(csv.drop(columns="campaign_id"))
    assert list(pq["segment"].unique()) == ["Lost", "Champions"]  # in the order asked for


def test_a_playbook_file_sets_play_and_offer(store, demo, tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("plays:\n  - segment: Lost\n    play: Sunset\n    offer: 30% voucher\n", encoding="utf-8")
    export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "l.csv", playbook=pb, recommendations=0)
    out = pd.read_csv(tmp_path / "l.csv", dtype=str)
    assert set(out["play"]) == {"Sunset"} and set(out["offer"]) == {"30% voucher"}


def test_bad_arguments_are_refused_before_anything_is_written(store, demo, tmp_path):
    n = store.count("campaign_assignments")
    with pytest.raises(ValueError, match="did you mean 'Champions'"):
        export_audience(store, "Champion", run_id=demo["run"], path=tmp_path / "x.csv")
    with pytest.raises(ValueError, match="below 1"):
        export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "x.csv", holdout=1)
    with pytest.raises(ValueError, match="style 'hubspot'"):
        export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "x.csv", style="hubspot")
    with pytest.raises(ValueError, match="format 'xlsx'"):
        export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "x.csv", fmt="xlsx")
    with pytest.raises(ValueError, match="does not exist"):
        export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "nope" / "x.csv")
    assert store.count("campaign_assignments") == n and not (tmp_path / "x.csv").exists()


def test_segment_lists_keep_names_that_hold_commas():
    sizes = {"Abandoned, never bought": 3, "Cart abandoners": 5, "Others": 9}
    assert _choose("Abandoned, never bought,cart abandoners", sizes, "r", []) == [
        "Abandoned, never bought", "Cart abandoners"]
    assert _choose("all", sizes, "r", []) == ["Others", "Cart abandoners", "Abandoned, never bought"]
    assert _choose("all", sizes, "r", ["Cart abandoners"])[0] == "Cart abandoners"
    assert _choose(["Others"], sizes, "r", []) == ["Others"]


def test_recommendations_column(store, demo, tmp_path):
    pytest.importorskip("custseg.recommend")
    res = export_audience(store, "Champions", run_id=demo["run"], path=tmp_path / "r.csv", recommendations=2)
    out = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert {"recommended_products", "recommended_product_ids"} <= set(out.columns), res.notes
    filled = out[out["recommended_products"] != ""]
    assert len(filled) > 0.9 * len(out)
    assert filled["recommended_product_ids"].str.split("; ").map(len).le(2).all()
    assert (filled["recommended_products"].str.split("; ").map(len)
            == filled["recommended_product_ids"].str.split("; ").map(len)).all()


def test_recommendations_come_from_the_newest_stored_run(store, demo, tmp_path):
    rec = pytest.importorskip("custseg.recommend")
    champions = plan_audience(store, "Champions", run_id=demo["run"]).ids(TREATMENT)
    stored = rec.recommend(store, customer_ids=champions[:20], n=4, run_id=demo["run"])
    rec.save_recommendations(store, stored)
    res = export_audience(store, "Champions", run_id=demo["run"], path=tmp_path / "s.csv", recommendations=2)
    out = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False).set_index("customer_id")
    assert any("newest stored recommendation run" in n for n in res.notes), res.notes
    assert any(f"{len(champions) - 20:,} exported customers have none" in n for n in res.notes), res.notes
    top2 = stored[stored["rank"] <= 2].sort_values(["customer_id", "rank"]).groupby("customer_id")["product_id"].agg(
        lambda v: "; ".join(map(str, v)))
    assert out.loc[top2.index, "recommended_product_ids"].to_dict() == top2.to_dict()
    assert (out.drop(index=top2.index)["recommended_products"] == "").all()


def test_without_the_recommend_package_the_export_says_so(store, demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "custseg.recommend", None)  # importing it raises ImportError
    res = export_audience(store, "Lost", run_id=demo["run"], path=tmp_path / "n.csv")
    assert "recommended_products" not in res.columns
    assert any("recommendations are not available" in n for n in res.notes)
