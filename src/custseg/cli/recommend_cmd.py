"""Product recommendations: `custseg recommend run|show|evaluate`."""

from __future__ import annotations

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

recommend_app = typer.Typer(help="Personalised product recommendations, aware of the customer's segment.",
                            no_args_is_help=True)

NOption = Annotated[int, typer.Option("--n", help="Products per customer.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the random order that breaks ties.")]
SAMPLE_CUSTOMERS = 3


def register(app: typer.Typer) -> None:
    app.add_typer(recommend_app, name="recommend")


@recommend_app.command("run")
@handle_errors
def recommend_run(
    db: DbOption = DEFAULT_DB_PATH,
    run: Annotated[str | None, typer.Option(
        "--run", help="Segmentation run whose segments are used (default: the newest).")] = None,
    n: NOption = 10,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Use purchases before this day, YYYY-MM-DD (default: all).")] = None,
    seed: SeedOption = 0,
) -> None:
    """Recommend products to every customer and store the run."""
    from custseg.recommend import Recommender, save_recommendations

    with open_db(db) as store, console.status("recommending"):
        model = Recommender(n=n, seed=seed).fit(store, as_of=as_of, run_id=run)
        recs = model.recommend()
        rec_run = save_recommendations(store, recs)
    repeat = model.repeat_categories_
    console.print(kv_table({
        "segmentation run": model.run_id_ or "(none: no segment lift)",
        "purchases before": str(model.as_of_) if model.as_of_ else "(all)",
        "buying customers": f"{model.n_buyers_:,}",
        "products": f"{len(model.products_):,}",
        "repeat-purchase categories": ", ".join(repeat.loc[repeat["repeat"], "category"]) or "(none)",
        "weights": ", ".join(f"{k} {v:.2f}" for k, v in model.weights_.items()),
    }, "Recommender"))
    counts = _reason_counts(recs)
    console.print(frame_table(counts, f"{recs['customer_id'].nunique():,} customers, {len(recs):,} recommendations"))
    if not recs.empty:
        ids = pd.Series(recs["customer_id"].unique()).sample(min(SAMPLE_CUSTOMERS, recs["customer_id"].nunique()),
                                                            random_state=seed)
        sample = recs[recs["customer_id"].isin(ids)].sort_values(["customer_id", "rank"])
        console.print(frame_table(_display(sample), "Sample"))
    console.print(f"recorded recommendation run {rec_run}", highlight=False)


@recommend_app.command("show")
@handle_errors
def recommend_show(
    customer_id: Annotated[str, typer.Argument(help="The customer.")],
    rec_run: Annotated[str | None, typer.Option(
        "--rec-run", help="Recommendation run (default: the newest).")] = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """One customer's recommendations, with the reason for each."""
    from custseg.recommend.runs import customer_recommendations

    with open_db(db, read_only=True) as store:
        recs = customer_recommendations(store, customer_id, rec_run)
    segment = recs["segment"].dropna()
    title = f"Recommendations for {customer_id}"
    if not segment.empty:
        title += f" (segment '{segment.iloc[0]}')"
    console.print(frame_table(recs[["rank", "product_id", "product_name", "category", "score", "reason"]], title))
    console.print(f"recommendation run {recs['run_id'].iloc[0]}", highlight=False)


@recommend_app.command("evaluate")
@handle_errors
def recommend_evaluate(
    split: Annotated[str, typer.Option(
        "--split", help="Fit on purchases before this day (YYYY-MM-DD), test on purchases from it on.")],
    n: NOption = 10,
    run: Annotated[str | None, typer.Option(
        "--run", help="Segmentation run, re-derived as of the split (default: RFM as of the split).")] = None,
    horizon_days: Annotated[int | None, typer.Option(
        "--horizon-days", help="Length of the test period in days (default: up to the last purchase).")] = None,
    seed: SeedOption = 0,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Hit rate and recall of custseg against global popularity on a time split, overall and per segment."""
    from custseg.recommend import evaluate

    with open_db(db, read_only=True) as store, console.status("evaluating"):
        result = evaluate(store, split, n=n, run_id=run, horizon_days=horizon_days, seed=seed)
    period = f"{result['split']} to {result['test_end']} (exclusive)" if result["test_end"] else \
        f"from {result['split']} on"
    summary = _percent(result["summary"], ("hit_rate", "recall")).rename(
        columns={"hit_rate": f"hit rate@{n}", "recall": f"recall@{n}"})
    console.print(frame_table(summary, f"Test period {period}; segments: {result['segments']}"))
    console.print(f"custseg hit rate@{n} {result['hit_rate']:.1%} vs popularity {result['popularity_hit_rate']:.1%} "
                  f"({result['hit_rate_lift']:+.1%} relative); recall@{n} {result['recall']:.1%} vs "
                  f"{result['popularity_recall']:.1%}", highlight=False)
    if result["customers_without_target"]:
        console.print(f"{result['customers_without_target']:,} test customers only re-bought products the "
                      "exclusion rule leaves out; not counted", highlight=False)
    seg = _percent(result["by_segment"], ("hit_rate", "popularity_hit_rate", "recall", "popularity_recall"))
    seg = seg.rename(columns={
        "hit_rate": f"hit rate@{n}", "popularity_hit_rate": f"popularity hit rate@{n}",
        "recall": f"recall@{n}", "popularity_recall": f"popularity recall@{n}"})
    console.print(frame_table(seg, "Per segment"))


def _percent(frame: pd.DataFrame, columns) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        out[col] = out[col].map(lambda v: f"{v:.1%}")
    return out


def _reason_counts(recs: pd.DataFrame) -> pd.DataFrame:
    kind = recs["reason"].fillna("").str.replace(r"^popular in your segment.*", "popular in your segment", regex=True)
    kind = kind.str.replace(r"^bought together with .*", "bought together with ...", regex=True)
    out = kind.value_counts().rename_axis("reason").reset_index(name="recommendations")
    out["share"] = out["recommendations"] / max(len(recs), 1)
    return out


def _display(recs: pd.DataFrame) -> pd.DataFrame:
    return recs[["customer_id", "segment", "rank", "product_name", "category", "score", "reason"]]
