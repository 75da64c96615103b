"""Cluster segments: `custseg segment cluster`."""

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
from custseg.cli.render import frame_table


def register(app: typer.Typer) -> None:
    from custseg.cli.store_cmd import segment_app

    segment_app.command("cluster")(segment_cluster)


@handle_errors
def segment_cluster(
    db: DbOption = DEFAULT_DB_PATH,
    method: Annotated[str, typer.Option(
        "--method", help="kmeans, gmm, agglomerative, hdbscan or kprototypes.")] = "kmeans",
    k: Annotated[int | None, typer.Option(
        "--k", help="Number of clusters (default: chosen over --k-min..--k-max).")] = None,
    k_min: Annotated[int, typer.Option("--k-min", help="Smallest k tried.")] = 2,
    k_max: Annotated[int, typer.Option("--k-max", help="Largest k tried.")] = 10,
    features: Annotated[str | None, typer.Option(
        "--features", help="Comma-separated feature columns (text columns are categorical).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    sample_size: Annotated[int, typer.Option(
        "--sample-size", help="Customers the model is fitted on (a seeded sample).")] = 50_000,
    pca: Annotated[float | None, typer.Option(
        "--pca", help="PCA components (e.g. 3) or share of variance (e.g. 0.9).")] = None,
    rule_depth: Annotated[int, typer.Option("--rule-depth", help="Depth of the rule tree.")] = 4,
    refits: Annotated[int, typer.Option(
        "--refits", help="Reseeded bootstrap refits for the stability report (0: skip).")] = 5,
    save_rules: Annotated[Path | None, typer.Option(
        "--save-rules", help="Write the clusters' rules as a segment set (YAML) to this file.")] = None,
) -> None:
    """Cluster customers on their features, name the clusters, write a rule for each; record the run."""
    from custseg.segmenters.cluster import (
        ClusterSegmenter,
        cluster_sizes,
        run_cluster,
        stored_features,
    )

    if save_rules is not None and not save_rules.parent.exists():
        raise ValueError(f"folder {save_rules.parent} does not exist")
    n_pca = None if pca is None else (int(pca) if float(pca).is_integer() else float(pca))
    segmenter = ClusterSegmenter(method=method, k=k, k_range=(k_min, k_max), features=features, seed=seed,
                                 sample_size=sample_size, pca=n_pca, rule_depth=rule_depth, n_refits=refits)
    with open_db(db) as store, console.status(f"cluster analysis ({method})"):
        feats = stored_features(store)
        run_id = run_cluster(store, segmenter, features=feats)
        sizes = cluster_sizes(store, run_id)
    _show(segmenter, sizes, run_id)
    if save_rules is not None:
        save_rules.write_text(segmenter.explanation_.yaml(f"Clusters ({method}, k={segmenter.k_})"))
        console.print(f"wrote the rules as a segment set to {save_rules}")


def _number(value, column: str) -> str:
    if value is None or pd.isna(value):
        return ""
    if column == "k":
        return str(int(value))
    if column in ("calinski_harabasz", "bic"):
        return f"{value:,.1f}"
    return f"{value:.3f}" if column != "mean_rank" else f"{value:.2f}"


def _show(segmenter, sizes: pd.DataFrame, run_id: str) -> None:
    scores = segmenter.k_scores_.copy()
    for col in scores.columns:  # readable digits; k as a whole number
        scores[col] = scores[col].map(lambda v, c=col: _number(v, c))
    scores = scores.rename(columns={"calinski_harabasz": "Calinski-Harabasz", "davies_bouldin": "Davies-Bouldin",
                                    "bic": "BIC", "mean_rank": "mean rank"})
    console.print(frame_table(scores, "Choosing k"))
    console.print(f"chosen {segmenter.k_reason_}", highlight=False)
    table = sizes.rename(columns={"precision": "rule precision", "recall": "rule recall"})
    table["rule"] = table["rule"].fillna("(no rule at this depth)")
    console.print(frame_table(table, f"Clusters of run {run_id} ({segmenter.method}, k={segmenter.k_})"))
    exp = segmenter.explanation_
    console.print(f"rules (depth {exp.depth}) put {exp.fidelity:.1%} of the sample in the model's cluster "
                  "(fidelity)", highlight=False)
    st = segmenter.stability_
    if st:
        console.print(f"stability: adjusted Rand index of {st['n_refits']} reseeded bootstrap refits "
                      f"mean {st['ari_mean']:.3f}, min {st['ari_min']:.3f}", highlight=False)
    console.print(f"recorded run {run_id}", highlight=False)
