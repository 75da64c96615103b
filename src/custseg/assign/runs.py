"""Train, keep, load and evaluate cold-start models; assign a visitor with the playbook's play.

Models are kept in the store's ``assign_models`` table (schema version 6): the
fitted :class:`~custseg.assign.model.SegmentAssigner` pickled, with the run it
learnt and a summary. A pickle runs code when loaded: only load models from a
store you trust (the same trust as the store's data).
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.assign.data import (
    CATEGORICAL,
    _has,
    behaviour_counts,
    catalogue,
    choose_run,
    product_counts,
    training_table,
)
from custseg.assign.model import SegmentAssigner

FORMAT = "pickle:SegmentAssigner:1"


def fit_assigner(store, run_id: str | None = None, *, seed: int = 0, **params) -> SegmentAssigner:
    """Fit a :class:`SegmentAssigner` on every member of ``run_id`` (default: the newest cluster run,
    else the newest RFM run). Extra keyword arguments are the model's parameters."""
    run = choose_run(store.con, run_id)
    table = training_table(store, run)
    model = SegmentAssigner(seed=seed, **params).fit(
        table, behaviour_counts(store, run["as_of"]), product_counts(store, run["as_of"]), catalogue(store))
    model.run_id_, model.method_, model.as_of_ = run["run_id"], run["method"], run["as_of"]
    return model


def new_model_id() -> str:
    """``assign-YYYYMMDD-HHMMSS-xxxxxx``: sortable by time, unique."""
    return f"assign-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_model(store, model: SegmentAssigner) -> str:
    """Keep a fitted model in ``assign_models``; return its id."""
    import sklearn

    model._check_fitted()
    model_id = new_model_id()
    summary = {"format": FORMAT, "sklearn": sklearn.__version__, "params": model.get_params(),
               "answers": list(model.answers_) + ["interests", "budget"], "left_out": model.dropped_,
               "respondents": model.n_respondents_,
               "segments": {str(s): float(v) for s, v in model.shares_.items()}}
    with store.transaction() as con:
        con.execute(
            "INSERT INTO assign_models (model_id, run_id, method, as_of, created_at, n_customers, seed, summary, "
            "model) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?)",
            [model_id, model.run_id_, model.method_, model.as_of_, int(model.n_customers_), int(model.seed),
             json.dumps(summary), pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)])
    return model_id


def train(store, run_id: str | None = None, *, seed: int = 0, **params) -> tuple[SegmentAssigner, str]:
    """Fit on ``run_id`` (default as :func:`fit_assigner`) and save; return the model and its id."""
    model = fit_assigner(store, run_id, seed=seed, **params)
    return model, save_model(store, model)


def list_models(con) -> pd.DataFrame:
    """``model_id, run_id, method, as_of, created_at, n_customers, seed`` of the kept models, newest first."""
    if not _has(con, "assign_models"):
        return pd.DataFrame(columns=["model_id", "run_id", "method", "as_of", "created_at", "n_customers", "seed"])
    return con.execute("SELECT model_id, run_id, method, as_of, created_at, n_customers, seed FROM assign_models "
                       "ORDER BY created_at DESC, model_id DESC").df()


class NoModelError(LookupError):
    """The store keeps no cold-start model (for the run asked)."""


