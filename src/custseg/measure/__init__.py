"""Measurement: did the targeting work? Campaign lift per segment with confidence
intervals, KPIs per segment over time, and cohort retention.

>>> from custseg.measure import analyze_campaign, segment_kpis, cohort_matrix   # doctest: +SKIP

Definitions, formulas and references: docs/measure.md.
"""

from custseg.measure.campaign import (
    CampaignAnalysis,
    analyze_campaign,
    analyze_frame,
    verdict,
)
from custseg.measure.cohorts import CohortMatrix, cohort_matrix
from custseg.measure.kpi import KPI_COLUMNS, SegmentKPIs, segment_kpis
from custseg.measure.outcomes import CampaignWindow, campaign_outcomes
from custseg.measure.plots import (
    cohort_curves_figure,
    cohort_heatmap,
    did_figure,
    kpi_figure,
    lift_figure,
    rates_figure,
)
from custseg.measure.report import (
    campaign_report_html,
    cohort_report_html,
    kpi_report_html,
    write_campaign_report,
    write_cohort_report,
    write_kpi_report,
)
from custseg.measure.simulate import (
    DEMO_DESIGN,
    SimulatedCampaign,
    interval_coverage,
    simulate_campaign,
)
from custseg.measure.stats import (
    SampleSize,
    bootstrap_mean_difference,
    holm,
    minimum_detectable_lift,
    newcombe_interval,
    power_two_proportions,
    sample_size_two_proportions,
    two_proportion_ztest,
    welch_interval,
    welch_test,
    wilson_interval,
)

__all__ = [
    "DEMO_DESIGN", "KPI_COLUMNS",
    "CampaignAnalysis", "CampaignWindow", "CohortMatrix", "SampleSize", "SegmentKPIs", "SimulatedCampaign",
    "analyze_campaign", "analyze_frame", "bootstrap_mean_difference", "campaign_outcomes", "campaign_report_html",
    "cohort_curves_figure", "cohort_heatmap", "cohort_matrix", "cohort_report_html", "did_figure", "holm",
    "interval_coverage", "kpi_figure", "kpi_report_html", "lift_figure", "minimum_detectable_lift",
    "newcombe_interval", "power_two_proportions", "rates_figure", "sample_size_two_proportions", "segment_kpis",
    "simulate_campaign", "two_proportion_ztest", "verdict", "welch_interval", "welch_test", "wilson_interval",
    "write_campaign_report", "write_cohort_report", "write_kpi_report",
]
