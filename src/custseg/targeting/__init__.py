"""Targeting: what to do with each segment (playbooks) and audience exports with holdout groups.

>>> from custseg.targeting import load_playbook
>>> load_playbook().for_segment("New Customers").play
'Onboard'
"""

from custseg.targeting.audience import (
    AudiencePlan,
    AudienceResult,
    EmptyAudience,
    RecordedAudience,
    UnknownSegment,
    export_audience,
    plan_audience,
    record_audience,
)
from custseg.targeting.campaigns import CampaignConflict
from custseg.targeting.holdout import draw_holdout, holdout_size
from custseg.targeting.playbook import (
    Play,
    Playbook,
    PlaybookError,
    load_playbook,
    playbook_for_run,
    write_default_playbook,
)
from custseg.targeting.styles import STYLES

__all__ = [
    "STYLES", "AudiencePlan", "AudienceResult", "CampaignConflict", "EmptyAudience", "Play", "Playbook",
    "PlaybookError", "RecordedAudience", "UnknownSegment", "draw_holdout", "export_audience", "holdout_size",
    "load_playbook", "plan_audience", "playbook_for_run", "record_audience", "write_default_playbook",
]
