"""Profiles and evaluation of segmentation runs: who is in each segment, how good the
segmentation is, which segments are worth most, and how customers move between runs.

>>> from custseg.profiles import profile_run, evaluate_run, compare_runs   # doctest: +SKIP
"""

from custseg.profiles.base import ALL, NOT_IN_RUN, RunInfo, run_info
from custseg.profiles.evaluate import (
    DEFAULT_WEIGHTS,
    RunEvaluation,
    attractiveness,
    evaluate_run,
    parse_weights,
    silhouette,
    stability_from_parameters,
)
from custseg.profiles.migration import RunComparison, compare_runs, segment_growth
from custseg.profiles.profile import KEY_FEATURES, MIX_COLUMNS, RunProfile, profile_run
from custseg.profiles.sample import FeatureSample, feature_sample

__all__ = [
    "ALL", "DEFAULT_WEIGHTS", "KEY_FEATURES", "MIX_COLUMNS", "NOT_IN_RUN",
    "FeatureSample", "RunComparison", "RunEvaluation", "RunInfo", "RunProfile",
    "attractiveness", "compare_runs", "evaluate_run", "feature_sample", "parse_weights",
    "profile_run", "run_info", "segment_growth", "silhouette", "stability_from_parameters",
]
