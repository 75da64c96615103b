"""The cold-start classifier: a visitor's stated answers -> the most likely segment.

Two parts, combined by Bayes' rule:

* a multinomial logistic regression on the one-hot encoded categorical answers
  (age band, gender, country, region, acquisition channel, email consent) gives
  ``P(segment | answers)``. Every answer may be missing: the training table is
  augmented with ``mask_copies`` copies of each customer in which each answer is
  hidden (set to ``"(none)"``) with probability ``mask_share`` (seeded), so the
  model has learnt what any subset of answers says. Levels stated by fewer than
  ``min_frequency`` customers are pooled into ``"(other)"``, and an answer whose
  levels are not associated with the segments (chi-square test of independence,
  p >= ``max_p_value``) is left out, so that it adds no noise;
* stated interests (categories) and budget (price tier) multiply it by their
  likelihood in each segment, ``P(category | segment)`` and ``P(tier | segment)``,
  and the result is renormalised. ``P(category | segment)`` is estimated from the
  segment's declared survey interests, shrunk towards the category mix of what
  the segment's members bought and viewed (``interest_prior`` pseudo-mentions),
  which is itself shrunk towards the whole run's mix (``behaviour_prior``
  pseudo-lines); ``P(tier | segment)`` from the price tiers of what they bought
  and viewed, the same way. The store has no declared budget, so this is the
  assumption that a visitor's stated budget follows the tiers that customers of
  their segment actually shop in.

Logistic regression fitted by log loss gives calibrated probabilities on the
data it was fitted on; ``evaluate`` reports the held-out log loss and the
expected calibration error as the check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custseg.assign.data import CATEGORICAL, MISSING, parse_interests
from custseg.cleaning.normalize import COUNTRY_ALIASES, GENDER_ALIASES
from custseg.features.build import AGE_BANDS

#: The level of answers stated by fewer than ``min_frequency`` customers.
OTHER = "(other)"
AGE_BAND_LABELS: tuple[str, ...] = tuple(label for _, label in AGE_BANDS)
BUDGETS: tuple[str, ...] = ("budget", "mid", "premium")
#: Below this share of buyers a segment's products are the ones its members viewed most.
MIN_BUYER_SHARE = 0.1


def age_band(age: int) -> str:
    """The feature's age band of an age in years (18 and over)."""
    if age < AGE_BANDS[0][0]:
        raise ValueError(f"age {age} is below {AGE_BANDS[0][0]}: the segments only know adult customers")
    label = AGE_BAND_LABELS[0]
    for lo, name in AGE_BANDS:
        if age >= lo:
            label = name
    return label


