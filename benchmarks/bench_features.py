"""Benchmark: customer features + RFM on 10M order lines / 1M customers.

Prints, in one run, custseg's time and peak memory beside the peers on the same data:

* bare DuckDB: a hand-written GROUP BY of the same per-customer aggregates (orders,
  first/last order date, revenue, units, distinct purchase days, repeat value), once on the
  store's own ``orders`` table and once on a flat Parquet file of the order lines;
* pandas: the same groupby on the same Parquet file;
* lifetimes: ``summary_data_from_transaction_data`` on the same lines (when installed);
* custseg: order features (cleaning + orders and CLV blocks) + an RFM run, and the full
  feature build (every block: items, email, browsing, demographics, surveys) on the
  demo store of the same size.

Each measurement runs in a fresh Python process (so peak memory is its own), reading
files written beforehand by the set-up step (generator + load, not timed). Library
imports happen before the clock starts, for every tool alike.

    python benchmarks/bench_features.py --customers 1000000
    python benchmarks/bench_features.py --customers 100000 --repeat 3   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from _measure import best_run, peak_mb  # benchmarks/_measure.py (the script folder is on sys.path)

HERE = Path(__file__).resolve().parent

AGG_SQL = """
WITH days AS (
    SELECT customer_id, CAST(order_time AS DATE) AS d, sum(total) AS v, count(*) AS n_orders,
           sum(items) AS units
    FROM {src}
    WHERE status = 'completed' AND customer_id IS NOT NULL
    GROUP BY ALL
), f AS (
    SELECT *, min(d) OVER (PARTITION BY customer_id) AS first_d FROM days
)
SELECT customer_id, sum(n_orders) AS orders, min(d) AS first_order, max(d) AS last_order,
       sum(v) AS revenue, sum(units) AS units, count(*) - 1 AS x,
       sum(v) FILTER (WHERE d > first_d) / nullif(count(*) - 1, 0) AS mean_repeat_value
