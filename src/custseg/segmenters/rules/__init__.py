"""Rule-based segments: a safe condition language over feature columns, segment sets, templates.

See ``docs/rules.md`` for the language and the templates.
"""

from custseg.segmenters.rules.compile import compile_value
from custseg.segmenters.rules.definitions import (
    DefinitionError,
    Segment,
    SegmentSet,
    check_segment_set,
    load_segment_set,
)
from custseg.segmenters.rules.language import FUNCTIONS, parse_rule
from custseg.segmenters.rules.segmenter import RuleSegmenter, run_rules, segment_sizes
from custseg.segmenters.rules.syntax import RuleError
from custseg.segmenters.rules.tree import Node, Rule, stat_key, unparse

__all__ = [
    "FUNCTIONS",
    "DefinitionError",
    "Node",
    "Rule",
    "RuleError",
    "RuleSegmenter",
    "Segment",
    "SegmentSet",
    "check_segment_set",
    "compile_value",
    "load_segment_set",
    "parse_rule",
    "run_rules",
    "segment_sizes",
    "stat_key",
    "unparse",
]
