"""Benchmark: the whole clustering step on 1M customers against scikit-learn fitted on all rows.

Prints, in one run, time, peak memory and agreement of:

* custseg: ``run_cluster`` with the defaults, as ``custseg segment cluster`` runs it: a seeded
  50,000-customer sample pulled from DuckDB, preprocessing, k chosen over 2-10 (k-means with 10
  restarts per k, silhouette, Calinski-Harabasz, Davies-Bouldin), the fit, names, rules, 5
  reseeded bootstrap refits for stability, every customer assigned in DuckDB (nearest centroid
  as SQL) and the run recorded (1M memberships written);
* custseg without the stability refits (``n_refits=0``);

(with ``--k N`` custseg fits that k instead of choosing, and so does the peer)
* scikit-learn: ``KMeans(k, n_init=10, random_state=0)`` fitted on all 1M rows at the k custseg
  chose, on the same features with the same preprocessing fitted on all rows (the features
  pulled from DuckDB into pandas inside the clock), with its default threads;
* the same with one thread (custseg fits with one thread, see ``n_threads``).

Agreement is the adjusted Rand index between each peer's labels and custseg's assignment.

Each measurement runs in a fresh Python process (peak memory is its own ``VmHWM``), with
library imports before the clock starts. The set-up (not timed) generates the store with
``make_store(1_000_000, seed=0)`` + ``load_demo`` (or copies ``--from-store``, a store file
holding exactly that, such as ``/work/bench1m/bench.duckdb``; it is only read) and builds the
features once; it is cached in ``--workdir`` (default ``bench-data/cluster``, which git ignores;
``bench_features.py`` clears ``bench-data`` when it rebuilds its own data, and this cache with it).

    python benchmarks/bench_cluster.py                                  # 1M customers
    python benchmarks/bench_cluster.py --from-store /work/bench1m/bench.duckdb
    python benchmarks/bench_cluster.py --k 6                            # k fixed (both tools)
    python benchmarks/bench_cluster.py --customers 100000 --repeat 2    # quicker
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


# -- tasks (each runs in its own process) -------------------------------------------------

def _custseg(work: Path, n_refits: int) -> dict:
    from custseg import Store
    from custseg.segmenters.cluster import ClusterSegmenter, run_cluster

    k = json.loads(os.environ.get("BENCH_CLUSTER_K", "null"))
    with Store(work / "store.duckdb") as store:
        t0 = time.perf_counter()
        seg = ClusterSegmenter(seed=0, k=k, n_refits=n_refits)
        run_id = run_cluster(store, seg)
        seconds = time.perf_counter() - t0
        peak = peak_mb()
        # Outside the clock: keep the labels for the agreement, drop the run.
        store.con.execute(
            f"COPY (SELECT m.customer_id, m.segment FROM segment_memberships m WHERE run_id = ? "
            f"ORDER BY customer_id) TO '{work / f'labels_custseg_{n_refits}.parquet'}' (FORMAT parquet)",
            [run_id])
        with store.transaction() as con:
            con.execute("DELETE FROM segment_memberships WHERE run_id = ?", [run_id])
            con.execute("DELETE FROM segment_runs WHERE run_id = ?", [run_id])
        (work / "chosen_k.json").write_text(json.dumps({"k": seg.k_, "features": seg.features_}))
        return {"seconds": seconds, "peak_mb": peak, "rows": seg.n_customers_, "k": seg.k_,
                "stability": seg.stability_ and seg.stability_["ari_mean"], "fidelity": seg.explanation_.fidelity}


def task_custseg(work: Path) -> dict:
    return _custseg(work, 5)


def task_custseg_no_refits(work: Path) -> dict:
    return _custseg(work, 0)


def _sklearn(work: Path, threads: int | None) -> dict:
    import duckdb
    import pandas as pd
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    from custseg.segmenters.cluster import fit_preprocessing

    chosen = json.loads((work / "chosen_k.json").read_text())
    con = duckdb.connect(str(work / "store.duckdb"), read_only=True)
    t0 = time.perf_counter()
    cols = ", ".join(f'"{c}"' for c in chosen["features"])
    frame = con.execute(f"SELECT customer_id, {cols} FROM customer_features ORDER BY customer_id").df()
    prep = fit_preprocessing(frame, chosen["features"])
    matrix, _ = prep.transform(frame)
    if threads is None:
        labels = KMeans(chosen["k"], n_init=10, random_state=0).fit_predict(matrix)
    else:
        with threadpool_limits(threads):
            labels = KMeans(chosen["k"], n_init=10, random_state=0).fit_predict(matrix)
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    pd.DataFrame({"customer_id": frame.customer_id, "label": labels}).to_parquet(
        work / f"labels_sklearn_{threads or 'default'}.parquet")
    return {"seconds": seconds, "peak_mb": peak, "rows": len(frame), "k": chosen["k"]}


def task_sklearn(work: Path) -> dict:
    return _sklearn(work, None)


def task_sklearn_1thread(work: Path) -> dict:
    return _sklearn(work, 1)


TASKS = {
    "custseg": ("custseg", "sample 50k, k 2-10 (or --k), fit, rules, 5 refits, assign all in DuckDB, record",
                task_custseg, "labels_custseg_5.parquet"),
    "custseg_no_refits": ("custseg", "the same without the stability refits", task_custseg_no_refits,
                          "labels_custseg_0.parquet"),
    "sklearn": ("scikit-learn", "KMeans(n_init=10) on all rows at custseg's k, default threads",
                task_sklearn, "labels_sklearn_default.parquet"),
    "sklearn_1thread": ("scikit-learn", "the same, one thread", task_sklearn_1thread,
                        "labels_sklearn_1.parquet"),
}
_IMPORTS = {
    "custseg": ["custseg", "custseg.segmenters.cluster", "sklearn.cluster", "sklearn.metrics", "sklearn.tree"],
    "sklearn": ["duckdb", "pandas", "sklearn.cluster", "threadpoolctl", "custseg.segmenters.cluster"],
}


def run_task(name: str, work: Path) -> None:
    import importlib

    for module in _IMPORTS["custseg" if name.startswith("custseg") else "sklearn"]:
        importlib.import_module(module)  # library import time is not what is measured
    print(json.dumps({"task": name, **TASKS[name][2](work)}))


# -- set-up ------------------------------------------------------------------------------

def setup(work: Path, customers: int, seed: int, from_store: Path | None) -> dict:
    """The store with features, cached in ``work`` (the marker lives in the store itself)."""
    from custseg import Store, pipeline
    from custseg.datasets import load_demo, make_store

    work.mkdir(parents=True, exist_ok=True)
    path = work / "store.duckdb"
    if path.exists():
        with Store(path) as store:
            if store.has_table("bench_setup"):
                info = json.loads(store.con.execute("SELECT info FROM bench_setup").fetchall()[0][0])
                if info.get("customers") == customers and info.get("seed") == seed:
                    return info
        path.unlink()
    t0 = time.perf_counter()
    if from_store is not None:
        shutil.copyfile(from_store, path)
        with Store(path) as store:
            if store.count("customers") != customers:
                raise SystemExit(f"{from_store} holds {store.count('customers'):,} customers, not {customers:,}")
    else:
        demo = make_store(customers, seed=seed)
        with Store(path) as store:
            load_demo(store, demo)
        del demo
    with Store(path) as store:
        pipeline.build_and_store_features(store)
        info = {"customers": customers, "seed": seed, "setup_seconds": time.perf_counter() - t0,
                "features_rows": store.count("customer_features")}
        store.con.execute("CREATE OR REPLACE TABLE bench_setup AS SELECT ? AS info", [json.dumps(info)])
    return info


def agreement(work: Path, results: dict) -> None:
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    base = pd.read_parquet(work / TASKS["custseg"][3])
    for name, r in results.items():
        other = pd.read_parquet(work / TASKS[name][3])
        m = base.merge(other, on="customer_id", suffixes=("", "_other"))
        col = "label" if "label" in other.columns else "segment_other"
        r["ari_vs_custseg"] = float(adjusted_rand_score(m["segment"], m[col]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data") / "cluster")
    ap.add_argument("--from-store", type=Path, help="copy this store (same customers and seed) instead of generating")
    ap.add_argument("--repeat", type=int, default=1, help="runs per task; the best time is shown")
    ap.add_argument("--skip", default="", help="comma-separated tasks to skip")
    ap.add_argument("--k", type=int, help="fix k (default: custseg chooses it over 2-10)")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:
        run_task(args.task, args.workdir)
        return

    info = setup(args.workdir, args.customers, args.seed, args.from_store)
    print(f"data: {info['features_rows']:,} customers with features (make_store({args.customers:,}, seed={args.seed}))")
    skip = set(filter(None, args.skip.split(",")))
    results = {}
    for name in TASKS:
        if name in skip:
            continue
        results[name] = best_run(__file__, name, args.workdir, args.repeat,
                                 env={**os.environ, "BENCH_CLUSTER_K": json.dumps(args.k)})
    agreement(args.workdir, results)
    print()
    print(f"{'tool':<13} {'what':<78} {'rows':>10} {'k':>3} {'time s':>7} {'peak MiB':>9} {'ARI vs custseg':>15}")
    for name, r in results.items():
        tool, what, _, _ = TASKS[name]
        print(f"{tool:<13} {what:<78} {r['rows']:>10,} {r['k']:>3} {r['seconds']:>7.2f} {r['peak_mb']:>9.0f} "
              f"{r['ari_vs_custseg']:>15.3f}")
    c = results.get("custseg")
    if c:
        print(f"\ncustseg: stability (mean ARI of 5 refits) {c['stability']:.3f}, rule fidelity {c['fidelity']:.3f}")


if __name__ == "__main__":
    main()
