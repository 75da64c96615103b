"""CLV and churn: `custseg clv fit|predict|holdout|models|churn` and `custseg segment value`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from custseg.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    console,
    handle_errors,
    open_db,
)
from custseg.cli.render import frame_table, kv_table

clv_app = typer.Typer(help="Customer lifetime value and churn: fit, predict, check on a holdout.",
                      no_args_is_help=True)

ModelOption = Annotated[str, typer.Option("--model", help="bgnbd, paretonbd or gammagamma.")]
UnitOption = Annotated[str, typer.Option(
    "--time-unit", help="Unit of t_x, T and the parameters: week or day.")]
CalOption = Annotated[str | None, typer.Option(
    "--calibration-end", help="Last day (inclusive) of the data the model is fitted on (default: last order).")]


def register(app: typer.Typer) -> None:
    from custseg.cli.store_cmd import segment_app

    app.add_typer(clv_app, name="clv")
    segment_app.command("value")(segment_value)


def _floats(text: str, what: str, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{what} {text!r} must be {n} comma-separated numbers") from None
    if len(vals) != n:
        raise ValueError(f"{what} {text!r} must be {n} comma-separated numbers")
    return vals


def _params_table(m) -> pd.DataFrame:
    return pd.DataFrame({"parameter": list(m.param_names),
                         "estimate": [f"{m.params_[p]:.5g}" for p in m.param_names],
                         "std. error": [f"{m.se_[p]:.3g}" for p in m.param_names]})


@clv_app.command("fit")
@handle_errors
def clv_fit(
    db: DbOption = DEFAULT_DB_PATH,
    model: ModelOption = "bgnbd",
    calibration_end: CalOption = None,
    time_unit: UnitOption = "week",
    cohort_start: Annotated[str | None, typer.Option(
        "--cohort-start", help="Only customers whose first purchase is on or after this date.")] = None,
    cohort_end: Annotated[str | None, typer.Option(
        "--cohort-end", help="Only customers whose first purchase is on or before this date.")] = None,
    penalizer: Annotated[float | None, typer.Option(
        "--penalizer", help="L2 penalty on the log-parameters (default: none, unless the fit does not converge "
                            "without one).")] = None,
) -> None:
    """Fit a CLV model by maximum likelihood; print the parameters with standard errors; save it."""
    from custseg.clv.predict import fit_model, save_model

    with open_db(db) as store, console.status(f"fitting {model}"):
        m = fit_model(store, model, calibration_end=calibration_end, time_unit=time_unit,
                      cohort_start=cohort_start, cohort_end=cohort_end, penalizer=penalizer)
        model_id = save_model(store, m)
    meta = m.meta_
    console.print(frame_table(_params_table(m), f"{model} (time unit: {meta['time_unit']})"))
    console.print(kv_table({
        "customers": f"{m.n_customers_:,}",
        ("distinct (x, spend)" if model == "gammagamma" else "distinct (x, t_x, T)"): f"{m.n_unique_:,}",
        "log-likelihood": f"{m.log_likelihood_:,.2f}",
        "calibration": f"{meta['calibration_start']} to {meta['calibration_end']}",
        "converged": f"{m.converged_} ({m.n_iter_} iterations)"}))
    for note in meta.get("notes") or []:
        console.print(f"note: {note}", highlight=False)
    if meta.get("penalizer_reason"):
        console.print(f"note: {meta['penalizer_reason']}", highlight=False)
    if meta.get("excluded_nonpositive_spend"):
        console.print(f"left out {meta['excluded_nonpositive_spend']:,} repeat buyers whose repeat purchases net to "
                      "zero or less (Gamma-Gamma models positive spend)", highlight=False)
    console.print(f"saved model {model_id}", highlight=False)


@clv_app.command("models")
@handle_errors
def clv_models(db: DbOption = DEFAULT_DB_PATH) -> None:
    """List the fitted models kept in the store, newest first."""
    from custseg.clv.predict import list_models

    with open_db(db, read_only=True) as store:
        df = list_models(store)
    if df.empty:
        console.print("no CLV models yet; run `custseg clv fit`")
        return
    console.print(frame_table(df, "CLV models"))


@clv_app.command("predict")
@handle_errors
def clv_predict(
    db: DbOption = DEFAULT_DB_PATH,
    horizon: Annotated[float, typer.Option("--horizon", help="Horizon in days.")] = 365.0,
    model_id: Annotated[str | None, typer.Option(
        "--model-id", help="Purchase model to use (default: the newest BG/NBD or Pareto/NBD).")] = None,
    spend_model_id: Annotated[str | None, typer.Option(
        "--spend-model-id", help="Gamma-Gamma model (default: the newest; fitted now if there is none).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Score on the data before this date (default: the day after the last order).")] = None,
    discount_rate: Annotated[float, typer.Option(
        "--discount-rate", help="Annual discount rate, e.g. 0.1 for 10%.")] = 0.1,
    margin: Annotated[float, typer.Option("--margin", help="Profit margin applied to spend, e.g. 0.3.")] = 1.0,
    intervals: Annotated[bool, typer.Option(
        "--intervals/--no-intervals", help="Bootstrap intervals for P(alive), purchases and CLV.")] = True,
    draws: Annotated[int, typer.Option("--draws", help="Parameter draws of the bootstrap.")] = 100,
    level: Annotated[float, typer.Option("--level", help="Interval level, e.g. 0.9.")] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write the predictions to this CSV or Parquet file.")] = None,
) -> None:
    """Score every customer: P(alive), expected purchases, spend, CLV; write `clv_predictions`."""
    from custseg.clv.predict import (
        fit_model,
        load_model,
        predict,
        save_model,
        save_predictions,
    )

    with open_db(db) as store, console.status("scoring customers"):
        m = load_model(store, model_id, kind=("bgnbd", "paretonbd"))
        if m.meta_.get("model") not in ("bgnbd", "paretonbd"):
            raise ValueError(f"model {model_id} is a {m.meta_.get('model')} model; --model-id takes a purchase "
                             "model (bgnbd or paretonbd), --spend-model-id the Gamma-Gamma one")
        try:
            spend = load_model(store, spend_model_id, kind="gammagamma")
        except ValueError:
            if spend_model_id is not None:
                raise
            spend = fit_model(store, "gammagamma", calibration_end=m.meta_.get("calibration_end"),
                              time_unit=m.meta_.get("time_unit", "week"))
            save_model(store, spend)
            console.print(f"fitted and saved a Gamma-Gamma spend model {spend.meta_['model_id']}", highlight=False)
        pred = predict(store, m, spend, horizon_days=horizon, as_of=as_of, discount_rate=discount_rate,
                       margin=margin, intervals=intervals, n_draws=draws, level=level, seed=seed)
        pid = save_predictions(store, pred)
    _show_predictions(pred, pid, horizon)
    if output is not None:
        _write(pred, output)
        console.print(f"wrote {len(pred):,} rows to {output}")


def _write(df: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        raise ValueError(f"--output {path}: use a .csv or .parquet file name")


def _show_predictions(pred: pd.DataFrame, pid: str, horizon: float) -> None:
    p = pred["p_alive"]
    console.print(kv_table({
        "customers scored": f"{len(pred):,}",
        "as of": str(pred["as_of"].iloc[0]),
        f"expected purchases in {horizon:g} days": f"{pred['expected_purchases'].sum():,.1f}",
        f"CLV over {horizon:g} days (sum)": f"{pred['clv'].sum():,.2f}",
        "mean P(alive)": f"{p.mean():.3f}",
        "P(alive) < 0.3 / 0.3-0.7 / >= 0.7": f"{(p < 0.3).mean():.1%} / {((p >= 0.3) & (p < 0.7)).mean():.1%} / "
                                             f"{(p >= 0.7).mean():.1%}",
    }, "Predictions"))
    top = pred.sort_values("clv", ascending=False).head(10)
    cols = ["customer_id", "x", "p_alive", "expected_purchases", "expected_spend", "clv", "clv_low", "clv_high"]
    console.print(frame_table(top[cols].round(3), "Highest predicted CLV"))
    console.print(f"saved predictions {pid} (table clv_predictions)", highlight=False)


@clv_app.command("holdout")
@handle_errors
def clv_holdout(
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="Last day (inclusive) of the calibration period.")],
    db: DbOption = DEFAULT_DB_PATH,
    holdout_end: Annotated[str | None, typer.Option(
        "--holdout-end", help="Last day of the holdout period (default: the last order).")] = None,
    model: ModelOption = "bgnbd",
    time_unit: UnitOption = "week",
    cohort_start: Annotated[str | None, typer.Option(
        "--cohort-start", help="Only customers whose first purchase is on or after this date.")] = None,
    cohort_end: Annotated[str | None, typer.Option(
        "--cohort-end", help="Only customers whose first purchase is on or before this date.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the plots to this HTML file.")] = None,
) -> None:
    """Fit on the calibration period; compare predicted and actual repeat purchases in the holdout."""
    from custseg.clv.holdout import holdout_html, holdout_report

    with open_db(db, read_only=True) as store, console.status("calibration / holdout"):
        rep = holdout_report(store, calibration_end, holdout_end=holdout_end, model=model, time_unit=time_unit,
                             cohort_start=cohort_start, cohort_end=cohort_end)
    m = rep.model
    console.print(frame_table(_params_table(m), f"{model} fitted to {rep.calibration_end} ({rep.time_unit}s)"))
    console.print(frame_table(rep.by_frequency.round(3), f"Holdout {rep.calibration_end + pd.Timedelta(days=1)} "
                                                          f"to {rep.holdout_end}: mean purchases per customer"))
    t = rep.totals
    console.print(f"total repeat purchases in the holdout: predicted {t['predicted']:,.1f}, actual "
                  f"{t['actual']:,.0f} ({t['error_pct']:+.1f}%); per customer MAE {t['mae_per_customer']:.3f}, "
                  f"correlation {t['correlation']:.3f}", highlight=False)
    if html is not None:
        holdout_html(rep, html)
        console.print(f"wrote {html}")


@clv_app.command("churn")
@handle_errors
def clv_churn(
    split: Annotated[str, typer.Option("--split", help="Date of the time split: features before, label after.")],
    db: DbOption = DEFAULT_DB_PATH,
    horizon: Annotated[int, typer.Option(
        "--horizon", help="Days after the split: no purchase in them = churned.")] = 90,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/test split and the model.")] = 0,
    penalizer: Annotated[float, typer.Option(
        "--penalizer", help="L2 penalty of the BG/NBD baseline's fit (0: plain maximum likelihood).")] = 0.001,
) -> None:
    """Supervised churn model (gradient boosting) against the P(alive) baseline on a time split."""
    from custseg.clv.churn import ChurnModel

    with open_db(db, read_only=True) as store, console.status("churn model"):
        cm = ChurnModel(horizon_days=horizon, seed=seed, baseline_penalizer=penalizer).fit(store, split)
    ev = cm.evaluation_
    rows = []
    for name, key in (("gradient boosting", "model"), ("1 - P(alive) (BG/NBD)", "baseline_p_alive"),
                      ("expected purchases (BG/NBD)", "baseline_expected_purchases")):
        e = ev.get(key)
        if e:
            rows.append({"score": name, "AUC": e["auc"], "lift top 10%": e["lift_top_10pct"],
                         "lift top 20%": e["lift_top_20pct"]})
    console.print(frame_table(pd.DataFrame(rows).round(3), f"Churn = no purchase in the {horizon} days from "
                                                            f"{split} (test customers: {ev['n_test']:,}, "
                                                            f"churn rate {ev['test_churn_rate']:.1%})"))
    if ev.get("baseline_error"):
        console.print(f"BG/NBD baseline not available: {ev['baseline_error']}", highlight=False)
    imp = getattr(cm, "feature_importances_", None)
    if imp is not None and len(imp):
        imp = pd.DataFrame(imp) if not isinstance(imp, pd.DataFrame) else imp
        console.print(frame_table(imp.head(10).round(4), "Most important features (permutation)"))


@handle_errors
def segment_value(
    db: DbOption = DEFAULT_DB_PATH,
    prediction_id: Annotated[str | None, typer.Option(
        "--prediction-id", help="Prediction run to segment (default: the newest).")] = None,
    value_shares: Annotated[str, typer.Option(
        "--value-shares", help="Shares of customers in the high and mid value tiers, by CLV rank.")] = "0.2,0.3",
    risk_bands: Annotated[str, typer.Option(
        "--risk-bands", help="P(alive) below the first: likely lost; below the second: at risk.")] = "0.3,0.7",
) -> None:
    """Value tier × churn-risk band segments from CLV predictions, recorded as a run."""
    from custseg.clv.segments import run_value_segments, value_summary

    shares = _floats(value_shares, "--value-shares", 2)
    bands = _floats(risk_bands, "--risk-bands", 2)
    with open_db(db) as store:
        run_id = run_value_segments(store, prediction_id, value_shares=shares, risk_bands=bands)
        summary = value_summary(store, run_id)
    console.print(frame_table(summary.round(3), f"Value × risk segments (run {run_id}), in priority order"))
    console.print(f"recorded run {run_id}; profile it with `custseg profile {run_id}`", highlight=False)
