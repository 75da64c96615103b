"""Benchmark: fitting the CLV models (BG/NBD first) against lifetimes, from 2,357 to 10M customers.

Prints, in one run, for every data size and time unit (daily and weekly):

* rows (customers) and distinct (x, t_x, T) tuples;
* custseg: ``BetaGeoModel().fit(x, t_x, T)`` on one row per customer -- the compression to
  distinct tuples is part of the fit and inside the clock;
* lifetimes 0.11: ``BetaGeoFitter().fit(frequency, recency, T)`` on the same rows (how it is
  documented and called; up to ``--lifetimes-max`` customers, larger sizes are shown as skipped
  with a linear extrapolation from the largest size measured);
* lifetimes weighted: the same fitter on the distinct tuples with ``weights=``, the compression
  done by a pandas groupby inside the clock (``--no-weighted`` drops it): how much of the
  difference is compression and how much the fit itself;
* speed-up (lifetimes s / custseg s), the largest relative difference between the two tools'
  parameters, and the log-likelihood of each tool's parameters on the same data (evaluated
  afterwards, outside the clock, with lifetimes' own likelihood functions): a positive
  "LL c-l" means custseg's optimum is higher, i.e. lifetimes stopped short of it;
* peak memory of each fit's process (``VmHWM``: imports + input arrays + the fit) and what the
  fit added on top of the process before the clock ("+MiB").

With ``--models bgnbd,paretonbd,gammagamma`` the Pareto/NBD (``ParetoNBDModel`` vs
``ParetoNBDFitter``) and Gamma-Gamma (``GammaGammaModel`` vs ``GammaGammaFitter``, on the repeat
customers' frequency and mean spend: rows are the repeat customers, distinct the (x, spend) pairs;
it has no time unit) fits are measured the same way, on the same data.
lifetimes' Pareto/NBD (Nelder-Mead over a hypergeometric likelihood) is slow: it is measured up
to ``--paretonbd-lifetimes-max`` customers (default 100k) and seeded (it starts from random
parameters).

Data:

* 2,357 -- the real CDNOW sample (``tests/data/cdnow_sample_summary.csv``, Fader & Hardie's
  39-week calibration summary: x, t_x, T in weeks with two decimals, zbar the mean repeat spend);
  the daily version is weeks x 7 rounded to whole days.
* 100k, 1M, 10M -- simulated from BG/NBD with the CDNOW estimates (r=0.243, alpha=4.414 per week,
  a=0.793, b=2.426; numpy, seeded): first purchase on a day spread uniformly over the first 12
  weeks, a 39-week (273-day) calibration period, Poisson purchases with a dropout coin after each
  repeat purchase, and purchase times rounded to whole days as a transaction log records them
  (several purchases on one day count as one). x, t_x, T are then whole days (daily) or days / 7
  (weekly). Mean spend per repeat customer is drawn from Gamma-Gamma with the CDNOW estimates
  (p=6.25, q=3.74, gamma=15.44), rounded to cents. The arrays are generated once (not timed) and
  cached as .npy in ``--workdir`` (default ``bench-data/clv``, which git ignores).

Each measurement runs in a fresh Python process (peak memory is its own ``VmHWM``), with
library imports and the input arrays loaded before the clock starts; the best of ``--repeat``
runs is shown.

    python benchmarks/bench_clv.py                          # BG/NBD: 2,357 / 100k / 1M / 10M, daily + weekly
    python benchmarks/bench_clv.py --repeat 3
    python benchmarks/bench_clv.py --sizes 2357,100000 --units weekly
    python benchmarks/bench_clv.py --models bgnbd,paretonbd,gammagamma
    python benchmarks/bench_clv.py --lifetimes-max 100000   # quicker: lifetimes only up to 100k
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _measure import (  # benchmarks/_measure.py (the script folder is on sys.path)
    best_run,
    peak_mb,
    reset_peak,
)

HERE = Path(__file__).resolve().parent
CDNOW = HERE.parent / "tests" / "data" / "cdnow_sample_summary.csv"
CDNOW_ROWS = 2357

# CDNOW estimates (Fader, Hardie & Lee 2005; per week) that the simulation draws from.
BGNBD_TRUE = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG_TRUE = {"p": 6.25, "q": 3.74, "gamma": 15.44}
FIRST_DAYS = 12 * 7       # first purchases spread over the first 12 weeks
CALIBRATION_DAYS = 273    # 39 weeks: days 0 .. 272

MODELS = {
    # name: label, custseg module + class, lifetimes class, custseg parameter names, lifetimes names
    "bgnbd": ("BG/NBD", "custseg.clv.bgnbd", "BetaGeoModel", "BetaGeoFitter",
              ("r", "alpha", "a", "b"), ("r", "alpha", "a", "b")),
    "paretonbd": ("Pareto/NBD", "custseg.clv.paretonbd", "ParetoNBDModel", "ParetoNBDFitter",
                  ("r", "alpha", "s", "beta"), ("r", "alpha", "s", "beta")),
    "gammagamma": ("Gamma-Gamma", "custseg.clv.gammagamma", "GammaGammaModel", "GammaGammaFitter",
                   ("p", "q", "gamma"), ("p", "q", "v")),
}
TOOLS = ("custseg", "lifetimes", "lifetimes_w")


# -- data --------------------------------------------------------------------------------

def simulate(n: int, seed: int) -> dict[str, np.ndarray]:
    """BG/NBD customers on whole days (x, t_x, T in days) with a Gamma-Gamma mean spend."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(BGNBD_TRUE["r"], 1.0 / BGNBD_TRUE["alpha"], n) / 7.0   # purchases per day
    p = rng.beta(BGNBD_TRUE["a"], BGNBD_TRUE["b"], n)                       # dropout after each repeat
    first = rng.integers(0, FIRST_DAYS, n)                                   # first purchase day
    x = np.zeros(n, dtype=np.int64)
    last = first.copy()                                                      # last purchase day
    idx = np.arange(n)
    t = first + rng.random(n)                                                # continuous time of day
    with np.errstate(divide="ignore", over="ignore"):
        while idx.size:
            t = t + rng.exponential(1.0, idx.size) / lam[idx]
            inside = t < CALIBRATION_DAYS
            idx, t = idx[inside], t[inside]
            day = np.floor(t).astype(np.int64)
            new_day = day > last[idx]              # same-day purchases count once
            x[idx[new_day]] += 1
            last[idx[new_day]] = day[new_day]
            alive = rng.random(idx.size) >= p[idx]
            idx, t = idx[alive], t[alive]
    nu = rng.gamma(GG_TRUE["q"], 1.0 / GG_TRUE["gamma"], n)
    zbar = np.zeros(n)
    rep = x > 0
    zbar[rep] = np.round(rng.gamma(GG_TRUE["p"] * x[rep], 1.0 / (nu[rep] * x[rep])), 2)
    zbar[rep] = np.maximum(zbar[rep], 0.01)
    return {"x": x, "t_x": (last - first).astype(np.float64),
            "T": (CALIBRATION_DAYS - 1 - first).astype(np.float64), "zbar": zbar}


