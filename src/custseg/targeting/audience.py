"""Audience exports: a segment's customers for an email tool, with a random holdout.

:func:`plan_audience` works out who is in an audience without writing
anything: the customers of the chosen segments of a run, only those with email
consent and a usable email address (one customer per address), and a seeded
holdout per segment (:mod:`custseg.targeting.holdout`). :func:`export_audience`
then writes the file (the treatment arm only: the holdout is never in it) and
records the campaign and both arms in the store
(:mod:`custseg.targeting.campaigns`), so that ``custseg campaign analyze``
can measure the lift against the holdout.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from custseg.targeting.campaigns import check_campaign, new_campaign_id, record_campaign
from custseg.targeting.holdout import check_share, draw_holdout
from custseg.targeting.playbook import Playbook, load_playbook
from custseg.targeting.styles import check_style, styled

#: A usable address: one @, no spaces, a dot in the domain.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FORMATS = ("csv", "parquet")
TREATMENT, CONTROL = "treatment", "control"
NO_CONSENT, UNSUBSCRIBED = "no consent", "unsubscribed"
NO_EMAIL, DUPLICATE_EMAIL = "no email", "duplicate email"
EXCLUDED = (NO_CONSENT, UNSUBSCRIBED, NO_EMAIL, DUPLICATE_EMAIL)
STATUSES = (TREATMENT, CONTROL) + EXCLUDED
PRODUCT_SEPARATOR = "; "


class UnknownSegment(ValueError):
    """A segment asked for is not in the run (or the run has no memberships)."""


class EmptyAudience(ValueError):
    """No customer of the chosen segments would receive the campaign (nothing to export or record)."""


@dataclass
class AudiencePlan:
    """Who is in an audience, before anything is written.

    Attributes
    ----------
    run_id, method : str
        The segmentation run and its method.
    segments : tuple of str
        The chosen segments, in the order customers are assigned to them (a customer of an
        overlapping run in several of them counts in the first).
    holdout_share : float
        Share of each segment's eligible customers held out.
    seed : int
        Seed of the holdout draw.
    members : DataFrame
        One row per customer of the chosen segments: ``customer_id``, ``segment``, ``email``,
        ``first_name``, ``last_name`` and ``status``: ``treatment`` (exported), ``control``
        (holdout), ``no consent`` (no email consent, or no customer record), ``unsubscribed`` (consent
        on record, but an ``unsubscribe`` email event since), ``no email`` (no usable address) or
        ``duplicate email`` (the address belongs to a customer with a smaller id too).
    notes : list of str
        What to know about the audience (segments too small for a holdout, ...).
    """

    run_id: str
    method: str
    segments: tuple[str, ...]
    holdout_share: float
    seed: int
    members: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def _count(self, *statuses: str) -> int:
        return int(self.members["status"].isin(statuses).sum())

    in_segment = property(lambda self: len(self.members), doc="Customers in the chosen segments.")
    no_consent = property(lambda self: self._count(NO_CONSENT), doc="Excluded: no email consent.")
    unsubscribed = property(lambda self: self._count(UNSUBSCRIBED), doc="Excluded: unsubscribed by email.")
    no_email = property(lambda self: self._count(NO_EMAIL), doc="Excluded: consent but no usable email.")
    duplicate_email = property(lambda self: self._count(DUPLICATE_EMAIL), doc="Excluded: address already used.")
    excluded = property(lambda self: self._count(*EXCLUDED),
                        doc="Customers left out of the campaign (no consent, unsubscribed, no email, duplicate).")
    eligible = property(lambda self: self._count(TREATMENT, CONTROL), doc="Treatment plus holdout.")
    holdout = property(lambda self: self._count(CONTROL), doc="The control arm, kept out of the file.")
    exported = property(lambda self: self._count(TREATMENT), doc="The treatment arm: rows of the file.")

    def ids(self, status: str) -> list[str]:
        """Customer ids of one status, sorted."""
        return sorted(self.members.loc[self.members["status"] == status, "customer_id"].astype(str))

    @property
    def per_segment(self) -> pd.DataFrame:
        """Per segment: ``in_segment``, ``excluded``, ``eligible``, ``holdout``, ``exported``."""
        m = self.members
        rows = []
        for seg in self.segments:
            s = m.loc[m["segment"] == seg, "status"]
            rows.append({"segment": seg, "in_segment": len(s),
                         "excluded": int(s.isin(EXCLUDED).sum()),
                         "eligible": int(s.isin((TREATMENT, CONTROL)).sum()),
                         "holdout": int((s == CONTROL).sum()), "exported": int((s == TREATMENT).sum())})
        return pd.DataFrame(rows, columns=["segment", "in_segment", "excluded", "eligible", "holdout", "exported"])

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("in_segment", "no_consent", "unsubscribed", "no_email", "duplicate_email",
                                              "excluded", "eligible", "holdout", "exported")}


@dataclass
class AudienceResult:
    """What :func:`export_audience` wrote and recorded.

    Attributes
    ----------
    campaign_id : str
        The campaign the arms are recorded under (``custseg campaign analyze <id>``).
    path : Path
        The file written (the treatment arm).
    fmt, style : str
        File format and column style.
    columns : tuple of str
        The file's columns.
    reused : bool
        True when the campaign already held exactly these arms (nothing was added to the store).
    plan : AudiencePlan
        Who is in the audience; its counts are also attributes here (``in_segment``,
        ``no_consent``, ``unsubscribed``, ``no_email``, ``duplicate_email``, ``excluded``, ``holdout``,
        ``exported``).
    notes : list of str
        The plan's notes and those of the export (recommendations, clipped values).
    """

    campaign_id: str
    path: Path
    fmt: str
    style: str
    columns: tuple[str, ...]
    reused: bool
    plan: AudiencePlan
    notes: list[str] = field(default_factory=list)

    run_id = property(lambda self: self.plan.run_id)
    method = property(lambda self: self.plan.method)
    segments = property(lambda self: self.plan.segments)
    holdout_share = property(lambda self: self.plan.holdout_share)
    seed = property(lambda self: self.plan.seed)
    in_segment = property(lambda self: self.plan.in_segment)
    no_consent = property(lambda self: self.plan.no_consent)
    unsubscribed = property(lambda self: self.plan.unsubscribed)
    no_email = property(lambda self: self.plan.no_email)
    duplicate_email = property(lambda self: self.plan.duplicate_email)
    excluded = property(lambda self: self.plan.excluded)
    holdout = property(lambda self: self.plan.holdout)
    exported = property(lambda self: self.plan.exported)
    per_segment = property(lambda self: self.plan.per_segment)

    def to_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "run_id": self.plan.run_id, "method": self.plan.method,
                "segments": list(self.plan.segments), "path": str(self.path), "format": self.fmt,
                "style": self.style, "columns": list(self.columns), "holdout_share": self.plan.holdout_share,
                "seed": self.plan.seed, "reused": self.reused, **self.plan.counts(),
                "per_segment": self.plan.per_segment.to_dict(orient="records"), "notes": list(self.notes)}


def plan_audience(store, segment: str | Sequence[str], *, run_id: str | None = None, holdout: float = 0.1,
                  seed: int = 0) -> AudiencePlan:
    """Who would be exported and who held out, without writing anything.

    Parameters
    ----------
    store : Store
        The store (may be read-only).
    segment : str or sequence of str
        A segment name, several comma-separated names (a name that holds a comma, such as
        ``Abandoned, never bought``, is recognised whole), a list of names, or ``"all"``.
    run_id : str, default=None
        The segmentation run; None for the newest.
    holdout : float, default=0.1
        Share of each segment's eligible customers held out, in [0, 1).
    seed : int, default=0
        Seed of the holdout draw.
    """
    from custseg.cleaning.clean import clean
    from custseg.pipeline import latest_run

    share = check_share(holdout)
    run_id = run_id or latest_run(store)
    rows = store.con.execute("SELECT method, parameters FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")
    method = rows[0][0]
    sizes = store.con.execute("SELECT segment, count(*) FROM segment_memberships WHERE run_id = ? GROUP BY 1",
                              [run_id]).fetchall()
    segments = _choose(segment, dict(sizes), run_id, _priority(rows[0][1]))

    m = store.table("segment_memberships")
    m = m.filter((m.run_id == run_id) & m.segment.isin(list(segments)))
    c = clean(store, persist=False).customers
    c = c.select(c_id=c.customer_id, email=c.email, first_name=c.first_name, last_name=c.last_name,
                 email_consent=c.email_consent)
    joined = m.left_join(c, m.customer_id == c.c_id).select(
        "customer_id", "segment", "email", "first_name", "last_name", "email_consent")
    members = store.ibis.execute(joined)
    unsubscribed = _unsubscribed(store, clean(store, persist=False))
    order = {s: i for i, s in enumerate(segments)}
    members = (members.assign(_order=members["segment"].map(order), customer_id=members["customer_id"].astype(str))
               .sort_values(["_order", "customer_id"], kind="stable")
               .drop_duplicates("customer_id").drop(columns="_order").reset_index(drop=True))
    members["status"] = _status(members, unsubscribed)
    eligible = members["status"] == TREATMENT
    held = draw_holdout(members.loc[eligible, ["customer_id", "segment"]], share, seed)
    members.loc[held[held].index, "status"] = CONTROL
    plan = AudiencePlan(run_id, method, tuple(segments), share, int(seed), members)
    plan.notes.extend(_notes(plan))
    return plan


def export_audience(store, segment: str | Sequence[str], *, path: str | Path, run_id: str | None = None,
                    fmt: str | None = None, style: str = "generic", holdout: float = 0.1, seed: int = 0,
                    campaign_id: str | None = None, playbook: Playbook | str | Path | None = None,
                    recommendations: int = 3) -> AudienceResult:
    """Write a segment's audience for an email tool, keep a holdout out, record both arms.

    Parameters
    ----------
    store : Store
        The store, opened for writing (the campaign and its assignments are recorded).
    segment : str or sequence of str
        As in :func:`plan_audience`: a name, comma-separated names, a list, or ``"all"``.
    path : str or Path
        The file to write; its folder must exist.
    run_id : str, default=None
        The segmentation run; None for the newest.
    fmt : {"csv", "parquet"}, default=None
        None: from the file's extension (``.parquet``), else CSV.
    style : {"generic", "mailchimp", "klaviyo"}, default="generic"
        Column names for the tool (:mod:`custseg.targeting.styles`).
    holdout : float, default=0.1
        Share of each segment held out as the control group, in [0, 1).
    seed : int, default=0
        Seed of the holdout draw: the same seed and customers give the same holdout.
    campaign_id : str, default=None
        The campaign to record; None makes ``AUD-YYYYMMDD-HHMMSS-xxxx``. Exporting again under an
        id whose recorded arms are exactly this audience's rewrites the file and adds nothing;
        under an id with other assignments it is refused.
    playbook : Playbook or path, default=None
        Where the ``play`` and ``offer`` columns come from; None for the built-in playbook.
    recommendations : int, default=3
        Top product recommendations per customer (0: none), from the newest stored
        recommendation run, else computed for the exported customers.

    Returns
    -------
    AudienceResult
    """
    style = check_style(style)
    path = Path(path)
    fmt = (fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} must be csv or parquet")
    if not path.parent.exists():
        raise ValueError(f"folder {path.parent} does not exist")
    if int(recommendations) < 0:
        raise ValueError(f"recommendations={recommendations} must be >= 0")
    playbook = playbook if isinstance(playbook, Playbook) else load_playbook(playbook)

    plan = plan_audience(store, segment, run_id=run_id, holdout=holdout, seed=seed)
    treatment, control = _arms(plan)
    now = dt.datetime.now().replace(microsecond=0)
    campaign_id = campaign_id or new_campaign_id(now)
    check_campaign(store, campaign_id, treatment, control)  # refuse before writing anything

    notes = list(plan.notes)
    rows = plan.members[plan.members["status"] == TREATMENT].copy()
    plays = {s: playbook.for_segment(s, plan.method) for s in plan.segments}
    frame = pd.DataFrame({
        "email": rows["email"].str.strip(), "first_name": rows["first_name"].fillna(""),
        "last_name": rows["last_name"].fillna(""), "segment": rows["segment"],
        "play": rows["segment"].map(lambda s: plays[s].play),
        "offer": rows["segment"].map(lambda s: plays[s].offer or ""),
        "customer_id": rows["customer_id"], "campaign_id": campaign_id,
    })
    recs = _recommendations(store, treatment, int(recommendations), plan.run_id, notes)
    if recs is not None:
        frame = frame.merge(recs, on="customer_id", how="left")
        for col in ("recommended_products", "recommended_product_ids"):
            frame[col] = frame[col].fillna("")
    out, style_notes = styled(frame, style)
    notes.extend(style_notes)
    if style != "generic" and fmt == "parquet":
        notes.append(f"{style} imports CSV files; this audience is Parquet")

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "csv":
            out.to_csv(tmp, index=False, encoding="utf-8")
        else:
            out.to_parquet(tmp, index=False)
        reused = _record(store, plan, campaign_id, treatment, control, now)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if reused:
        notes.append(f"campaign {campaign_id} already held exactly these arms; file rewritten, nothing recorded")
    return AudienceResult(campaign_id, path, fmt, style, tuple(out.columns), reused, plan, notes)


@dataclass
class RecordedAudience:
    """What :func:`record_audience` recorded.

    Attributes
    ----------
    campaign_id : str
        The campaign the arms are recorded under.
    reused : bool
        True when the campaign already held exactly these arms (nothing was added).
    plan : AudiencePlan
        Who is in the audience (its counts, per segment, members and their status).
    notes : list of str
        The plan's notes, and one when nothing was recorded.
    """

    campaign_id: str
    reused: bool
    plan: AudiencePlan
    notes: list[str] = field(default_factory=list)


def record_audience(store, segment: str | Sequence[str], *, run_id: str | None = None, holdout: float = 0.1,
                    seed: int = 0, campaign_id: str | None = None,
                    now: dt.datetime | None = None) -> RecordedAudience:
    """Record an audience as a campaign (both arms), as :func:`export_audience` does, without a file.

    The same plan, checks, campaign row and assignments as ``custseg audience export`` (and
    the same idempotence: recording the same arms again under a campaign id adds nothing;
    other arms under an id that has assignments are refused). For a caller that hands the
    file out by other means, such as the service's ``POST /v1/audiences``.

    Parameters
    ----------
    store : Store
        The store, opened for writing.
    segment, run_id, holdout, seed, campaign_id
        As in :func:`export_audience`.
    now : datetime, default=None
        The campaign's start and assignment time; None for now.

    Returns
    -------
    RecordedAudience

    Raises
    ------
    UnknownSegment
        A segment is not in the run.
    EmptyAudience
        Nobody would be in the treatment arm.
    custseg.targeting.campaigns.CampaignConflict
        The campaign id holds other assignments.
    """
    plan = plan_audience(store, segment, run_id=run_id, holdout=holdout, seed=seed)
    treatment, control = _arms(plan)
    now = (now or dt.datetime.now()).replace(microsecond=0)
    campaign_id = campaign_id or new_campaign_id(now)
    reused = _record(store, plan, campaign_id, treatment, control, now)
    notes = list(plan.notes)
    if reused:
        notes.append(f"campaign {campaign_id} already held exactly these arms; nothing recorded")
    return RecordedAudience(campaign_id, reused, plan, notes)


# -- helpers ---------------------------------------------------------------------------

def _arms(plan: AudiencePlan) -> tuple[list[str], list[str]]:
    """``(treatment, control)`` ids of a plan; an EmptyAudience error when nobody would be sent to."""
    treatment, control = plan.ids(TREATMENT), plan.ids(CONTROL)
    if not treatment:
        raise EmptyAudience(f"nothing to export from {', '.join(plan.segments)} of run {plan.run_id}: "
                            f"{plan.in_segment:,} customers, {plan.excluded:,} without consent or a usable email, "
                            f"{plan.holdout:,} held out")
    return treatment, control


def _record(store, plan: AudiencePlan, campaign_id: str, treatment: list[str], control: list[str],
            now: dt.datetime) -> bool:
    """Record the campaign row and both arms (:func:`record_campaign`); True when already recorded."""
    segs = ", ".join(plan.segments)
    description = (f"Audience of {segs} from run {plan.run_id} ({plan.method}): {len(treatment):,} exported "
                   f"(treatment), {len(control):,} held out (control, {plan.holdout_share:.0%} of each segment, "
                   f"seed {plan.seed}); {plan.excluded:,} excluded without consent or a usable email")
    return record_campaign(store, campaign_id, treatment, control, name=f"Audience: {segs}"[:200],
                           description=description, now=now)



def _priority(parameters) -> list[str]:
    import json

    try:
        params = json.loads(parameters) if isinstance(parameters, str) else parameters
    except ValueError:
        return []
    order = params.get("priority") if isinstance(params, dict) else None
    return [str(s) for s in order] if isinstance(order, list) else []


def _choose(spec: str | Sequence[str], sizes: dict[str, int], run_id: str, priority: list[str]) -> list[str]:
    """The segment names asked for, as the run spells them, in order."""
    if not sizes:
        raise UnknownSegment(f"run {run_id} has no memberships")
    rank = {s: i for i, s in enumerate(priority)}
    everything = sorted(sizes, key=lambda s: (rank.get(s, len(rank)), -sizes[s], s))
    if isinstance(spec, str) and spec.strip().casefold() == "all":
        return everything
    folded = {s.casefold(): s for s in sizes}
    if isinstance(spec, str):
        tokens, names, i = spec.split(","), [], 0
        while i < len(tokens):
            for j in range(len(tokens), i, -1):  # the longest run of tokens that is a name (names may hold commas)
                candidate = ",".join(tokens[i:j]).strip().casefold()
                if candidate in folded:
                    names.append(folded[candidate])
                    i = j
                    break
            else:
                _unknown(tokens[i].strip(), sizes, run_id)
    else:
        names = [folded.get(str(s).strip().casefold()) or _unknown(str(s), sizes, run_id) for s in spec]
    if not names:
        raise ValueError("no segment given: name one or more segments, or 'all'")
    return list(dict.fromkeys(names))


def _unknown(name: str, sizes: dict[str, int], run_id: str):
    import difflib

    close = difflib.get_close_matches(name, list(sizes), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownSegment(f"segment {name!r} is not in run {run_id}{hint}; its segments: {', '.join(sorted(sizes))}")


def _unsubscribed(store, cleaned) -> set[str]:
    """Customers with an ``unsubscribe`` email event on record."""
    if store.count("email_events") == 0:
        return set()
    e = cleaned.email_events
    e = e.filter((e.event_type == "unsubscribe") & e.customer_id.notnull()).select("customer_id").distinct()
    return set(store.ibis.execute(e)["customer_id"].astype(str))


def _status(members: pd.DataFrame, unsubscribed: set[str]) -> pd.Series:
    consent = members["email_consent"].astype("boolean").fillna(False).to_numpy(bool)
    unsub = members["customer_id"].isin(unsubscribed).to_numpy(bool)
    email = members["email"].fillna("").astype(str).str.strip()
    usable = email.str.match(EMAIL_PATTERN).to_numpy(bool)
    status = pd.Series(TREATMENT, index=members.index, dtype=object)
    status[~consent] = NO_CONSENT
    status[consent & unsub] = UNSUBSCRIBED
    status[consent & ~unsub & ~usable] = NO_EMAIL
    ok = status == TREATMENT
    first = members.loc[ok].assign(_key=email[ok].str.casefold()).sort_values("customer_id", kind="stable")
    status[first.index[first["_key"].duplicated()]] = DUPLICATE_EMAIL
    return status


def _notes(plan: AudiencePlan) -> list[str]:
    notes = []
    for row in plan.per_segment.itertuples(index=False):
        if row.eligible == 0:
            notes.append(f"{row.segment}: no customer with email consent and a usable address")
        elif plan.holdout_share > 0 and row.holdout == 0:
            notes.append(f"{row.segment}: {row.eligible} eligible customers, too few for a "
                         f"{plan.holdout_share:.0%} holdout; its lift cannot be measured")
        elif row.exported == 0:
            notes.append(f"{row.segment}: all {row.eligible} eligible customers held out")
    if plan.duplicate_email:
        notes.append(f"{plan.duplicate_email:,} customers share an address with another customer; "
                     "only the one with the smallest id is in the audience")
    return notes


def _recommendations(store, customer_ids: list[str], n: int, run_id: str, notes: list[str]) -> pd.DataFrame | None:
    """``customer_id``, ``recommended_products``, ``recommended_product_ids`` (top ``n``), or None."""
    if n == 0:
        return None
    try:
        from custseg.recommend import load_recommendations, recommend
    except ImportError:
        notes.append("product recommendations are not available in this installation (custseg.recommend); "
                     "exported without them")
        return None
    try:
        try:
            recs = load_recommendations(store)
            where = "the newest stored recommendation run"
        except ValueError:
            recs = recommend(store, customer_ids=customer_ids, n=n, run_id=run_id)
            where = "computed now (no stored recommendation run)"
        recs = recs.assign(customer_id=recs["customer_id"].astype(str))
        recs = recs[recs["customer_id"].isin(set(customer_ids)) & (recs["rank"] <= n)].sort_values(
            ["customer_id", "rank"])
        out = recs.groupby("customer_id", sort=True).agg(
            recommended_products=("product_name", lambda v: PRODUCT_SEPARATOR.join(map(str, v))),
            recommended_product_ids=("product_id", lambda v: PRODUCT_SEPARATOR.join(map(str, v)))).reset_index()
    except Exception as exc:  # noqa: BLE001 - recommendations must not sink an export
        notes.append(f"product recommendations failed ({' '.join(str(exc).split()) or type(exc).__name__}); "
                     "exported without them")
        return None
    missing = len(set(customer_ids) - set(out["customer_id"]))
    notes.append(f"recommendations: top {n} from {where}"
                 + (f"; {missing:,} exported customers have none" if missing else ""))
    return out
