"""Recording an audience as a campaign: a ``campaigns`` row and every customer's arm.

The exported customers are the ``treatment`` arm, the holdout the ``control``
arm, in ``campaign_assignments``, so that the campaign's effect can later be
measured against the holdout. Recording is idempotent: recording the same
customers in the same arms again under a campaign id adds nothing; recording
different ones under an id that already has assignments is refused, so that a
customer is never in both arms, or in one twice, of a campaign.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import pandas as pd

ARMS = ("treatment", "control")


class CampaignConflict(ValueError):
    """The campaign id already holds other assignments than the ones being recorded."""


def new_campaign_id(now: dt.datetime | None = None) -> str:
    """``AUD-YYYYMMDD-HHMMSS-xxxx``: sortable by time, unique."""
    now = now or dt.datetime.now()
    return f"AUD-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


def recorded_arms(store, campaign_id: str) -> dict[str, str]:
    """``{customer_id: arm}`` already recorded for ``campaign_id``."""
    rows = store.con.execute("SELECT customer_id, arm FROM campaign_assignments WHERE campaign_id = ?",
                             [campaign_id]).fetchall()
    return {str(c): str(a) for c, a in rows}


def check_campaign(store, campaign_id: str, treatment: Iterable[str], control: Iterable[str]) -> bool:
    """Whether ``campaign_id`` already holds exactly these arms (True), or holds nothing (False).

    Raises
    ------
    CampaignConflict
        (a ValueError) When the campaign has assignments that differ from these.
    """
    wanted = {**{str(c): "treatment" for c in treatment}, **{str(c): "control" for c in control}}
    recorded = recorded_arms(store, campaign_id)
    if not recorded:
        return False
    if recorded == wanted:
        return True
    moved = sum(1 for c, arm in wanted.items() if c in recorded and recorded[c] != arm)
    added = sum(1 for c in wanted if c not in recorded)
    gone = sum(1 for c in recorded if c not in wanted)
    raise CampaignConflict(
        f"campaign {campaign_id!r} already has {len(recorded):,} assignments and this audience differs "
        f"({moved:,} customers would change arm, {added:,} be added, {gone:,} be missing); "
        "use a new campaign id (or the same segment, run, holdout and seed to export it again)")


def record_campaign(store, campaign_id: str, treatment: Iterable[str], control: Iterable[str], *, name: str,
                    description: str, channel: str = "email", now: dt.datetime | None = None) -> bool:
    """Record the campaign and both arms in one transaction; return True when it was already recorded.

    A ``campaigns`` row is added unless one with this id exists (yours, from an ingested
    campaigns file, is kept as it is).
    """
    treatment, control = [str(c) for c in treatment], [str(c) for c in control]
    both = set(treatment) & set(control)
    if both:
        raise ValueError(f"{len(both)} customers would be in both arms of campaign {campaign_id!r}")
    if check_campaign(store, campaign_id, treatment, control):
        return True
    now = (now or dt.datetime.now()).replace(microsecond=0)
    assignments = pd.DataFrame({
        "campaign_id": campaign_id,
        "customer_id": treatment + control,
        "arm": ["treatment"] * len(treatment) + ["control"] * len(control),
        "assigned_at": pd.Timestamp(now),
    })
    with store.transaction() as con:
        exists = con.execute("SELECT count(*) FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
        if not exists:
            store.append("campaigns", pd.DataFrame([{
                "campaign_id": campaign_id, "name": name, "channel": channel, "start_time": pd.Timestamp(now),
                "end_time": None, "description": description}]))
        store.append("campaign_assignments", assignments)
    return False
