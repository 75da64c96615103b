"""Cold-start segment assignment: a visitor with no history, a few stated answers, the likely segment.

* :class:`SegmentAssigner` learns ``P(segment | answers)`` from the declared attributes of the
  members of a segmentation run (one-hot logistic regression, trained with randomly hidden answers
  so that any subset works), multiplied by the likelihood of stated interests and budget in each
  segment;
* :func:`train` fits and keeps a model in the store's ``assign_models`` table, :func:`load_model`
  reads it back, :func:`evaluate` scores it on a stratified held-out split against the
  always-the-largest-segment baseline;
* :func:`assign_visitor` answers one visitor: segment, confidence, alternatives, the segment's most
  bought products and the playbook's play.

See docs/assign.md.
"""

from custseg.assign.data import ANSWERS, CATEGORICAL, choose_run, training_table
from custseg.assign.model import AGE_BAND_LABELS, BUDGETS, SegmentAssigner, age_band
from custseg.assign.runs import (
    Evaluation,
    NoModelError,
    assign_visitor,
    evaluate,
    fit_assigner,
    list_models,
    load_model,
    play_dict,
    save_model,
    train,
)

__all__ = [
    "AGE_BAND_LABELS", "ANSWERS", "BUDGETS", "CATEGORICAL", "Evaluation", "NoModelError", "SegmentAssigner",
    "age_band", "assign_visitor", "choose_run", "evaluate", "fit_assigner", "list_models", "load_model",
    "play_dict", "save_model", "train", "training_table",
]