def load_model(con, model_id: str | None = None, run_id: str | None = None) -> SegmentAssigner:
    """A kept model: ``model_id``, else the newest for ``run_id``, else the newest. ``con`` is a DuckDB
    connection or cursor (the service passes a read cursor).

    Raises
    ------
    NoModelError
        No such model; the message says how to train one.
    """
    where, params = [], []
    if model_id is not None:
        where.append("model_id = ?")
        params.append(model_id)
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    rows = [] if not _has(con, "assign_models") else con.execute(
        "SELECT model_id, model FROM assign_models" + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY created_at DESC, model_id DESC LIMIT 1", params).fetchall()
    if not rows:
        what = (f"model {model_id!r}" if model_id is not None else
                f"cold-start model for run {run_id!r}" if run_id is not None else "cold-start model")
        raise NoModelError(f"the store has no {what}; train one with `custseg assign train --db STORE"
                           + (f" --run {run_id}" if run_id and model_id is None else "") + "`")
    model = pickle.loads(rows[0][1])
    model.model_id_ = rows[0][0]
    return model


def play_dict(play, segment: str) -> dict:
    """A playbook's :class:`~custseg.targeting.playbook.Play` as the API shows it."""
    return {"segment": segment, "play": play.play, "objective": play.objective, "actions": list(play.actions),
            "channel": play.channel, "offer": play.offer, "cadence": play.cadence,
            "service_level": play.service_level, "kpi": play.kpi}


def assign_visitor(model: SegmentAssigner, answers: dict, *, playbook=None, n_alternatives: int = 2,
                   n_products: int = 5) -> dict:
    """A visitor's segment, confidence, alternatives, the segment's products and the playbook's play.

    ``playbook`` defaults to the built-in one (:func:`custseg.targeting.load_playbook`).
    """
    if playbook is None:
        from custseg.targeting.playbook import load_playbook

        playbook = load_playbook()
    out = model.assign(answers, n_alternatives=n_alternatives, n_products=n_products)
    out["play"] = play_dict(playbook.for_segment(out["segment"], model.method_), out["segment"])
    out.update(model_id=getattr(model, "model_id_", None), run_id=model.run_id_, method=model.method_)
    return out


# -- evaluation ------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """Held-out quality of the cold-start classifier against the majority baseline.

    Attributes
    ----------
    metrics : DataFrame
        ``metric, model, baseline``: accuracy, top-2 accuracy, balanced accuracy, macro F1, log loss,
        expected calibration error. The baseline always predicts the largest training segment with the
        training segment shares as probabilities (its top-2 is the two largest segments).
    recall : DataFrame
        ``segment, customers (held out), recall, baseline``.
    respondents : DataFrame
        Held-out customers who declared interests: accuracy and log loss without and with them.
    by_answers : DataFrame
        ``answers, accuracy, top-2 accuracy, log loss`` of the held-out customers when they state all
        their declared answers, and each answer alone (what a one-question quiz gets).
    run_id, method : str
    n_train, n_test : int
    test_size : float
    seed : int
    """

    metrics: pd.DataFrame
    recall: pd.DataFrame
    respondents: pd.DataFrame
    by_answers: pd.DataFrame
    run_id: str
    method: str
    n_train: int
    n_test: int
    test_size: float
    seed: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "method": self.method, "n_train": self.n_train, "n_test": self.n_test,
                "test_size": self.test_size, "seed": self.seed,
                "metrics": self.metrics.to_dict(orient="records"), "recall": self.recall.to_dict(orient="records"),
                "respondents": self.respondents.to_dict(orient="records"),
                "by_answers": self.by_answers.to_dict(orient="records"), "notes": list(self.notes)}


def _scores(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict:
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    order = np.argsort(-proba, axis=1, kind="stable")
    pred = classes[order[:, 0]]
    top2 = (classes[order[:, 0]] == y) | (classes[order[:, 1]] == y)
    conf = proba[np.arange(len(y)), order[:, 0]]
    hit = (pred == y).astype(float)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(hit[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    with warnings.catch_warnings():  # a subset may lack some segments: balanced accuracy warns
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y, pred)
    return {"accuracy": accuracy_score(y, pred), "top-2 accuracy": float(top2.mean()),
            "balanced accuracy": balanced,
            "macro F1": f1_score(y, pred, average="macro", labels=classes, zero_division=0),
            "log loss": log_loss(y, np.clip(proba, 1e-15, 1), labels=classes),
            "calibration error (ECE)": float(ece)}


def evaluate(store, run_id: str | None = None, *, test_size: float = 0.25, seed: int = 0,
             **params) -> Evaluation:
    """Fit on a stratified share of the run's members and score the rest (seeded).

    The held-out customers answer what the store declares about them (:data:`CATEGORICAL` and their
    survey interests, when they have some); interest and budget likelihoods are learnt from the
    training customers only. Budget is not scored: no customer declared one.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test size must be between 0 and 1 (a share of the customers), got {test_size}")
    run = choose_run(store.con, run_id)
    table = training_table(store, run)
    counts = table["segment"].value_counts()
    small = counts[counts < 2]
    if len(small):
        raise ValueError(f"segments with fewer than 2 customers cannot be split: {', '.join(map(str, small.index))}")
    n_test = int(np.ceil(len(table) * test_size))
    if n_test < len(counts) or len(table) - n_test < len(counts):
        raise ValueError(f"{len(table)} customers are too few for a test size of {test_size} "
                         f"with {len(counts)} segments")
    train_t, test_t = train_test_split(table, test_size=test_size, stratify=table["segment"], random_state=seed)
    model = SegmentAssigner(seed=seed, **params).fit(
        train_t, behaviour_counts(store, run["as_of"]), product_counts(store, run["as_of"]), catalogue(store))
    classes = model.classes_
    y = test_t["segment"].to_numpy()
    answers = test_t[list(CATEGORICAL) + ["interests"]].copy()
    proba = model.predict_proba(answers)
    prior = model.shares_.reindex(classes).to_numpy()
    base = np.tile(prior, (len(y), 1))
    m, b = _scores(y, proba, classes), _scores(y, base, classes)
    metrics = pd.DataFrame({"metric": list(m), "model": list(m.values()), "baseline": [b[k] for k in m]})
    pred = classes[np.argmax(proba, axis=1)]
    largest = classes[np.argmax(prior)]
    recall = pd.DataFrame([{"segment": s, "customers": int((y == s).sum()),
                            "recall": float((pred[y == s] == s).mean()),
                            "baseline": 1.0 if s == largest else 0.0} for s in classes])
    single = []
    for label, cols in [("all declared answers", list(CATEGORICAL) + ["interests"])] + [
            (f"{c} only", [c]) for c in CATEGORICAL]:
        s = _scores(y, model.predict_proba(answers[cols]), classes)
        single.append({"answers": label, "accuracy": s["accuracy"], "top-2 accuracy": s["top-2 accuracy"],
                       "log loss": s["log loss"]})
    stated = (test_t["interests"].map(len) > 0).to_numpy()
    rows = []
    if stated.any():
        without = model.predict_proba(answers[stated].drop(columns="interests"))
        ys = y[stated]
        for label, p in (("without their interests", without), ("with their interests", proba[stated])):
            s = _scores(ys, p, classes)
            rows.append({"answers": label, "customers": int(stated.sum()), "accuracy": s["accuracy"],
                         "log loss": s["log loss"]})
    notes = [f"{col} left out: {why['reason']}" for col, why in model.dropped_.items()]
    if model.n_respondents_ < 50:
        notes.append(f"only {model.n_respondents_} training customers declared interests: interest likelihoods "
                     "lean on what segment members bought and viewed")
    return Evaluation(metrics=metrics, recall=recall, respondents=pd.DataFrame(rows),
                      by_answers=pd.DataFrame(single), run_id=run["run_id"],
                      method=run["method"], n_train=len(train_t), n_test=len(test_t), test_size=test_size,
                      seed=seed, notes=notes)
