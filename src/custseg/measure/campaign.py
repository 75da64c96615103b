"""Campaign analysis: lift per segment with confidence intervals, Holm p-values and a DiD.

:func:`analyze_campaign` reads a campaign's arms and outcomes from the store
(:mod:`custseg.measure.outcomes`) and hands them to :func:`analyze_frame`,
which does every computation on one row per customer. Simulated campaigns
(:mod:`custseg.measure.simulate`) go through the same :func:`analyze_frame`.

Definitions (docs/measure.md): conversion = at least one completed order in
the window; revenue per recipient = window revenue / customers of the arm
(non-buyers count as 0); AOV = window revenue / completed window orders; open
and click rates = customers of the treatment arm with an open (click) of the
campaign / customers with a ``sent`` event (the control gets no email);
retention = share of the arm's converters who order again in the follow-up;
follow-up rate = share of the arm ordering in the follow-up. Lifts are
treatment minus control; p-values are adjusted with Holm's method across the
segments (the overall row is a single test and is not adjusted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.measure import stats
from custseg.measure._groups import Groups
from custseg.measure.outcomes import (
    DEFAULT_FOLLOWUP_DAYS,
    OPTIONAL_COLUMNS,
    OUTCOME_COLUMNS,
    CampaignWindow,
    as_date,
    campaign_info,
    campaign_outcomes,
    campaign_window,
)
from custseg.profiles.base import NOT_IN_RUN, frame_records

REVENUE_CI = ("welch", "bootstrap")


@dataclass
class CampaignAnalysis:
    """The measured effect of a campaign, overall and per segment.

    Every frame has one row per segment, the overall row ``(all customers)``
    first, then the segments largest first.

    Attributes
    ----------
    conversion : DataFrame
        ``segment, n_treatment, n_control, converted_treatment, converted_control,
        rate_treatment, rate_treatment_low, rate_treatment_high, rate_control,
        rate_control_low, rate_control_high`` (Wilson), ``lift, lift_low,
        lift_high`` (Newcombe), ``relative_lift, relative_lift_low,
        relative_lift_high`` (Katz), ``p_value`` (pooled z-test), ``p_holm``,
        ``significant`` and ``verdict``.
    revenue : DataFrame
        ``revenue_treatment, revenue_control`` (totals), ``revenue_per_recipient_*``,
        ``orders_*``, ``aov_*``, ``lift, lift_low, lift_high, relative_lift, ...,
        p_value`` (Welch), ``p_holm``, ``incremental_revenue`` (lift times the
        treated customers) with its interval, ``method``.
    engagement : DataFrame
        Treatment arm only: ``recipients, sent, bounced, opened, clicked,
        unsubscribed, open_rate, click_rate, click_to_open_rate, unsubscribe_rate``.
    retention : DataFrame
        ``retained_*`` (converted and ordered again in the follow-up),
        ``retention_rate_*`` (retained / converted), ``followup_rate_*`` (ordered in
        the follow-up / customers) and the follow-up lift with its Newcombe interval.
    did : DataFrame
        Difference in differences of conversion: ``pre_rate_*, window_rate_*,
        change_treatment, change_control, did, did_low, did_high`` (percentile
        bootstrap over customers).
    outcomes : DataFrame
        One row per customer (the input of :func:`analyze_frame`).
    notes : list of str
        Caveats worth showing with the numbers.
    """

    conversion: pd.DataFrame
    revenue: pd.DataFrame
    engagement: pd.DataFrame
    retention: pd.DataFrame
    did: pd.DataFrame
    outcomes: pd.DataFrame = field(repr=False)
    alpha: float = 0.05
    seed: int = 0
    revenue_ci: str = "welch"
    n_resamples: int = 2000
    notes: list[str] = field(default_factory=list)
    campaign: dict = field(default_factory=dict)
    window: CampaignWindow | None = None
    segments_from: str = "none"

    @property
    def campaign_id(self) -> str | None:
        return self.campaign.get("campaign_id")

    @property
    def overall(self) -> pd.Series:
        """The overall conversion row."""
        return self.conversion.iloc[0]

    @property
    def table(self) -> pd.DataFrame:
        """One summary row per segment (overall first): the key numbers of every frame.

        Columns ``segment, n_treatment, n_control, conversion_treatment,
        conversion_control, conversion_lift, conversion_lift_low,
        conversion_lift_high, conversion_p_value, conversion_p_holm,
        revenue_per_recipient_treatment, revenue_per_recipient_control,
        revenue_per_recipient_lift, revenue_per_recipient_lift_low,
        revenue_per_recipient_lift_high, revenue_p_holm, open_rate, click_rate,
        did, verdict``.
        """
        c, r, e = self.conversion, self.revenue, self.engagement
        out = pd.DataFrame({
            "segment": c["segment"], "n_treatment": c["n_treatment"], "n_control": c["n_control"],
            "conversion_treatment": c["rate_treatment"], "conversion_control": c["rate_control"],
            "conversion_lift": c["lift"], "conversion_lift_low": c["lift_low"],
            "conversion_lift_high": c["lift_high"], "conversion_p_value": c["p_value"],
            "conversion_p_holm": c["p_holm"],
            "revenue_per_recipient_treatment": r["revenue_per_recipient_treatment"],
            "revenue_per_recipient_control": r["revenue_per_recipient_control"],
            "revenue_per_recipient_lift": r["lift"], "revenue_per_recipient_lift_low": r["lift_low"],
            "revenue_per_recipient_lift_high": r["lift_high"], "revenue_p_holm": r["p_holm"],
            "open_rate": e["open_rate"], "click_rate": e["click_rate"],
        })
        out["did"] = self.did["did"] if "did" in self.did.columns else np.nan
        out["verdict"] = c["verdict"]
        return out

    def verdicts(self) -> pd.DataFrame:
        """``segment, verdict``: the plain-language reading of each conversion lift."""
        return self.conversion[["segment", "verdict"]].copy()

    def to_dict(self) -> dict:
        """JSON-ready: campaign, window, settings, notes and every frame as records."""
        campaign = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                        if not isinstance(v, (int, float, str)) else v) for k, v in self.campaign.items()}
        return {
            "campaign": campaign,
            "window": None if self.window is None else self.window.to_dict(),
            "alpha": self.alpha, "seed": self.seed, "revenue_ci": self.revenue_ci,
            "segments_from": self.segments_from, "notes": list(self.notes),
            **{name: frame_records(getattr(self, name))
               for name in ("conversion", "revenue", "engagement", "retention", "did")},
        }


# -- frame-level analysis ----------------------------------------------------------------

def _check_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lack the columns {missing}; they need {list(OUTCOME_COLUMNS)}")
    df = outcomes.copy()
    if not set(df["arm"].unique()) <= {"treatment", "control"}:
        df["arm"] = df["arm"].astype(str).str.strip().str.lower()
        bad = sorted(set(df["arm"]) - {"treatment", "control"})
        if bad:
            raise ValueError(f"arm should be treatment or control, found {bad[:5]}")
    if df["customer_id"].duplicated().any():
        raise ValueError("outcomes should have one row per customer_id")
    for col in ("converted", *OPTIONAL_COLUMNS):
        if col in df.columns and not (df[col].dtype == "int64" and df[col].isin((0, 1)).all()):
            df[col] = df[col].fillna(0).astype(bool).astype("int64")
    if df["orders"].dtype != "int64":
        df["orders"] = df["orders"].fillna(0).astype("int64")
    if df["revenue"].dtype != "float64" or df["revenue"].isna().any():
        df["revenue"] = df["revenue"].fillna(0.0).astype("float64")
    return df


def _div(a, b):
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / b, np.nan)


def _holm_segments(p) -> np.ndarray:
    """Holm across the segments; the overall row (first) keeps its own p-value."""
    out = np.asarray(p, dtype="float64").copy()
    if len(out) > 1:
        out[1:] = stats.holm(out[1:])
    return out


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def verdict(row, alpha: float = 0.05) -> str:
    """``significant +4.1 pts (95% CI +1.2 to +7.0)`` and the like, for one row of ``conversion``.

    Significance is read from the Holm-adjusted p-value (the overall row's own
    p-value); the interval is the unadjusted Newcombe interval.
    """
    if not row["n_treatment"] or not row["n_control"]:
        return "cannot tell: no " + ("control" if not row["n_control"] else "treatment") + " customers"
    level = f"{1 - alpha:.1%}".replace(".0%", "%")
    effect = f"{_pts(row['lift'])} pts ({level} CI {_pts(row['lift_low'])} to {_pts(row['lift_high'])})"
    p, p_adj = row["p_value"], row["p_holm"]
    if math.isnan(p):
        if row["rate_treatment"]:
            return "cannot tell: every customer of both arms converted"
        return "cannot tell: no customer of either arm converted"
    if p_adj < alpha:
        return f"significant {effect}"
    if p < alpha:
        return f"not significant after Holm adjustment {effect}"
    return f"not significant {effect}"


def _conversion(g: Groups, alpha: float) -> pd.DataFrame:
    nt, nc = g.count()
    xt, xc = g.sum(g.column("converted"))
    lift, low, high = stats.newcombe_interval(xt, nt, xc, nc, alpha)
    ratio, rlow, rhigh = stats.ratio_interval(xt, nt, xc, nc, alpha)
    p = stats.two_proportion_ztest(xt, nt, xc, nc)[1]
    tl, th = stats.wilson_interval(xt, nt, alpha)
    cl, ch = stats.wilson_interval(xc, nc, alpha)
    p_holm = _holm_segments(p)
    out = pd.DataFrame({
        "segment": g.order, "n_treatment": nt.astype("int64"), "n_control": nc.astype("int64"),
        "converted_treatment": xt.astype("int64"), "converted_control": xc.astype("int64"),
        "rate_treatment": _div(xt, nt), "rate_treatment_low": tl, "rate_treatment_high": th,
        "rate_control": _div(xc, nc), "rate_control_low": cl, "rate_control_high": ch,
        "lift": lift, "lift_low": low, "lift_high": high,
        "relative_lift": ratio - 1, "relative_lift_low": rlow - 1, "relative_lift_high": rhigh - 1,
        "p_value": p, "p_holm": p_holm, "significant": p_holm < alpha,
    })
    out["verdict"] = [verdict(r, alpha) for r in out.to_dict("records")]
    return out


def _revenue(g: Groups, alpha: float, revenue_ci: str, n_resamples: int, seed: int) -> pd.DataFrame:
    nt, nc = g.count()
    revenue = g.column("revenue")
    rt, rc = g.sum(revenue)
    ot, oc = g.sum(g.column("orders"))
    (mt, mc), (vt, vc) = g.mean_var(revenue)
    if revenue_ci == "bootstrap":
        values = g.values(revenue)
        empty = np.empty(0)
        res = [stats.bootstrap_mean_difference(values.get((i, 0), empty), values.get((i, 1), empty), alpha,
                                               n_resamples, seed, key=f"revenue:{s}")
               for i, s in enumerate(g.order)]
        lift = np.array([r.difference for r in res])
        low, high, p = (np.array([getattr(r, a) for r in res]) for a in ("low", "high", "p_value"))
        ratio, rlow, rhigh = (np.array([getattr(r, a) for r in res]) for a in ("ratio", "ratio_low", "ratio_high"))
    else:
        lift, low, high, p, _df = stats.welch_interval(mt, vt, nt, mc, vc, nc, alpha)
        ratio, rlow, rhigh = stats.ratio_delta_interval(mt, vt, nt, mc, vc, nc, alpha)
    p_holm = _holm_segments(p)
    return pd.DataFrame({
        "segment": g.order, "n_treatment": nt.astype("int64"), "n_control": nc.astype("int64"),
        "revenue_treatment": rt, "revenue_control": rc,
        "revenue_per_recipient_treatment": _div(rt, nt), "revenue_per_recipient_control": _div(rc, nc),
        "orders_treatment": ot.astype("int64"), "orders_control": oc.astype("int64"),
        "aov_treatment": _div(rt, ot), "aov_control": _div(rc, oc),
        "lift": lift, "lift_low": low, "lift_high": high,
        "relative_lift": ratio - 1, "relative_lift_low": rlow - 1, "relative_lift_high": rhigh - 1,
        "p_value": p, "p_holm": p_holm, "significant": p_holm < alpha,
        "incremental_revenue": lift * nt, "incremental_revenue_low": low * nt,
        "incremental_revenue_high": high * nt, "method": revenue_ci,
    })


def _engagement(g: Groups, df: pd.DataFrame) -> pd.DataFrame:
    nt, _nc = g.count()
    data = {"segment": g.order, "recipients": nt.astype("int64")}
    for col in ("sent", "bounced", "opened", "clicked", "unsubscribed"):
        data[col] = g.sum(g.column(col))[0].astype("int64") if col in df.columns else np.zeros(len(nt), "int64")
    data["open_rate"] = _div(data["opened"], data["sent"])
    data["click_rate"] = _div(data["clicked"], data["sent"])
    data["click_to_open_rate"] = _div(data["clicked"], data["opened"])
    data["unsubscribe_rate"] = _div(data["unsubscribed"], data["sent"])
    data["control_sent"] = (g.sum(g.column("sent"))[1].astype("int64") if "sent" in df.columns
                            else np.zeros(len(nt), "int64"))
    return pd.DataFrame(data)


def _retention(g: Groups, df: pd.DataFrame, alpha: float) -> pd.DataFrame:
    if "followup_converted" not in df.columns:
        return pd.DataFrame({"segment": g.order})
    nt, nc = g.count()
    conv = g.column("converted")
    follow = g.column("followup_converted")
    xt, xc = g.sum(conv)
    kt, kc = g.sum(conv * follow)
    ft, fc = g.sum(follow)
    lift, low, high = stats.newcombe_interval(ft, nt, fc, nc, alpha)
    return pd.DataFrame({
        "segment": g.order,
        "retained_treatment": kt.astype("int64"), "retained_control": kc.astype("int64"),
        "retention_rate_treatment": _div(kt, xt), "retention_rate_control": _div(kc, xc),
        "followup_treatment": ft.astype("int64"), "followup_control": fc.astype("int64"),
        "followup_rate_treatment": _div(ft, nt), "followup_rate_control": _div(fc, nc),
        "followup_lift": lift, "followup_lift_low": low, "followup_lift_high": high,
        "followup_p_value": stats.two_proportion_ztest(ft, nt, fc, nc)[1],
    })


def _did(g: Groups, alpha: float, n_resamples: int, seed: int) -> pd.DataFrame:
    nt, nc = g.count()
    conv, pre = g.column("converted"), g.column("pre_converted")
    xt, xc = g.sum(conv)
    pt, pc = g.sum(pre)
    out = {"segment": g.order, "pre_rate_treatment": _div(pt, nt), "window_rate_treatment": _div(xt, nt),
           "pre_rate_control": _div(pc, nc), "window_rate_control": _div(xc, nc)}
    out["change_treatment"] = out["window_rate_treatment"] - out["pre_rate_treatment"]
    out["change_control"] = out["window_rate_control"] - out["pre_rate_control"]
    out["did"] = out["change_treatment"] - out["change_control"]
    values = g.values(conv - pre)
    q = [alpha / 2, 1 - alpha / 2]
    lows, highs = [], []
    for i, s in enumerate(g.order):
        t, c = values.get((i, 0), np.empty(0)), values.get((i, 1), np.empty(0))
        if len(t) < 2 or len(c) < 2:
            lows.append(math.nan)
            highs.append(math.nan)
            continue
        rng = stats.seeded_rng(seed, f"did:{s}")
        diff = stats.resampled_means(t, n_resamples, rng) - stats.resampled_means(c, n_resamples, rng)
        lo, hi = np.quantile(diff, q)
        lows.append(float(lo))
        highs.append(float(hi))
    out["did_low"], out["did_high"] = np.array(lows), np.array(highs)
    return pd.DataFrame(out)


def analyze_frame(outcomes: pd.DataFrame, segments: pd.DataFrame | None = None, *, alpha: float = 0.05,
                  seed: int = 0, revenue_ci: str = "welch", n_resamples: int = 2000,
                  did: bool = True) -> CampaignAnalysis:
    """Analyse a randomised campaign from one row per customer.

    Parameters
    ----------
    outcomes : DataFrame
        One row per customer: ``customer_id, arm`` (treatment or control),
        ``converted`` (0/1), ``orders``, ``revenue``; optional
        ``pre_converted, followup_converted`` and the email flags ``sent,
        bounced, opened, clicked, unsubscribed`` (0/1).
    segments : DataFrame, optional
        ``customer_id, segment``; a customer may be in several segments.
        Customers not in it count only in the overall row.
    alpha : float, default=0.05
        1 - confidence level of every interval, and the significance level.
    seed : int, default=0
        Seed of the bootstrap intervals (the revenue bootstrap and the DiD).
    revenue_ci : {"welch", "bootstrap"}, default="welch"
        The interval of the revenue per recipient lift.
    n_resamples : int, default=2000
        Bootstrap resamples.
    did : bool, default=True
        Compute the difference in differences (needs ``pre_converted``).

    Returns
    -------
    CampaignAnalysis

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": list("abcdef"), "arm": ["treatment"] * 4 + ["control"] * 2,
    ...                    "converted": [1, 1, 0, 0, 0, 0], "orders": [1, 1, 0, 0, 0, 0],
    ...                    "revenue": [10.0, 30.0, 0, 0, 0, 0]})
    >>> a = analyze_frame(df)
    >>> float(a.overall["lift"])
    0.5
    """
    if revenue_ci not in REVENUE_CI:
        raise ValueError(f"revenue_ci={revenue_ci!r} should be one of {REVENUE_CI}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples={n_resamples} should be at least 100")
    stats._z(alpha)
    df = _check_outcomes(outcomes)
    g = Groups(df, segments)
    conversion = _conversion(g, alpha)
    revenue = _revenue(g, alpha, revenue_ci, n_resamples, seed)
    engagement = _engagement(g, df)
    retention = _retention(g, df, alpha)
    did_frame = (_did(g, alpha, n_resamples, seed) if did and "pre_converted" in df.columns
                 else pd.DataFrame({"segment": g.order}))
    notes = []
    if not conversion["n_control"].iloc[0]:
        notes.append("no control customers: the lift cannot be measured")
    small = conversion.loc[(conversion["n_control"] > 0) & (conversion["n_control"] < 30), "segment"].tolist()
    if small:
        notes.append(f"fewer than 30 control customers in {', '.join(map(str, small[:6]))}: "
                     "their intervals are wide")
    return CampaignAnalysis(conversion, revenue, engagement, retention, did_frame, df, alpha=alpha, seed=seed,
                            revenue_ci=revenue_ci, n_resamples=n_resamples, notes=notes,
                            segments_from="given" if segments is not None else "none")


# -- store-level analysis ----------------------------------------------------------------

def _segments_of_run(store, run_id: str, customers: pd.Series) -> pd.DataFrame:
    from custseg.profiles.base import run_info

    run_info(store, run_id)  # a clear error for an unknown run
    m = store.con.execute(
        "SELECT DISTINCT customer_id, segment FROM segment_memberships WHERE run_id = ?", [run_id]).df()
    outside = sorted(set(customers) - set(m["customer_id"]))
    if outside:
        m = pd.concat([m, pd.DataFrame({"customer_id": outside, "segment": NOT_IN_RUN})], ignore_index=True)
    return m


def _post_treatment_note(store, run_id: str, window: CampaignWindow) -> str | None:
    rows = store.con.execute("SELECT as_of FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    as_of = rows[0][0] if rows else None
    if as_of is None:
        return None
    day = as_date(as_of)
    if day > window.start:
        return (f"the segments of run {run_id} are as of {str(day)[:10]}, after the campaign started: "
                "the campaign may have moved customers between them, so per-segment lifts can be biased; "
                "prefer a run as of the campaign start")
    return None


def _newest_run(store) -> str | None:
    rows = store.con.execute(
        "SELECT run_id FROM segment_runs ORDER BY created_at DESC, run_id DESC LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def _audience_run(store, info) -> str | None:
    """The segmentation run an audience export drew the campaign from (its description names it)."""
    import re

    desc = getattr(info, "description", None)
    if desc is None and isinstance(info, dict):
        desc = info.get("description")
    m = re.search(r"from run (\S+) \(", str(desc or ""))
    if not m:
        return None
    found = store.con.execute("SELECT run_id FROM segment_runs WHERE run_id = ?", [m.group(1)]).fetchall()
    return found[0][0] if found else None


def analyze_campaign(store, campaign_id: str, *, window_days: int | None = None, segments=None,
                     alpha: float = 0.05, seed: int = 0, revenue_ci: str = "welch",
                     followup_days: int = DEFAULT_FOLLOWUP_DAYS, statuses: tuple[str, ...] = ("completed",),
                     n_resamples: int = 2000) -> CampaignAnalysis:
    """Measure a randomised campaign of the store, overall and per segment.

    Parameters
    ----------
    store : Store
    campaign_id : str
        A campaign with rows in ``campaign_assignments`` (arms treatment and control).
    window_days : int, optional
        Length of the window from the day of the campaign's ``start_time``;
        default up to its ``end_time``, else 28 days.
    segments : DataFrame, str, False or None, default=None
        A frame ``customer_id, segment``; or a run id (the run's memberships,
        campaign customers outside the run in ``(not in run)``); ``False`` for
        the overall row only; None for the newest run if the store has one.
    alpha : float, default=0.05
    seed : int, default=0
        Seed of the bootstrap intervals.
    revenue_ci : {"welch", "bootstrap"}, default="welch"
    followup_days : int, default=90
        Length of the follow-up after the window (retention).
    statuses : tuple of str, default=("completed",)
        Order statuses that count as a conversion; ``("completed", "cancelled",
        "returned")`` counts any order.
    n_resamples : int, default=2000

    Returns
    -------
    CampaignAnalysis

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:"); load_demo(store, make_store(2000, seed=1))
    >>> a = analyze_campaign(store, "CAMP-WINBACK")
    >>> a.conversion.loc[0, "segment"]
    '(all customers)'
    """
    if revenue_ci not in REVENUE_CI:
        raise ValueError(f"revenue_ci={revenue_ci!r} should be one of {REVENUE_CI}")
    if not (segments is None or segments is False or isinstance(segments, (str, pd.DataFrame))):
        raise TypeError(f"segments should be a DataFrame, a run id, False or None, not {type(segments).__name__}")
    stats._z(alpha)
    info = campaign_info(store, campaign_id)
    window = campaign_window(store, info, window_days, followup_days)
    outcomes, notes = campaign_outcomes(store, campaign_id, window, tuple(statuses))
    source = "none"
    if segments is None:
        run_id = _audience_run(store, info) or _newest_run(store)
        seg = _segments_of_run(store, run_id, outcomes["customer_id"]) if run_id else None
        source = f"run {run_id}" if run_id else "none"
    elif segments is False:
        seg = None
    elif isinstance(segments, str):
        seg = _segments_of_run(store, segments, outcomes["customer_id"])
        source = f"run {segments}"
    else:
        seg, source = segments, "given"
    result = analyze_frame(outcomes, seg, alpha=alpha, seed=seed, revenue_ci=revenue_ci, n_resamples=n_resamples)
    if source.startswith("run "):
        late = _post_treatment_note(store, source[4:], window)
        if late:
            notes.append(late)
    if not window.followup_complete:
        notes.append(f"the follow-up ends {window.followup_end} but the orders end {window.data_end}: "
                     "retention and follow-up rates are incomplete")
    if "pre_rate_treatment" in result.did.columns:
        first = result.did.iloc[0]
        if first["pre_rate_treatment"] == 0 and first["pre_rate_control"] == 0:
            notes.append("nobody ordered in the pre-period (as when eligibility requires no recent order): "
                         "the DiD equals the simple difference")
    result.notes = notes + result.notes
    result.campaign = info
    result.window = window
    result.segments_from = source
    return result
