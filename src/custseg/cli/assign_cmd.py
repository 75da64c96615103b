"""Cold-start segment assignment: `custseg assign train|evaluate|predict|models`."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, handle_errors, open_db
from custseg.cli.render import frame_table, kv_table

assign_app = typer.Typer(help="Cold-start segments: predict a new visitor's segment from a few stated answers.",
                         no_args_is_help=True)

RunOption = Annotated[str | None, typer.Option(
    "--run", help="Segmentation run to learn (default: the newest cluster run, else the newest RFM run).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the answer masking, the solver and the split.")]


def register(app: typer.Typer) -> None:
    app.add_typer(assign_app, name="assign")


@assign_app.command("train")
@handle_errors
def assign_train(db: DbOption = DEFAULT_DB_PATH, run: RunOption = None, seed: SeedOption = 0) -> None:
    """Fit the cold-start classifier on the run's members and keep it in the store."""
    from custseg.assign import train

    with open_db(db) as store, console.status("training the cold-start classifier"):
        model, model_id = train(store, run, seed=seed)
    console.print(kv_table({"run": model.run_id_, "method": model.method_, "customers": f"{model.n_customers_:,}",
                            "declared interests": f"{model.n_respondents_:,} customers",
                            "answers used": ", ".join(model.answers_ + ["interests", "budget"]),
                            **{f"left out: {c}": why["reason"] for c, why in model.dropped_.items()},
                            "segments": f"{len(model.classes_)}"}, "cold-start model"))
    shares = pd.DataFrame({"segment": model.shares_.index, "share": model.shares_.to_numpy()})
    console.print(frame_table(shares, "segments learnt"))
    console.print(f"saved model {model_id}", highlight=False)


@assign_app.command("evaluate")
@handle_errors
def assign_evaluate(
    db: DbOption = DEFAULT_DB_PATH,
    run: RunOption = None,
    test_size: Annotated[float, typer.Option("--test-size", help="Share of the customers held out.")] = 0.25,
    seed: SeedOption = 0,
) -> None:
    """Fit on a stratified share of the run's members, score the held-out rest against the majority baseline."""
    from custseg.assign import evaluate

    with open_db(db, read_only=True) as store, console.status("evaluating"):
        ev = evaluate(store, run, test_size=test_size, seed=seed)
    console.print(f"run {ev.run_id} ({ev.method}): {ev.n_train:,} customers to train, {ev.n_test:,} held out "
                  f"(seed {ev.seed})", highlight=False)
    metrics = ev.metrics.assign(model=ev.metrics["model"].map(lambda v: f"{v:.3f}"),
                                baseline=ev.metrics["baseline"].map(lambda v: f"{v:.3f}"))
    console.print(frame_table(metrics, "held-out quality (baseline: always the largest segment)"))
    console.print(frame_table(ev.recall.assign(recall=ev.recall["recall"].map(lambda v: f"{v:.3f}"),
                                               baseline=ev.recall["baseline"].map(lambda v: f"{v:.0f}")),
                              "recall per segment"))
    by = ev.by_answers.copy()
    for col in ("accuracy", "top-2 accuracy", "log loss"):
        by[col] = by[col].map(lambda v: f"{v:.3f}")
    console.print(frame_table(by, "held-out accuracy by the answers given"))
    if not ev.respondents.empty:
        resp = ev.respondents.assign(accuracy=ev.respondents["accuracy"].map(lambda v: f"{v:.3f}"),
                                     **{"log loss": ev.respondents["log loss"].map(lambda v: f"{v:.3f}")})
        console.print(frame_table(resp, "held-out customers who declared interests"))
    for note in ev.notes:
        console.print(f"note: {note}", highlight=False)


@assign_app.command("predict")
@handle_errors
def assign_predict(
    db: DbOption = DEFAULT_DB_PATH,
    run: Annotated[str | None, typer.Option("--run", help="Use the newest model of this run.")] = None,
    age: Annotated[int | None, typer.Option("--age", help="Age in years.")] = None,
    age_band: Annotated[str | None, typer.Option("--age-band", help="Age band: 18-24, 25-34, ..., 65+.")] = None,
    gender: Annotated[str | None, typer.Option("--gender", help="female, male, other or unknown.")] = None,
    country: Annotated[str | None, typer.Option("--country", help="Country code or name.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region.")] = None,
    city: Annotated[str | None, typer.Option("--city", help="City (gives the region).")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Acquisition channel.")] = None,
    email_consent: Annotated[bool | None, typer.Option(
        "--email-consent/--no-email-consent", help="Agrees to marketing email.")] = None,
    interest: Annotated[list[str] | None, typer.Option(
        "--interest", help="A category of interest (repeatable).")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="budget, mid or premium.")] = None,
    products: Annotated[int, typer.Option("--products", help="Products to show.")] = 5,
) -> None:
    """Predict one visitor's segment with the kept model: confidence, alternatives, products, play."""
    from custseg.assign import assign_visitor, load_model

    answers = {"age": age, "age_band": age_band, "gender": gender, "country": country, "region": region,
               "city": city, "acquisition_channel": channel, "email_consent": email_consent,
               "interests": list(interest) if interest else None, "budget": budget}
    with open_db(db, read_only=True) as store:
        model = load_model(store.con, run_id=run)
    out = assign_visitor(model, {k: v for k, v in answers.items() if v is not None}, n_products=products)
    console.print(kv_table({"segment": out["segment"], "confidence": f"{out['confidence']:.1%}",
                            **{f"alternative {i + 1}": f"{a['segment']} ({a['probability']:.1%})"
                               for i, a in enumerate(out["alternatives"])},
                            "play": out["play"]["play"], "actions": "; ".join(out["play"]["actions"]),
                            "model": out["model_id"]}, "cold-start assignment"))
    if out["products"]:
        console.print(frame_table(pd.DataFrame(out["products"]), "the segment's top products"))
    for note in out["notes"]:
        console.print(f"note: {note}", highlight=False)


@assign_app.command("models")
@handle_errors
def assign_models(db: DbOption = DEFAULT_DB_PATH) -> None:
    """List the kept cold-start models, newest first."""
    from custseg.assign import list_models

    with open_db(db, read_only=True) as store:
        df = list_models(store.con)
    if df.empty:
        console.print("no cold-start models yet; run `custseg assign train`")
        return
    console.print(frame_table(df, "cold-start models"))
