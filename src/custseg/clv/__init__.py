"""Customer lifetime value and churn: BG/NBD, Pareto/NBD, Gamma-Gamma, a churn classifier.

The model classes follow scikit-learn's conventions (parameters in ``__init__``,
data in ``fit``, fitted attributes ending in ``_``) and are fitted by maximum
likelihood on counts of distinct ``(x, t_x, T)`` tuples. See ``docs/clv.md``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BetaGeoModel": "custseg.clv.bgnbd",
    "ParetoNBDModel": "custseg.clv.paretonbd",
    "GammaGammaModel": "custseg.clv.gammagamma",
    "ClvFitError": "custseg.clv._fit",
    "ChurnModel": "custseg.clv.churn",
    "churn_dataset": "custseg.clv.churn",
    "purchase_summary": "custseg.clv.data",
    "holdout_purchases": "custseg.clv.data",
    "TIME_UNITS": "custseg.clv.data",
}

__all__ = ["TIME_UNITS", "BetaGeoModel", "ChurnModel", "ClvFitError", "GammaGammaModel", "ParetoNBDModel",
           "churn_dataset", "holdout_purchases", "purchase_summary"]


def __getattr__(name: str):
    # Imported on first use: `import custseg.clv` stays light (no scipy/sklearn until needed).
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'custseg.clv' has no attribute {name!r}")