FROM f GROUP BY customer_id
"""


# -- tasks (each runs in its own process) -------------------------------------------------

def task_duckdb_store(work: Path) -> int:
    import duckdb

    con = duckdb.connect(str(work / "bench.duckdb"), read_only=True)
    src = "(SELECT customer_id, order_time, status, total, items_count AS items FROM orders)"
    return con.execute(f"SELECT count(*) FROM ({AGG_SQL.format(src=src)})").fetchall()[0][0]


def task_duckdb_parquet(work: Path) -> int:
    import duckdb

    con = duckdb.connect()
    # Lines -> the same aggregates; an order's lines share its time, so a day's value is the sum of lines.
    src = (f"(SELECT customer_id, order_time, status, line_amount AS total, quantity AS items "
           f"FROM read_parquet('{work / 'lines.parquet'}'))")
    sql = AGG_SQL.format(src=src).replace("count(*) AS n_orders", "count(DISTINCT order_id) AS n_orders") \
        .replace("line_amount AS total, quantity AS items", "order_id, line_amount AS total, quantity AS items")
    return con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]


def task_pandas(work: Path) -> int:
    import pandas as pd

    df = pd.read_parquet(work / "lines.parquet", columns=["customer_id", "order_id", "order_time", "status",
                                                          "line_amount", "quantity"])
    df = df[(df.status == "completed") & df.customer_id.notna()]
    df["d"] = df.order_time.dt.normalize()
    days = df.groupby(["customer_id", "d"], sort=False).agg(
        v=("line_amount", "sum"), n_orders=("order_id", "nunique"), units=("quantity", "sum")).reset_index()
    days["first_d"] = days.groupby("customer_id").d.transform("min")
    days["rv"] = days.v.where(days.d > days.first_d, 0.0)
    out = days.groupby("customer_id").agg(orders=("n_orders", "sum"), first=("d", "min"), last=("d", "max"),
                                          revenue=("v", "sum"), units=("units", "sum"), n=("d", "size"),
                                          rv=("rv", "sum"))
    out["x"] = out.n - 1
    out["mean_repeat_value"] = out.rv / out.x.where(out.x > 0)
    return len(out)


def task_lifetimes(work: Path) -> int:
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    df = pd.read_parquet(work / "lines.parquet", columns=["customer_id", "order_time", "status", "line_amount"])
    df = df[(df.status == "completed") & df.customer_id.notna()]
    end = df.order_time.max().normalize()
    out = summary_data_from_transaction_data(df, "customer_id", "order_time", monetary_value_col="line_amount",
                                             observation_period_end=end, freq="D")
    return len(out)


def task_custseg_rfm(work: Path) -> int:
    from custseg import Store
    from custseg import pipeline

    with Store(work / "bench.duckdb") as store:
        n = pipeline.build_and_store_features(store, include=("orders", "clv"))
        pipeline.segment_rfm(store)
    return n


def task_custseg_full(work: Path) -> int:
    from custseg import Store
    from custseg import pipeline

    with Store(work / "bench.duckdb") as store:
        return pipeline.build_and_store_features(store)


def task_custseg_full_capped(work: Path) -> int:
    from custseg import Store
    from custseg import pipeline

    with Store(work / "bench.duckdb", memory_limit="1.5GB") as store:
        return pipeline.build_and_store_features(store)


TASKS = {
    "duckdb_store": ("bare DuckDB", "GROUP BY on the store's orders table", task_duckdb_store),
    "duckdb_parquet": ("bare DuckDB", "GROUP BY on the lines Parquet file", task_duckdb_parquet),
    "pandas": ("pandas", "groupby on the lines Parquet file", task_pandas),
    "lifetimes": ("lifetimes", "summary_data_from_transaction_data", task_lifetimes),
    "custseg_rfm": ("custseg", "clean + order/CLV features + RFM run", task_custseg_rfm),
    "custseg_full": ("custseg", "clean + all feature blocks (demo store)", task_custseg_full),
    "custseg_full_capped": ("custseg", "the same, memory_limit=1.5GB", task_custseg_full_capped),
}


_IMPORTS = {
    "duckdb_store": ["duckdb"], "duckdb_parquet": ["duckdb"], "pandas": ["pandas", "pyarrow"],
    "lifetimes": ["pandas", "pyarrow", "lifetimes.utils"],
    "custseg_rfm": ["custseg", "custseg.pipeline"], "custseg_full": ["custseg", "custseg.pipeline"],
    "custseg_full_capped": ["custseg", "custseg.pipeline"],
}


def run_task(name: str, work: Path) -> None:
    import importlib

    for module in _IMPORTS[name]:  # library import time is not what is measured
        importlib.import_module(module)
    t0 = time.perf_counter()
    rows = TASKS[name][2](work)
    seconds = time.perf_counter() - t0
    print(json.dumps({"task": name, "seconds": seconds, "rows": rows, "peak_mb": peak_mb()}))


# -- set-up ------------------------------------------------------------------------------

def setup(work: Path, customers: int, seed: int) -> dict:
    from custseg import Store
    from custseg.datasets import load_demo, make_store

    work.mkdir(parents=True, exist_ok=True)
    marker = work / "setup.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("customers") == customers and info.get("seed") == seed:
            return info
    for p in work.iterdir():
        p.unlink() if p.is_file() else shutil.rmtree(p)
    t0 = time.perf_counter()
    demo = make_store(customers, seed=seed)
    gen_s = time.perf_counter() - t0
    with Store(work / "bench.duckdb") as store:
        load_demo(store, demo)
        store.con.execute(f"""
            COPY (SELECT o.customer_id, i.order_id, o.order_time, o.status, i.product_id, i.quantity, i.line_amount
                  FROM order_items i JOIN orders o USING (order_id))
            TO '{work / 'lines.parquet'}' (FORMAT parquet)""")
        info = {"customers": customers, "seed": seed, "generate_seconds": gen_s,
                "orders": store.count("orders"), "order_lines": store.count("order_items"),
                "browsing_events": store.count("browsing_events"), "email_events": store.count("email_events")}
    marker.write_text(json.dumps(info))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data"))
    ap.add_argument("--repeat", type=int, default=1, help="runs per task; the best time is shown")
    ap.add_argument("--skip", default="", help="comma-separated tasks to skip")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:
        run_task(args.task, args.workdir)
        return

    info = setup(args.workdir, args.customers, args.seed)
    print(f"data: {info['customers']:,} customers, {info['orders']:,} orders, {info['order_lines']:,} order lines, "
          f"{info['browsing_events']:,} browsing and {info['email_events']:,} email events "
          f"(generated in {info['generate_seconds']:.1f} s)")
    skip = set(filter(None, args.skip.split(",")))
    try:
        import lifetimes  # noqa: F401
    except ImportError:
        skip.add("lifetimes")
        print("lifetimes is not installed: skipped (pip install 'custseg[bench]')")
    env = dict(os.environ)
    results = {}
    for name in TASKS:
        if name in skip:
            continue
        results[name] = best_run(__file__, name, args.workdir, args.repeat, env)

    base = results.get("duckdb_parquet", {}).get("seconds")
    base_store = results.get("duckdb_store", {}).get("seconds")
    print()
    print(f"{'tool':<12} {'what':<42} {'rows':>10} {'time s':>8} {'peak MiB':>9} {'vs DuckDB parquet':>18} {'vs DuckDB store':>16}")
    for name, r in results.items():
        tool, what, _ = TASKS[name]
        ratio = f"{r['seconds'] / base:.2f}x" if base else ""
        ratio2 = f"{r['seconds'] / base_store:.2f}x" if base_store else ""
        print(f"{tool:<12} {what:<42} {r['rows']:>10,} {r['seconds']:>8.2f} {r['peak_mb']:>9.0f} {ratio:>18} {ratio2:>16}")


if __name__ == "__main__":
    main()