def _cache(work: Path, n: int, seed: int) -> dict[str, Path]:
    return {k: work / f"sim_{n}_seed{seed}_{k}.npy" for k in ("x", "t_x", "T", "zbar")}


def setup(work: Path, sizes: list[int], seed: int) -> None:
    """Generate (once) and cache the simulated sizes."""
    work.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        if n == CDNOW_ROWS:
            continue
        files = _cache(work, n, seed)
        if all(f.exists() for f in files.values()):
            continue
        t0 = time.perf_counter()
        data = simulate(n, seed)
        for k, f in files.items():
            np.save(f, data[k])
        print(f"generated {n:,} customers (seed {seed}) in {time.perf_counter() - t0:.1f} s -> {work}")


def load(work: Path, n: int, unit: str, seed: int) -> dict[str, np.ndarray]:
    """x, t_x, T in the time unit (and zbar) as the tools get them."""
    if n == CDNOW_ROWS:
        d = np.genfromtxt(CDNOW, delimiter=",", names=True)
        x, t_x, T, zbar = d["x"].astype(np.int64), d["t_x"], d["T"], d["zbar"]
        if unit == "daily":
            t_x, T = np.round(t_x * 7), np.round(T * 7)
        return {"x": x, "t_x": t_x, "T": T, "zbar": zbar}
    d = {k: np.load(f) for k, f in _cache(work, n, seed).items()}
    if unit == "weekly":
        d["t_x"], d["T"] = d["t_x"] / 7.0, d["T"] / 7.0
    return d


def inputs(model: str, d: dict[str, np.ndarray]) -> tuple:
    if model == "gammagamma":
        rep = d["x"] > 0
        return d["x"][rep], d["zbar"][rep]
    return d["x"], d["t_x"], d["T"]


def distinct(model: str, d: dict[str, np.ndarray]) -> tuple[tuple, np.ndarray]:
    """The distinct input tuples and their counts (for the likelihoods; not timed)."""
    import pandas as pd

    cols = inputs(model, d)
    frame = pd.DataFrame({f"c{i}": np.asarray(c, dtype=np.float64) for i, c in enumerate(cols)})
    grouped = frame.groupby(list(frame.columns), sort=False).size().reset_index()
    return tuple(grouped[f"c{i}"].to_numpy() for i in range(len(cols))), grouped[0].to_numpy()


