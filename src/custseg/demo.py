"""The demo pipeline: generate a store, write its exports, ingest them, features, RFM, CLV.

Nothing is bypassed: the generated export files go through the same
ingestion (presets and user mappings) as a real store's files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.table import Table

from custseg import pipeline
from custseg.store import Store

# Ingestion order: catalogue and customers before what refers to them.
_ORDER = ("products", "customers", "orders", "browsing_events", "email_events", "survey_responses",
          "campaigns", "campaign_assignments")


@dataclass
class DemoResult:
    run_id: str
    summary: pd.DataFrame
    ingest: pd.DataFrame
    n_customers: int
    n_orders: int
    as_of: dt.date
    value_run_id: str | None = None
    value_summary: pd.DataFrame | None = None

    @property
    def ingest_table(self) -> Table:
        from custseg.cli.render import frame_table

        return frame_table(self.ingest, "Ingested demo exports")


def _refuse_to_replace_user_store(db: Path) -> None:
    """Only a demo store (or an empty one) may be replaced by the demo."""
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise ValueError(f"{db} exists and is not a store custseg can open ({exc}); choose another --db") from None
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "orders" not in tables:
            return
        n_orders = con.execute("SELECT count(*) FROM orders").fetchall()[0][0]
        n_demo = con.execute("SELECT count(*) FROM demo_personas").fetchall()[0][0] if "demo_personas" in tables else 0
    finally:
        con.close()
    if n_orders and not n_demo:
        raise ValueError(f"{db} holds your own data (not a demo store); the demo will not replace it: "
                         "use --db demo.duckdb")


def run_demo(db: str | Path, *, n_customers: int = 10_000, seed: int = 0, exports: str | Path,
             replace: bool = True, on_step: Callable[..., None] | None = None) -> DemoResult:
    """Run the whole batch pipeline on a generated store; return the segment summary."""
    from custseg.datasets import make_store, write_exports
    from custseg.sources import ingest

    step = on_step or (lambda *a, **k: None)
    db = Path(db)
    if replace and db.exists():
        _refuse_to_replace_user_store(db)
    if replace:
        for p in (db, Path(f"{db}.wal")):
            if p.exists():
                p.unlink()
    step(f"generating a demo store of {n_customers:,} customers (seed {seed})")
    demo = make_store(n_customers=n_customers, seed=seed)
    exports = Path(exports)
    exports.mkdir(parents=True, exist_ok=True)
    step(f"writing export files to {exports}")
    manifest = write_exports(demo, exports)
    rows = []
    with Store(db) as store:
        names = [n for n in _ORDER if n in manifest] + [n for n in manifest if n not in _ORDER]
        for i, name in enumerate(names):
            entry = manifest[name]
            step(f"ingesting {Path(entry['path']).name}", i, len(names))
            result = ingest(store, entry["path"], entry["table"], preset=entry.get("preset"),
                            mapping=entry.get("mapping"))
            for table, counts in result.counts.items():
                rows.append({"file": Path(entry["path"]).name, "table": table, **counts})
            # read/accepted count source rows; "rows stored" what the table gained (a Shopify
            # export has one row per order line, so orders store fewer rows than were read).
        store.append("demo_personas", demo.demo_personas)
        step("cleaning and building features")
        n = pipeline.build_and_store_features(store)
        step("RFM segmentation")
        run_id = pipeline.segment_rfm(store)
        summary = pipeline.segment_summary(store, run_id)
        step("CLV: BG/NBD and Gamma-Gamma, predictions, value × risk segments")
        value_run_id, value_table = _clv(store, seed)
        as_of = store.con.execute("SELECT max(as_of) FROM customer_features").fetchall()[0][0]
        n_orders = store.count("orders")
    return DemoResult(run_id=run_id, summary=summary, ingest=pd.DataFrame(rows), n_customers=n,
                      n_orders=n_orders, as_of=as_of.date() if hasattr(as_of, "date") else as_of,
                      value_run_id=value_run_id, value_summary=value_table)


def _clv(store, seed: int) -> tuple[str, pd.DataFrame]:
    """Fit BG/NBD and Gamma-Gamma on all the data, score every buyer over a year, segment by value × risk."""
    from custseg.clv.predict import fit_model, predict, save_model, save_predictions
    from custseg.clv.segments import run_value_segments, value_summary

    purchases = fit_model(store, "bgnbd")
    spend = fit_model(store, "gammagamma")
    save_model(store, purchases)
    save_model(store, spend)
    pid = save_predictions(store, predict(store, purchases, spend, horizon_days=365, seed=seed))
    run_id = run_value_segments(store, pid)
    return run_id, value_summary(store, run_id)
