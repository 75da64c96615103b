"""An exported audience is measured by the segments it was exported from."""

from __future__ import annotations

from custseg import Store, pipeline
from custseg.clv.predict import fit_model, predict, save_predictions
from custseg.clv.segments import run_value_segments
from custseg.datasets import load_demo, make_store
from custseg.measure import analyze_campaign
from custseg.targeting import export_audience


def test_campaign_of_an_audience_uses_the_audience_run(tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        load_demo(store, make_store(800, seed=5))
        pipeline.build_and_store_features(store)
        rfm = pipeline.segment_rfm(store)
        run_value_segments(store, save_predictions(store, predict(
            store, fit_model(store, "bgnbd"), fit_model(store, "gammagamma"), intervals=False)))  # newer run
        res = export_audience(store, "Champions,Loyal", run_id=rfm, path=tmp_path / "a.csv", seed=1,
                              campaign_id="AUD-TEST", recommendations=0)
        a = analyze_campaign(store, "AUD-TEST")
    assert a.segments_from == f"run {rfm}"
    segs = set(a.table["segment"]) - {"(all customers)"}
    assert segs <= {"Champions", "Loyal"}
    overall = a.table.set_index("segment").loc["(all customers)"]
    assert overall["n_treatment"] == res.exported and overall["n_control"] == res.holdout