class SegmentAssigner:
    """Predict a visitor's segment from a few stated answers.

    Parameters
    ----------
    C : float, default=0.1
        Inverse L2 regularisation of the logistic regression (0.1 had the lowest held-out log loss
        among 0.1, 0.3 and 1 on the 3,000- and 10,000-customer demo stores, seeds 0-2).
    mask_share : float, default=0.3
        Chance that each answer is hidden in an augmented copy of a customer.
    mask_copies : int, default=3
        Augmented copies per customer (besides the customer as stated).
    interest_prior : float, default=20
        Pseudo-mentions pulling a segment's declared interests towards its bought-and-viewed category mix.
    behaviour_prior : float, default=50
        Pseudo-lines pulling a segment's category and tier mix towards the whole run's.
    n_products : int, default=10
        Products kept per segment.
    min_frequency : int, default=30
        Answer levels stated by fewer training customers (a small region, a rare channel) are pooled
        into one ``"(other)"`` level, so that the model does not learn noise from a handful of customers.
    max_p_value : float, default=0.01
        An answer is used only if it is associated with the segments: a chi-square test of
        independence between its levels and the segments (customers who stated it) must give a p-value
        below this. Others are left out (``dropped_``) and noted when a visitor states them: on the
        demo store, country and region are drawn independently of the personas and are left out.
    seed : int, default=0
        Seed of the masking (the solver, Newton-CG, is deterministic).

    Attributes
    ----------
    classes_ : ndarray of str
        The segments.
    classifier_ : sklearn Pipeline or None
        One-hot encoder and logistic regression on ``answers_`` (None when no answer is associated with
        the segments: the segment shares are then the prediction).
    shares_ : Series
        Share of the training customers in each segment.
    interest_likelihood_ : DataFrame, shape (n_segments, n_categories)
        ``P(category | segment)``.
    budget_likelihood_ : DataFrame, shape (n_segments, n_tiers)
        ``P(tier | segment)``.
    products_ : dict
        Segment -> list of products (``product_id, product_name, category, price_tier, share, lift,
        basis``): the products most of the segment's customers bought (``basis`` "bought"), or viewed
        ("viewed") when fewer than 10% of them bought anything; ties by lift, then product id.
    answers_ : list of str
        The categorical answers the classifier uses.
    dropped_ : dict
        Answer -> ``{"p_value", "reason"}`` for the answers left out.
    levels_ : dict
        Answer -> the levels stated by at least ``min_frequency`` customers.
    seen_ : dict
        Answer -> every level stated (a level never seen is treated as not stated, with a note).
    city_region_ : dict
        Lower-cased city -> its most common region among the customers.
    n_customers_ : int
    n_respondents_ : int
        Training customers with declared interests.
    """

    def __init__(self, C: float = 0.1, mask_share: float = 0.3, mask_copies: int = 3,
                 interest_prior: float = 20.0, behaviour_prior: float = 50.0, n_products: int = 10,
                 min_frequency: int = 30, max_p_value: float = 0.01, seed: int = 0):
        self.C = C
        self.max_p_value = max_p_value
        self.min_frequency = min_frequency
        self.mask_share = mask_share
        self.mask_copies = mask_copies
        self.interest_prior = interest_prior
        self.behaviour_prior = behaviour_prior
        self.n_products = n_products
        self.seed = seed

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("C", "mask_share", "mask_copies", "interest_prior",
                                              "behaviour_prior", "n_products", "min_frequency", "max_p_value",
                                              "seed")}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, table: pd.DataFrame, behaviour: pd.DataFrame | None = None,
            products: pd.DataFrame | None = None, catalogue: pd.DataFrame | None = None) -> SegmentAssigner:
        """Fit on a training table (:func:`custseg.assign.data.training_table`).

        ``behaviour`` (:func:`~custseg.assign.data.behaviour_counts`), ``products``
        (:func:`~custseg.assign.data.product_counts`) and ``catalogue`` may cover more customers than
        ``table``: only the table's customers are used.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        if not 0 <= self.mask_share < 1:
            raise ValueError(f"mask_share must be in [0, 1), got {self.mask_share}")
        if self.mask_copies < 0:
            raise ValueError(f"mask_copies must be >= 0, got {self.mask_copies}")
        y = table["segment"].astype(str).to_numpy()
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"need at least 2 segments to learn, the run has {len(classes)}")
        rng = np.random.default_rng(self.seed)
        raw = table[list(CATEGORICAL)].astype(str)
        self.seen_ = {c: set(raw[c]) - {MISSING} for c in CATEGORICAL}
        self.levels_, self.dropped_ = {}, {}
        X = pd.DataFrame(index=raw.index)
        for c in CATEGORICAL:
            n = raw.loc[raw[c] != MISSING, c].value_counts()
            self.levels_[c] = sorted(n.index[n >= self.min_frequency])
            X[c] = raw[c].where(raw[c].isin(self.levels_[c]) | (raw[c] == MISSING), OTHER)
            self._test_answer(c, X[c], y)
        self.answers_ = [c for c in CATEGORICAL if c not in self.dropped_]
        hide_all = rng.random((self.mask_copies, len(X), len(CATEGORICAL))) < self.mask_share
        X = X[self.answers_]
        parts, targets = [X], [y]
        for i in range(self.mask_copies):
            keep = [CATEGORICAL.index(c) for c in self.answers_]
            parts.append(X.mask(hide_all[i][:, keep], MISSING))
            targets.append(y)
        X_aug = pd.concat(parts, ignore_index=True)
        y_aug = np.concatenate(targets)
        self.classifier_ = make_pipeline(
            OneHotEncoder(handle_unknown="ignore"),
            LogisticRegression(C=self.C, solver="newton-cg", max_iter=1000),
        ).fit(X_aug, y_aug) if self.answers_ else None
        self.classes_ = classes
        self.shares_ = pd.Series(counts / counts.sum(), index=classes)
        self.n_customers_ = len(table)
        cities = (table[(table["city"] != MISSING) & (table["region"] != MISSING)]
                  if "city" in table and "region" in table else table.iloc[:0])
        self.city_region_ = ({} if cities.empty else
                             cities.groupby("city")["region"].agg(lambda s: s.value_counts().index[0]).to_dict())
        self._fit_likelihoods(table, behaviour)
        self._fit_products(table, products, catalogue)
        return self

    def _test_answer(self, col: str, values: pd.Series, y: np.ndarray) -> None:
        """Leave out an answer that is not associated with the segments (chi-square test of independence)."""
        from scipy.stats import chi2_contingency

        given = (values != MISSING).to_numpy()
        table = pd.crosstab(values[given], y[given])
        if table.shape[0] < 2 or table.shape[1] < 2:
            self.dropped_[col] = {"p_value": None, "reason": "fewer than 2 levels stated"}
            return
        p = float(chi2_contingency(table.to_numpy())[1])
        if not p < self.max_p_value:
            self.dropped_[col] = {"p_value": p, "reason": f"not associated with the segments (chi-square p = {p:.2g})"}

    def _segment_mix(self, table: pd.DataFrame, behaviour: pd.DataFrame | None, kind: str) -> pd.DataFrame:
        """``P(value | segment)`` of bought and viewed lines, shrunk towards the run's mix."""
        if behaviour is None or behaviour.empty:
            return pd.DataFrame(index=self.classes_, dtype=float)
        b = behaviour[behaviour["kind"] == kind].merge(table[["customer_id", "segment"]], on="customer_id")
        counts = b.pivot_table(index="segment", columns="value", values="n", aggfunc="sum", fill_value=0)
        counts = counts.reindex(self.classes_, fill_value=0).astype(float)
        if counts.shape[1] == 0:
            return pd.DataFrame(index=self.classes_, dtype=float)
        overall = counts.sum(axis=0) / max(counts.to_numpy().sum(), 1.0)
        a = self.behaviour_prior
        return (counts + a * overall).div(counts.sum(axis=1) + a, axis=0)

    def _fit_likelihoods(self, table: pd.DataFrame, behaviour: pd.DataFrame | None) -> None:
        mix = self._segment_mix(table, behaviour, "category")
        declared = table[["segment", "interests"]].explode("interests").dropna()
        self.n_respondents_ = int((table["interests"].map(len) > 0).sum())
        cats = sorted(set(mix.columns) | set(declared["interests"]))
        if cats:
            mix = mix.reindex(columns=cats)
            # Categories never bought nor viewed: the declared mentions' overall share, else uniform.
            fill = (declared["interests"].value_counts(normalize=True).reindex(cats).fillna(0.0)
                    if not declared.empty else pd.Series(0.0, index=cats))
            fill = fill + 1.0 / len(cats)
            mix = mix.fillna(fill / fill.sum())
            mix = mix.div(mix.sum(axis=1), axis=0)
            mentions = (declared.groupby(["segment", "interests"]).size().unstack(fill_value=0)
                        .reindex(index=self.classes_, columns=cats, fill_value=0).astype(float))
            k = self.interest_prior
            lik = (mentions + k * mix).div(mentions.sum(axis=1) + k, axis=0)
        else:
            lik = pd.DataFrame(index=self.classes_, dtype=float)
        self.interest_likelihood_ = lik
        tiers = self._segment_mix(table, behaviour, "tier")
        self.budget_likelihood_ = tiers.reindex(columns=[t for t in BUDGETS if t in tiers.columns])

    def _fit_products(self, table: pd.DataFrame, products: pd.DataFrame | None,
                      catalogue: pd.DataFrame | None) -> None:
        self.products_ = {s: [] for s in self.classes_}
        if products is None or products.empty:
            return
        p = products.merge(table[["customer_id", "segment"]], on="customer_id")
        size = table["segment"].value_counts()
        n_all = len(table)
        info = (catalogue.set_index("product_id") if catalogue is not None and not catalogue.empty
                else pd.DataFrame(columns=["product_name", "category", "price_tier"]))
        buyers = p[p["bought"] > 0].groupby("segment")["customer_id"].nunique().reindex(self.classes_, fill_value=0)
        for basis in ("bought", "viewed"):
            overall = p.groupby("product_id")[basis].sum() / n_all
            per = p[p[basis] > 0].groupby(["segment", "product_id"]).size().rename("n").reset_index()
            for seg in self.classes_:
                if self.products_[seg]:
                    continue
                if basis == "bought" and buyers[seg] < MIN_BUYER_SHARE * size[seg]:
                    continue  # a segment of non-buyers: what its members viewed
                mine = per[per["segment"] == seg]
                if mine.empty:
                    continue
                mine = mine.assign(share=mine["n"] / size[seg])
                mine = mine.assign(lift=mine["share"] / overall.reindex(mine["product_id"]).to_numpy())
                mine = mine.sort_values(["n", "lift", "product_id"], ascending=[False, False, True])
                rows = []
                for r in mine.head(self.n_products).itertuples(index=False):
                    known = r.product_id in info.index
                    rows.append({
                        "product_id": r.product_id,
                        "product_name": info.at[r.product_id, "product_name"] if known else None,
                        "category": info.at[r.product_id, "category"] if known else None,
                        "price_tier": info.at[r.product_id, "price_tier"] if known else None,
                        "share": float(r.share), "lift": float(r.lift), "basis": basis,
                    })
                self.products_[seg] = rows

    # -- answers ---------------------------------------------------------------------------
    def normalise(self, answers: dict) -> tuple[dict, list[str]]:
        """Answers as the model's levels, and notes on what was left out and why.

        Accepted keys: ``age`` (years) or ``age_band``, ``gender``, ``country``, ``region``, ``city``
        (gives the region when ``region`` is not stated), ``acquisition_channel``, ``email_consent``
        (bool), ``interests`` (list or comma-separated), ``budget`` (budget, mid, premium). Missing or
        None is not stated.
        """
        self._check_fitted()
        unknown = set(answers) - {"age", "age_band", "gender", "country", "region", "city",
                                  "acquisition_channel", "email_consent", "interests", "budget"}
        if unknown:
            raise ValueError(f"unknown answers {sorted(unknown)}")
        notes: list[str] = []
        out: dict = {}

        def given(key):
            v = answers.get(key)
            return None if v is None or (isinstance(v, str) and not v.strip()) else v

        if given("age") is not None:
            band = age_band(int(answers["age"]))
            if given("age_band") is not None and str(answers["age_band"]).strip() != band:
                raise ValueError(f"age {answers['age']} is not in age band {answers['age_band']!r}")
            out["age_band"] = band
        elif given("age_band") is not None:
            band = str(answers["age_band"]).strip()
            if band not in AGE_BAND_LABELS:
                raise ValueError(f"unknown age band {band!r}; one of {', '.join(AGE_BAND_LABELS)}")
            out["age_band"] = band
        if given("gender") is not None:
            key = str(answers["gender"]).strip().upper().replace(".", "")
            out["gender"] = GENDER_ALIASES.get(key, "unknown")
        if given("country") is not None:
            key = str(answers["country"]).strip().upper()
            out["country"] = COUNTRY_ALIASES.get(key, key)
        if given("region") is not None:
            out["region"] = str(answers["region"]).strip().lower()
        elif given("city") is not None:
            city = str(answers["city"]).strip().lower()
            if city in self.city_region_:
                out["region"] = self.city_region_[city]
            else:
                notes.append(f"city {answers['city']!r} is not known: its region is not used")
        if given("acquisition_channel") is not None:
            out["acquisition_channel"] = str(answers["acquisition_channel"]).strip()
        if answers.get("email_consent") is not None:
            out["email_consent"] = "yes" if bool(answers["email_consent"]) else "no"
        for col in CATEGORICAL:
            if col not in out:
                continue
            if col in self.dropped_:
                notes.append(f"{col}: {self.dropped_[col]['reason']} in this store: not used")
                del out[col]
            elif out[col] not in self.seen_[col]:
                notes.append(f"{col} {out[col]!r} was not seen among the customers: not used")
                del out[col]
        if given("interests") is not None:
            interests = parse_interests(answers["interests"])
            known = [i for i in interests if i in self.interest_likelihood_.columns]
            left = [i for i in interests if i not in self.interest_likelihood_.columns]
            if left:
                notes.append(f"interests not known as categories, not used: {', '.join(left)}")
            if known:
                out["interests"] = tuple(known)
        if given("budget") is not None:
            budget = str(answers["budget"]).strip().lower()
            if budget not in BUDGETS:
                raise ValueError(f"unknown budget {answers['budget']!r}; one of {', '.join(BUDGETS)}")
            if budget in self.budget_likelihood_.columns:
                out["budget"] = budget
            else:
                notes.append(f"budget {budget!r}: the store has no products in that price tier, not used")
        return out, notes

    # -- prediction ------------------------------------------------------------------------
    def predict_proba(self, answers: list[dict] | pd.DataFrame) -> np.ndarray:
        """``P(segment | answers)`` per visitor (columns follow ``classes_``).

        A frame or a list of dicts with the normalised answers (:meth:`normalise`): the
        :data:`CATEGORICAL` columns (missing: None or ``"(none)"``), ``interests`` (tuples) and
        ``budget``.
        """
        self._check_fitted()
        frame = pd.DataFrame(list(answers)) if not isinstance(answers, pd.DataFrame) else answers
        if self.classifier_ is None:
            logp = np.tile(np.log(self.shares_.reindex(self.classes_).to_numpy()), (len(frame), 1))
        else:
            X = pd.DataFrame(index=range(len(frame)))
            for col in self.answers_:
                vals = frame[col] if col in frame else pd.Series([None] * len(frame))
                X[col] = [self._level(col, v) for v in vals]
            proba = self.classifier_.predict_proba(X)
            logp = np.log(np.clip(proba, 1e-12, None))
        if "interests" in frame:
            lik = np.log(self.interest_likelihood_.reindex(self.classes_)) if not self.interest_likelihood_.empty \
                else None
            for i, items in enumerate(frame["interests"]):
                if lik is None or items is None or (isinstance(items, float) and items != items):
                    continue
                for item in items:
                    if item in lik.columns:
                        logp[i] += lik[item].to_numpy()
        if "budget" in frame and not self.budget_likelihood_.empty:
            lik = np.log(self.budget_likelihood_.reindex(self.classes_))
            for i, tier in enumerate(frame["budget"]):
                if isinstance(tier, str) and tier in lik.columns:
                    logp[i] += lik[tier].to_numpy()
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def _level(self, col: str, value) -> str:
        if value is None or value != value or str(value) == MISSING:
            return MISSING
        value = str(value)
        if value in self.levels_[col]:
            return value
        return OTHER if value in self.seen_[col] else MISSING

    def predict(self, answers: list[dict] | pd.DataFrame) -> np.ndarray:
        """The most likely segment per visitor."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(answers), axis=1)]

    def assign(self, answers: dict, *, n_alternatives: int = 2, n_products: int = 5) -> dict:
        """One visitor: ``segment``, ``confidence``, ``alternatives``, ``products``, ``answers_used``,
        ``notes`` (answers left out and why)."""
        clean, notes = self.normalise(answers)
        p = self.predict_proba([clean])[0]
        order = np.lexsort((self.classes_, -p))
        best = self.classes_[order[0]]
        if not clean:
            notes.append("no usable answer: the segment is the largest one")
        return {
            "segment": str(best),
            "confidence": float(p[order[0]]),
            "alternatives": [{"segment": str(self.classes_[j]), "probability": float(p[j])}
                             for j in order[1:1 + n_alternatives]],
            "products": list(self.products_.get(best, []))[:n_products],
            "answers_used": {k: (list(v) if isinstance(v, tuple) else v) for k, v in clean.items()},
            "notes": notes,
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_"):
            raise RuntimeError("this SegmentAssigner is not fitted yet; call fit() first")
