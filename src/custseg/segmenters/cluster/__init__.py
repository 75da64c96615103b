"""Cluster analysis: k-means, Gaussian mixture, agglomerative, HDBSCAN and k-prototypes segments.

Fitted on a seeded sample, assigned to every customer in the engine, with
readable names, a rule per cluster and a stability report. See
``docs/clustering.md``.
"""

from custseg.segmenters.cluster.explain import Explanation
from custseg.segmenters.cluster.methods import METHODS
from custseg.segmenters.cluster.naming import FEATURE_WORDS
from custseg.segmenters.cluster.preprocess import (
    DEFAULT_CATEGORICAL,
    DEFAULT_FEATURES,
    FILL_RULES,
    Preprocessing,
    fit_preprocessing,
)
from custseg.segmenters.cluster.run import (
    assign_from_run,
    cluster_sizes,
    run_cluster,
    stored_features,
)
from custseg.segmenters.cluster.segmenter import ClusterSegmenter
from custseg.segmenters.cluster.selection import CRITERIA, choose_k

__all__ = [
    "CRITERIA",
    "DEFAULT_CATEGORICAL",
    "DEFAULT_FEATURES",
    "FEATURE_WORDS",
    "FILL_RULES",
    "METHODS",
    "ClusterSegmenter",
    "Explanation",
    "Preprocessing",
    "assign_from_run",
    "choose_k",
    "cluster_sizes",
    "fit_preprocessing",
    "run_cluster",
    "stored_features",
]