def log_likelihood(model: str, params: list[float], uniq: tuple, counts: np.ndarray) -> float:
    """Total log-likelihood of ``params`` (custseg order) with lifetimes' own formulas."""
    import lifetimes

    with np.errstate(all="ignore"):
        if model == "bgnbd":
            f = lifetimes.BetaGeoFitter._negative_log_likelihood
            return float(-f(np.log(params), uniq[0], uniq[1], uniq[2], counts, 0.0) * counts.sum())
        if model == "paretonbd":
            ll = lifetimes.ParetoNBDFitter._conditional_log_likelihood(np.asarray(params), *uniq)
            return float((counts * ll).sum())
        f = lifetimes.GammaGammaFitter._negative_log_likelihood
        return float(-f(np.log(params), uniq[0], uniq[1], counts, 0.0) * counts.sum())


# -- tasks (each runs in its own process) -------------------------------------------------

def _fit_custseg(model: str, cols: tuple):
    import importlib

    _, module, cls, _, names, _ = MODELS[model]
    Model = getattr(importlib.import_module(module), cls)
    m = Model().fit(*cols)
    return [float(m.params_[k]) for k in names], getattr(m, "n_unique_", None)


def _fit_lifetimes(model: str, cols: tuple, weighted: bool):
    import lifetimes
    import pandas as pd

    _, _, _, cls, _, names = MODELS[model]
    kwargs = {}
    n_unique = None
    if weighted:
        frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
        grouped = frame.groupby(list(frame.columns), sort=False).size().reset_index()
        cols = tuple(grouped[f"c{i}"].to_numpy() for i in range(len(cols)))
        kwargs["weights"] = grouped[0].to_numpy()
        n_unique = len(grouped)
    m = getattr(lifetimes, cls)().fit(*cols, **kwargs)
    return [float(m.params_[k]) for k in names], n_unique


def run_task(task: str, work: Path) -> None:
    import importlib

    model, tool, n, unit = task.split(":")
    n = int(n)
    for module in (["custseg", MODELS[model][1]] if tool == "custseg" else ["lifetimes", "pandas", "scipy.optimize"]):
        importlib.import_module(module)  # library import time is not what is measured
    np.random.seed(0)  # lifetimes' Pareto/NBD starts from random parameters
    cols = inputs(model, load(work, n, unit, int(os.environ.get("BENCH_CLV_SEED", "0"))))
    before = reset_peak()
    t0 = time.perf_counter()
    if tool == "custseg":
        params, n_unique = _fit_custseg(model, cols)
    else:
        params, n_unique = _fit_lifetimes(model, cols, tool == "lifetimes_w")
    seconds = time.perf_counter() - t0
    peak = peak_mb()
    print(json.dumps({"task": task, "seconds": seconds, "peak_mb": max(peak, before["peak_mb"]),
                      "fit_mb": peak - before["rss_mb"], "params": params, "n_unique": n_unique,
                      "rows": len(cols[0])}))


# -- the run -----------------------------------------------------------------------------

