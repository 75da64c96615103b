"""Personalised product recommendations, aware of the customer's segment.

* :class:`Recommender` mixes segment lift, item-to-item co-occurrence and
  popularity, leaves out what the customer already bought (except in
  repeat-purchase categories) and says why it recommends each product;
* :func:`recommend` fits and recommends in one call;
* :func:`save_recommendations` / :func:`load_recommendations` keep runs in the
  store's ``recommendations`` table;
* :func:`evaluate` measures hit rate and recall on a time split against
  global popularity.

See docs/recommend.md.
"""

from custseg.recommend.evaluate import evaluate, segments_as_of
from custseg.recommend.model import COLUMNS, Recommender
from custseg.recommend.repeat import repeat_categories
from custseg.recommend.runs import list_recommendation_runs, load_recommendations, recommend, save_recommendations

__all__ = [
    "COLUMNS", "Recommender", "evaluate", "list_recommendation_runs", "load_recommendations", "recommend",
    "repeat_categories", "save_recommendations", "segments_as_of",
]