def _fmt_s(r: dict | None) -> str:
    return "—" if r is None else f"{r['seconds']:.3f}" if r["seconds"] < 10 else f"{r['seconds']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2357,100000,1000000,10000000",
                    help="customers; 2357 is the real CDNOW sample, the others are simulated")
    ap.add_argument("--units", default="daily,weekly", help="time units: daily, weekly")
    ap.add_argument("--models", default="bgnbd", help="bgnbd, paretonbd, gammagamma (comma-separated)")
    ap.add_argument("--lifetimes-max", type=int, default=1_000_000,
                    help="largest size lifetimes fits (larger ones are extrapolated)")
    ap.add_argument("--paretonbd-lifetimes-max", type=int, default=100_000,
                    help="the same for lifetimes' (slow) Pareto/NBD")
    ap.add_argument("--no-weighted", action="store_true", help="skip lifetimes on weighted distinct tuples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data") / "clv")
    ap.add_argument("--repeat", type=int, default=1, help="runs per task; the best time is shown")
    ap.add_argument("--blas-threads", type=int,
                    help="limit BLAS/OpenMP threads of every fit (OPENBLAS/OMP/MKL_NUM_THREADS); default: as installed")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.task:
        run_task(args.task, args.workdir)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    units = [u.strip() for u in args.units.split(",")]
    models = [m.strip() for m in args.models.split(",")]
    setup(args.workdir, sizes, args.seed)
    env = {**os.environ, "BENCH_CLV_SEED": str(args.seed)}
    if args.blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.blas_threads)

    rows = []
    for model in models:
        lt_max = args.paretonbd_lifetimes_max if model == "paretonbd" else args.lifetimes_max
        for unit in (["—"] if model == "gammagamma" else units):
            largest_lt = None
            for n in sizes:
                task_unit = "daily" if unit == "—" else unit
                res = {}
                for tool in TOOLS:
                    if tool != "custseg" and n > lt_max:
                        continue
                    if tool == "lifetimes_w" and args.no_weighted:
                        continue
                    res[tool] = best_run(__file__, f"{model}:{tool}:{n}:{task_unit}", args.workdir,
                                         args.repeat, env=env)
                    print(f"  {MODELS[model][0]} {n:,} {unit} {tool}: {res[tool]['seconds']:.3f} s", flush=True)
                if "lifetimes" in res:
                    largest_lt = (n, res["lifetimes"]["seconds"])
                d = load(args.workdir, n, task_unit, args.seed)
                uniq, counts = distinct(model, d)
                lls = {t: log_likelihood(model, r["params"], uniq, counts) for t, r in res.items()}
                rows.append({"model": model, "n": n, "unit": unit, "res": res, "lls": lls,
                             "rows": res["custseg"]["rows"], "distinct": len(counts),
                             "extrapolated": None if "lifetimes" in res or largest_lt is None
                             else largest_lt[1] * n / largest_lt[0]})

    print()
    head = (f"{'model':<11} {'data':<7} {'unit':<6} {'rows':>10} {'distinct':>9} {'custseg s':>9} {'MiB':>5} "
            f"{'+MiB':>5} {'lifetimes s':>33} {'MiB':>5} {'+MiB':>5} {'speed-up':>8} {'lt+weights s':>12} "
            f"{'max rel diff':>12} {'LL custseg':>14} {'LL c-l':>9}")
    print(head)
    for row in rows:
        res, c = row["res"], row["res"]["custseg"]
        lt, lw = res.get("lifetimes"), res.get("lifetimes_w")
        data = "CDNOW" if row["n"] == CDNOW_ROWS else "sim"
        if lt is not None:
            lt_s = _fmt_s(lt)
            lt_mem = f"{lt['peak_mb']:>5.0f} {lt['fit_mb']:>5.0f}"
            speed = f"{lt['seconds'] / c['seconds']:.0f}x" if lt["seconds"] / c["seconds"] >= 10 \
                else f"{lt['seconds'] / c['seconds']:.1f}x"
            rel = max(abs(a - b) / abs(b) for a, b in zip(c["params"], lt["params"]))
            rel_s = f"{rel:.1e}"
            dll = f"{row['lls']['custseg'] - row['lls']['lifetimes']:+.2g}"
        else:
            lt_s = (f"skipped (linear: ~{row['extrapolated']:.0f} s extrap.)" if row["extrapolated"]
                    else "skipped")
            lt_mem, speed, rel_s, dll = f"{'—':>5} {'—':>5}", "—", "—", "—"
        print(f"{MODELS[row['model']][0]:<11} {data:<7} {row['unit']:<6} {row['rows']:>10,} {row['distinct']:>9,} "
              f"{_fmt_s(c):>9} {c['peak_mb']:>5.0f} {c['fit_mb']:>5.0f} {lt_s:>33} {lt_mem} {speed:>8} "
              f"{_fmt_s(lw):>12} {rel_s:>12} {row['lls']['custseg']:>14.2f} {dll:>9}")

    print()
    for row in rows:  # the issue's targets: BG/NBD on 1M customers
        c, lt = row["res"]["custseg"], row["res"].get("lifetimes")
        if row["model"] != "bgnbd" or row["n"] != 1_000_000:
            continue
        fast = c["seconds"] < 2
        checks = [f"custseg {c['seconds']:.2f} s {'<' if fast else '>='} 2 s"]
        ok = fast
        if lt is not None:
            speed = lt["seconds"] / c["seconds"]
            rel = max(abs(p - q) / abs(q) for p, q in zip(c["params"], lt["params"]))
            checks += [f"{speed:.0f}x {'>=' if speed >= 20 else '<'} 20x",
                       f"parameters {rel:.1e} {'<=' if rel <= 1e-4 else '>'} 1e-4"]
            ok = ok and speed >= 20 and rel <= 1e-4
        print(f"target (BG/NBD, 1M, {row['unit']}): {'; '.join(checks)} -> {'met' if ok else 'MISSED'}")

    print("\nparameters (custseg / lifetimes):")
    for row in rows:
        names = MODELS[row["model"]][4]
        res = row["res"]
        line = "  ".join(
            f"{k}={a:.6g}" + (f"/{res['lifetimes']['params'][i]:.6g}" if "lifetimes" in res else "")
            for i, (k, a) in enumerate(zip(names, res["custseg"]["params"])))
        print(f"  {MODELS[row['model']][0]:<11} {row['n']:>10,} {row['unit']:<6} {line}")
        nu = res["custseg"]["n_unique"]
        if nu is not None and nu != row["distinct"]:
            print(f"    note: custseg n_unique_={nu:,} but the data hold {row['distinct']:,} distinct tuples")


if __name__ == "__main__":
    main()
